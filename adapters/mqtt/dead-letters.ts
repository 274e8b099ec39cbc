/**
 * Rejected messages (`facility/_rejected/...`) on their way to the broker at QoS 1, kept until
 * the broker's PUBACK. At QoS 0 a busy or reconnecting broker lost them silently; here each one is
 * resent (DUP set, same packet id, as MQTT requires) after a reconnect until it is acknowledged.
 *
 * Bounded, because a device that floods bad messages must not grow the gateway's memory: at the
 * bound the oldest letter not yet sent is dropped and counted. Letters live in memory only (a
 * gateway crash loses those not yet acknowledged; the readings they describe were never accepted,
 * and the device's own QoS 1 retry is unaffected), which keeps them off the ingest outbox's disk
 * and out of its group commit (ADR 0071).
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

export interface DeadLetterStats {
  /** Acknowledged by the broker. */
  published: number;
  /** Dropped at the bound, never sent. */
  dropped: number;
  /** Waiting or awaiting their PUBACK. */
  pending: number;
  pendingBytes: number;
}

interface Letter {
  topic: string;
  payload: Buffer;
}

export class DeadLetterQueue {
  private waiting: Letter[] = [];
  private readonly inflight = new Map<number, Letter>();
  private bytes = 0;
  private published = 0;
  private dropped = 0;

  constructor(
    private readonly link: DeadLetterLink,
    private readonly limits: DeadLetterLimits,
  ) {}

  enqueue(topic: string, payload: string): void {
    const letter = { topic, payload: Buffer.from(payload) };
    const size = letter.payload.length + topic.length;
    // Make room by dropping the oldest letters not yet sent; those in flight are the broker's now.
    while (
      this.waiting.length > 0 &&
      (this.pending() + 1 > this.limits.maxMessages || this.bytes + size > this.limits.maxBytes)
    ) {
      const old = this.waiting.shift()!;
      this.bytes -= old.payload.length + old.topic.length;
      this.dropped++;
    }
    if (this.pending() + 1 > this.limits.maxMessages || this.bytes + size > this.limits.maxBytes) {
      this.dropped++;
      return;
    }
    this.waiting.push(letter);
    this.bytes += size;
    this.pump();
  }

  /** The broker acknowledged packet `id`. Ids that are not ours (none today) are ignored. */
  onPuback(id: number): void {
    const l = this.inflight.get(id);
    if (!l) return;
    this.inflight.delete(id);
    this.bytes -= l.payload.length + l.topic.length;
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
