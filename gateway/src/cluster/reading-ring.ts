import type { Reading } from '../core/types.js';

/**
 * The replay window of polled readings (OPC UA, Modbus, M-Bus; ADR 0177), beside the ring of MQTT
 * payloads (replay-ring.ts): readings of partitions another member owns, with their partition and
 * this member's receipt time, in fixed arrays of `capacity` entries, first in first out. A reading
 * is copied (the source may reuse its object) only here, on the path of partitions not owned; the
 * owned path never reaches this ring. Memory is bounded by the entry count.
 */
export class ReadingRing {
  private readonly readings: Array<Reading | undefined>;
  private readonly parts: Int32Array;
  private readonly at: Float64Array;
  private tail = 0;
  private count = 0;
  /** Entries overwritten while still younger than the window: a takeover could miss them. */
  overruns = 0;

  constructor(
    readonly capacity: number,
    readonly windowMs: number,
  ) {
    this.readings = new Array<Reading | undefined>(capacity).fill(undefined);
    this.parts = new Int32Array(capacity);
    this.at = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Time of the oldest entry kept (NaN when empty). */
  get oldestAt(): number {
    return this.count === 0 ? NaN : this.at[this.tail]!;
  }

  /** Keeps a copy of `r`, received at `now` (local epoch ms), of partition `partition`. */
  push(r: Reading, partition: number, now: number): void {
    const cap = this.at.length;
    if (this.count === cap) {
      if (now - this.at[this.tail]! < this.windowMs) this.overruns++;
      this.readings[this.tail] = undefined;
      this.tail = (this.tail + 1) % cap;
      this.count--;
    }
    const i = (this.tail + this.count) % cap;
    const copy: Reading = { site: r.site, kind: r.kind, device: r.device, ts: r.ts, fields: { ...r.fields } };
    if (r.quality !== undefined) copy.quality = r.quality;
    if (r.qualities !== undefined) copy.qualities = { ...r.qualities };
    this.readings[i] = copy;
    this.parts[i] = partition;
    this.at[i] = now;
    this.count++;
  }

  /** Calls `fn` for every entry kept, oldest first, with its partition (a takeover's gap plan). */
  forEach(fn: (r: Reading, partition: number) => void): void {
    const cap = this.at.length;
    for (let k = 0; k < this.count; k++) {
      const i = (this.tail + k) % cap;
      fn(this.readings[i]!, this.parts[i]!);
    }
  }

  /**
   * Calls `fn` for each entry, oldest first, received at or after `fromAt(partition)` (NaN: skip),
   * with its receipt time. Returns how many were handed on.
   */
  replay(fromAt: (partition: number) => number, fn: (r: Reading, at: number) => void): number {
    let n = 0;
    const cap = this.at.length;
    for (let k = 0; k < this.count; k++) {
      const i = (this.tail + k) % cap;
      const at = this.at[i]!;
      if (!(at >= fromAt(this.parts[i]!))) continue;
      fn(this.readings[i]!, at);
      n++;
    }
    return n;
  }
}
