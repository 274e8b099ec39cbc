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
  /** [name, quality] per metric. */
  private slots: Array<string | Quality> = [];
  /**
   * Values and times in double arrays, which hold numbers unboxed: a reading then allocates
   * nothing here, and nothing it leaves behind has to survive a garbage collection.
   * Booleans are stored as 1/0 with their flag in `bools`.
   */
  private nums: number[] = [];
  private times: number[] = [];
  private bools: boolean[] = [];

  /** Keeps the value unless the metric already holds a newer one (out-of-order readings). */
  set(metric: string, value: MetricValue, ts: number, quality: Quality): void {
    const s = this.slots;
    for (let i = 0, j = 0; i < s.length; i += 2, j++) {
      if (s[i] !== metric) continue;
      if (ts >= this.times[j]!) {
        if (typeof value === 'boolean') {
          this.nums[j] = value ? 1 : 0;
          this.bools[j] = true;
        } else {
          this.nums[j] = value;
          this.bools[j] = false;
        }
        this.times[j] = ts;
        s[i + 1] = quality;
      }
      return;
    }
    // Grown to the exact size: a pushed array keeps spare capacity, for every device.
    const n = this.times.length;
    const slots = new Array<string | Quality>(2 * n + 2);
    const nums = new Array<number>(n + 1).fill(0.5);
    const times = new Array<number>(n + 1).fill(0.5);
    const bools = new Array<boolean>(n + 1).fill(false);
    for (let j = 0; j < n; j++) {
      slots[2 * j] = s[2 * j]!;
      slots[2 * j + 1] = s[2 * j + 1]!;
      nums[j] = this.nums[j]!;
      times[j] = this.times[j]!;
      bools[j] = this.bools[j]!;
    }
    slots[2 * n] = metric;
    slots[2 * n + 1] = quality;
    nums[n] = typeof value === 'boolean' ? (value ? 1 : 0) : value;
    bools[n] = typeof value === 'boolean';
    times[n] = ts;
    this.slots = slots;
    this.nums = nums;
    this.times = times;
    this.bools = bools;
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
    for (let i = 0; i < s.length; i += 2) if (s[i] === metric) return i / 2;
    return -1;
  }

  private at(j: number): LatestValue {
    const v = this.nums[j]!;
    return {
      value: this.bools[j] ? v !== 0 : v,
      ts: this.times[j]!,
      quality: this.slots[2 * j + 1] as Quality,
    };
  }

  private name(j: number): string {
    return this.slots[2 * j] as string;
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
