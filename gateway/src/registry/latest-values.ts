import type { MetricValue, Quality } from '../core/types.js';

export interface LatestValue {
  value: MetricValue;
  ts: number;
  /** As the source reported it: a bad or uncertain value is shown as such, never as good. */
  quality: Quality;
}

/**
 * The newest value, time and quality of each metric of one device, in parallel arrays.
 *
 * Written for every accepted reading and read only by the API, so it is laid out for the write:
 * a device has about eight metrics, which a linear scan over the names (the parser's interned
 * strings, compared by identity first) finds faster than a hash lookup, and four small arrays
 * cost about half of a Map with an object per metric (some 900 bytes a device, 9 MB with
 * 10,000 devices). Reads build the `LatestValue` objects on request.
 */
export class LatestValues implements ReadonlyMap<string, Readonly<LatestValue>> {
  /** [name, value, quality] per metric, one after the other. */
  private slots: Array<string | MetricValue> = [];
  /** The time of each metric: a double array holds its numbers unboxed, so a write allocates nothing. */
  private times: number[] = [];

  /** Keeps the value unless the metric already holds a newer one (out-of-order readings). */
  set(metric: string, value: MetricValue, ts: number, quality: Quality): void {
    const s = this.slots;
    for (let i = 0, j = 0; i < s.length; i += 3, j++) {
      if (s[i] !== metric) continue;
      if (ts >= this.times[j]!) {
        s[i + 1] = value;
        s[i + 2] = quality;
        this.times[j] = ts;
      }
      return;
    }
    // Grown to the exact size: a pushed array keeps spare capacity, for every device.
    const n = s.length;
    const next = new Array<string | MetricValue>(n + 3);
    for (let i = 0; i < n; i++) next[i] = s[i]!;
    next[n] = metric;
    next[n + 1] = value;
    next[n + 2] = quality;
    this.slots = next;
    const times = new Array<number>(n / 3 + 1).fill(0);
    for (let j = 0; j < n / 3; j++) times[j] = this.times[j]!;
    times[n / 3] = ts;
    this.times = times;
  }

  get size(): number {
    return this.times.length;
  }

  has(metric: string): boolean {
    return this.indexOf(metric) >= 0;
  }

  get(metric: string): LatestValue | undefined {
    const j = this.indexOf(metric);
    return j < 0 ? undefined : this.at(j);
  }

  private indexOf(metric: string): number {
    const s = this.slots;
    for (let i = 0; i < s.length; i += 3) if (s[i] === metric) return i / 3;
    return -1;
  }

  private at(j: number): LatestValue {
    const s = this.slots;
    return { value: s[3 * j + 1] as MetricValue, ts: this.times[j]!, quality: s[3 * j + 2] as Quality };
  }

  private name(j: number): string {
    return this.slots[3 * j] as string;
  }

  *entries(): MapIterator<[string, LatestValue]> {
    for (let j = 0; j < this.times.length; j++) yield [this.name(j), this.at(j)];
  }

  *keys(): MapIterator<string> {
    for (let j = 0; j < this.times.length; j++) yield this.name(j);
  }

  *values(): MapIterator<LatestValue> {
    for (let j = 0; j < this.times.length; j++) yield this.at(j);
  }

  [Symbol.iterator](): MapIterator<[string, LatestValue]> {
    return this.entries();
  }

  forEach(fn: (value: LatestValue, key: string, map: ReadonlyMap<string, LatestValue>) => void): void {
    for (let j = 0; j < this.times.length; j++) fn(this.at(j), this.name(j), this);
  }

  /** A plain copy, safe to serialise and to hold. */
  toJSON(): Record<string, LatestValue> {
    const out: Record<string, LatestValue> = {};
    for (let j = 0; j < this.times.length; j++) out[this.name(j)] = this.at(j);
    return out;
  }
}
