/**
 * The replay window (ADR 0150): payloads of messages whose partition another member owns, copied
 * into one preallocated byte arena, with their topic (an id into the gate's topic table), and
 * receipt time in fixed typed arrays. Entries and bytes are both first-in first-out, so writing a
 * new entry only ever overwrites the oldest ones. Nothing is allocated per message.
 */
export class ReplayRing {
  private readonly arena: Buffer;
  private readonly topicIds: Int32Array;
  private readonly starts: Int32Array;
  private readonly lens: Int32Array;
  private readonly at: Float64Array;
  /** Index of the oldest entry, and how many there are. */
  private tail = 0;
  private count = 0;
  /** Where the next payload's bytes go. */
  private pos = 0;
  /** Entries overwritten while still younger than the window: a takeover could miss them. */
  overruns = 0;
  /** Messages too large for the arena, never kept. */
  oversized = 0;

  constructor(
    bytes: number,
    private readonly windowMs: number,
    entries = Math.max(1024, Math.floor(bytes / 48)),
  ) {
    this.arena = Buffer.allocUnsafe(bytes);
    this.topicIds = new Int32Array(entries);
    this.starts = new Int32Array(entries);
    this.lens = new Int32Array(entries);
    this.at = new Float64Array(entries);
  }

  get size(): number {
    return this.count;
  }

  /** Time of the oldest entry kept (NaN when empty). */
  get oldestAt(): number {
    return this.count === 0 ? NaN : this.at[this.tail]!;
  }

  push(topicId: number, payload: Buffer, now: number): void {
    const len = payload.length;
    const cap = this.arena.length;
    if (len > cap / 4) {
      this.oversized++;
      return;
    }
    let start = this.pos;
    if (start + len > cap) start = 0;
    // Drop the oldest entries whose bytes the new payload overwrites, and the oldest when full.
    while (this.count > 0) {
      const t = this.tail;
      const s = this.starts[t]!;
      const overlaps = s < start + len && start < s + this.lens[t]!;
      if (!overlaps && this.count < this.at.length) break;
      if (now - this.at[t]! < this.windowMs) this.overruns++;
      this.tail = (t + 1) % this.at.length;
      this.count--;
    }
    payload.copy(this.arena, start);
    const i = (this.tail + this.count) % this.at.length;
    this.topicIds[i] = topicId;
    this.starts[i] = start;
    this.lens[i] = len;
    this.at[i] = now;
    this.count++;
    this.pos = start + len;
  }

  /**
   * Calls `fn` for each entry, oldest first, whose time is at or after `fromAt(topicId)` (NaN:
   * skip). The payload is a view into the arena, valid during the call only.
   */
  replay(
    fromAt: (topicId: number) => number,
    fn: (topicId: number, payload: Buffer, at: number) => void,
  ): number {
    let n = 0;
    const cap = this.at.length;
    for (let k = 0; k < this.count; k++) {
      const i = (this.tail + k) % cap;
      const id = this.topicIds[i]!;
      const from = fromAt(id);
      const at = this.at[i]!;
      if (!(at >= from)) continue;
      const s = this.starts[i]!;
      fn(id, this.arena.subarray(s, s + this.lens[i]!), at);
      n++;
    }
    return n;
  }
}
