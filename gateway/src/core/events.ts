/**
 * A typed, synchronous event bus for the events that cross module boundaries (an alarm that
 * becomes a work order, a ticket change that reaches the live stream and InfluxDB). Modules
 * publish and subscribe by event name without importing each other. Listeners run in the order
 * they subscribed, in the publisher's call: a work order is created in the same turn as the alarm
 * that raised it, as before. Not for readings: the per-reading path stays a plain array of
 * listeners in the ingest pipeline.
 */
/** What a module sees of the bus: the events it names, nothing else. */
export interface Bus<M extends object> {
  on<K extends keyof M>(type: K, fn: (e: M[K]) => void): () => void;
  emit<K extends keyof M>(type: K, e: M[K]): void;
}

export class EventBus<M extends object> implements Bus<M> {
  private readonly listeners = new Map<keyof M, Array<(e: never) => void>>();

  /** `onError` hears a listener's throw; the other listeners still run. */
  constructor(private readonly onError: (type: keyof M, err: unknown) => void) {}

  on<K extends keyof M>(type: K, fn: (e: M[K]) => void): () => void {
    const list = this.listeners.get(type) ?? [];
    list.push(fn as (e: never) => void);
    this.listeners.set(type, list);
    return () => {
      const i = list.indexOf(fn as (e: never) => void);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof M>(type: K, e: M[K]): void {
    const list = this.listeners.get(type);
    if (!list) return;
    for (const fn of list) {
      try {
        (fn as (e: M[K]) => void)(e);
      } catch (err) {
        this.onError(type, err);
      }
    }
  }

  /** Drops every listener (the gateway stopped). */
  clear(): void {
    this.listeners.clear();
  }
}
