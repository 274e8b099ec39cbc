import type { Logger } from '../core/log.js';

/** Event types on the live stream; `ticket` is published by the work-order service. */
export type LiveEventType = 'reading' | 'alarm' | 'ticket' | (string & {});

/** What a subscriber receives: the event, its JSON (serialised once for every subscriber) and its site. */
export interface LiveEvent {
  type: LiveEventType;
  json: string;
  /** For per-site filtering by subscribers; undefined for events that belong to no site. */
  site: string | undefined;
}

export type LiveSubscriber = (e: LiveEvent) => void;

/**
 * Fan-out of live events to the HTTP stream (and anything else that subscribes). Publishing with
 * nobody listening costs one check, so producers need not know whether a dashboard is open.
 */
export class LiveHub {
  private readonly subs = new Set<LiveSubscriber>();
  private published = 0;
  private failures = 0;

  constructor(private readonly log?: Logger) {}

  get subscribers(): number {
    return this.subs.size;
  }

  subscribe(fn: LiveSubscriber): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  publish(type: LiveEventType, data: unknown, site?: string): void {
    if (this.subs.size === 0) return;
    const e: LiveEvent = { type, json: JSON.stringify(data), site };
    this.published++;
    for (const fn of this.subs) {
      try {
        fn(e);
      } catch (err) {
        // One broken subscriber must not starve the others.
        this.failures++;
        this.log?.error({ err, type }, 'live subscriber failed');
      }
    }
  }

  stats(): { subscribers: number; published: number; failures: number } {
    return { subscribers: this.subs.size, published: this.published, failures: this.failures };
  }
}
