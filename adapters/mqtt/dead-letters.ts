/**
 * Rejected messages (`facility/_rejected/...`) on their way to the broker at QoS 1, kept until
 * the broker's PUBACK. At QoS 0 a busy or reconnecting broker lost them silently; here each one is
 * resent (DUP set, same packet id, as MQTT requires) after a reconnect until it is acknowledged.
 *
 * Bounded, because a device that floods bad messages must not grow the gateway's memory or disk:
 * at the bound the oldest letter not yet sent is dropped and counted (ADR 0071). With a store
 * (ADR 0090: `dead-letters.db`, its own file, never the ingest outbox) each letter is also kept on
 * disk until its PUBACK, so a gateway crash or restart does not lose it: the next start sends what
 * the store still holds.
 */

/** What the queue needs from the MQTT connection; the receive path is not involved. */
export interface DeadLetterLink {
  connected(): boolean;
  /** A packet id for a new QoS 1 publish. */
  nextId(): number;
  send(topic: string, payload: Buffer, id: number, dup: boolean): void;
}

export interface DeadLetterLimits {
  /** Letters waiting or in flight. */
  maxMessages: number;
  maxBytes: number;
  /** Publishes awaiting their PUBACK at once (Mosquitto's default receive maximum is 20). */
  inflight: number;
}

/** A letter as kept on disk: `id` is its key in the store. */
export interface StoredLetter {
  id: number;
  topic: string;
  payload: Buffer;
}

/** Where letters are kept until acknowledged (or dropped at the bound). */
export interface DeadLetterStore {
  /** The letters kept from before, oldest first. */
  load(): StoredLetter[];
  /** Keeps a new letter; returns its key. */
  add(topic: string, payload: Buffer): number;
  /** Forgets a letter: acknowledged by the broker or dropped at the bound. */
  remove(key: number): void;
}

export interface DeadLetterStats {
  /** Acknowledged by the broker. */
  published: number;
  /** Dropped at the bound, never sent. */
  dropped: number;
  /** Waiting or awaiting their PUBACK. */
  pending: number;
  pendingBytes: number;
  /** Letters found in the store at start (queued before a crash or restart). */
  restored: number;
}

interface Letter {
  topic: string;
  payload: Buffer;
  /** Its key in the store, if kept there. */
  key?: number;
}

export class DeadLetterQueue {
  private waiting: Letter[] = [];
  private readonly inflight = new Map<number, Letter>();
  private bytes = 0;
  private published = 0;
  private dropped = 0;
  private restored = 0;

  constructor(
    private readonly link: DeadLetterLink,
    private readonly limits: DeadLetterLimits,
    private readonly store?: DeadLetterStore,
  ) {
    // What a previous run left unacknowledged goes first, oldest first, within today's bound.
    for (const l of store?.load() ?? []) {
      this.restored++;
      this.add({ topic: l.topic, payload: l.payload, key: l.id });
    }
  }

  enqueue(topic: string, payload: string): void {
    const buf = Buffer.from(payload);
    this.add({ topic, payload: buf, key: this.store?.add(topic, buf) });
    this.pump();
  }

  private add(letter: Letter): void {
    const size = letter.payload.length + letter.topic.length;
    // Make room by dropping the oldest letters not yet sent; those in flight are the broker's now.
    while (
      this.waiting.length > 0 &&
      (this.pending() + 1 > this.limits.maxMessages || this.bytes + size > this.limits.maxBytes)
    ) {
      const old = this.waiting.shift()!;
      this.bytes -= old.payload.length + old.topic.length;
      this.forget(old);
      this.dropped++;
    }
    if (this.pending() + 1 > this.limits.maxMessages || this.bytes + size > this.limits.maxBytes) {
      this.forget(letter);
      this.dropped++;
      return;
    }
    this.waiting.push(letter);
    this.bytes += size;
  }

  private forget(l: Letter): void {
    if (l.key !== undefined) this.store?.remove(l.key);
  }

  /** The broker acknowledged packet `id`. Ids that are not ours (none today) are ignored. */
  onPuback(id: number): void {
    const l = this.inflight.get(id);
    if (!l) return;
    this.inflight.delete(id);
    this.bytes -= l.payload.length + l.topic.length;
    this.forget(l);
    this.published++;
    this.pump();
  }

  /** A new connection: what was in flight goes again, in order, marked as a duplicate. */
  onConnect(): void {
    for (const [id, l] of this.inflight) this.link.send(l.topic, l.payload, id, true);
    this.pump();
  }

  stats(): DeadLetterStats {
    return {
      published: this.published,
      dropped: this.dropped,
      pending: this.pending(),
      pendingBytes: this.bytes,
      restored: this.restored,
    };
  }

  private pending(): number {
    return this.waiting.length + this.inflight.size;
  }

  private pump(): void {
    if (!this.link.connected()) return;
    while (this.waiting.length > 0 && this.inflight.size < this.limits.inflight) {
      const l = this.waiting.shift()!;
      let id = this.link.nextId();
      // An id still awaiting its PUBACK after 65,535 others is not reused.
      while (this.inflight.has(id)) id = this.link.nextId();
      this.inflight.set(id, l);
      this.link.send(l.topic, l.payload, id, false);
    }
  }
}
