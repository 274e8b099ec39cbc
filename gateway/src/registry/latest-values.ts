import type { MetricValue, Quality } from '../core/types.js';

export interface LatestValue {
  value: MetricValue;
  ts: number;
  /** As the source reported it: a bad or uncertain value is shown as such, never as good. */
  quality: Quality;
}

/** Quality as a number in the data array; booleans add 1. */
const QUALITY_CODE = { good: 0, uncertain: 2, bad: 4 } as const;
const QUALITIES: readonly Quality[] = ['good', 'uncertain', 'bad'];
/** Doubles per metric in `data`: value, time, code. */
const STRIDE = 3;

/**
 * The newest value, time and quality of each metric of one device.
 *
 * Written for every accepted reading and read only by the API, so it is laid out for the write:
 * the metric names in one array (the parser's interned strings, compared by identity), and per
 * metric three doubles in another: value (booleans as 1/0), time, and a code for quality and
 * booleanness. A double array holds numbers unboxed, so a reading allocates nothing here, and the
 * collector has no pointers to follow in it. A device sends its metrics in the same order each
 * time, so the one after the last match is tried first. Reads build `LatestValue` objects on request.
 */
export class LatestValues implements ReadonlyMap<string, Readonly<LatestValue>> {
  private names: string[] = [];
  private data: number[] = [];
  /** Index of the metric expected next. */
  private hint = 0;

  /** Keeps the value unless the metric already holds a newer one (out-of-order readings). */
  set(metric: string, value: MetricValue, ts: number, quality: Quality): void {
    const names = this.names;
    let j = this.hint;
    if (j >= names.length || names[j] !== metric) {
      j = names.indexOf(metric);
      if (j < 0) return this.add(metric, value, ts, quality);
    }
    this.hint = j + 1;
    const d = this.data;
    const o = j * STRIDE;
    if (!(ts >= d[o + 1]!)) return;
    if (typeof value === 'boolean') {
      d[o] = value ? 1 : 0;
      d[o + 2] = QUALITY_CODE[quality] + 1;
    } else {
      d[o] = value;
      d[o + 2] = QUALITY_CODE[quality];
    }
    d[o + 1] = ts;
  }

  /** A metric seen for the first time: both arrays grow to their exact size (a pushed array keeps spare room, for every device). */
  private add(metric: string, value: MetricValue, ts: number, quality: Quality): void {
    const n = this.names.length;
    const names = new Array<string>(n + 1);
    const data = new Array<number>((n + 1) * STRIDE).fill(0.5);
    for (let j = 0; j < n; j++) names[j] = this.names[j]!;
    for (let k = 0; k < n * STRIDE; k++) data[k] = this.data[k]!;
    names[n] = metric;
    const o = n * STRIDE;
    const bool = typeof value === 'boolean';
    data[o] = bool ? (value ? 1 : 0) : value;
    data[o + 1] = ts;
    data[o + 2] = QUALITY_CODE[quality] + (bool ? 1 : 0);
    this.names = names;
    this.data = data;
    this.hint = n + 1;
  }

  get size(): number {
    return this.names.length;
  }

  has(metric: string): boolean {
    return this.indexOf(metric) >= 0;
  }

  get(metric: string): LatestValue | undefined {
    const j = this.indexOf(metric);
    return j < 0 ? undefined : this.at(j);
  }

  private indexOf(metric: string): number {
    return this.names.indexOf(metric);
  }

  private at(j: number): LatestValue {
    const o = j * STRIDE;
    const v = this.data[o]!;
    const code = this.data[o + 2]!;
    return {
      value: code % 2 === 1 ? v !== 0 : v,
      ts: this.data[o + 1]!,
      quality: QUALITIES[code >> 1]!,
    };
  }

  private name(j: number): string {
    return this.names[j]!;
  }

  *entries(): MapIterator<[string, LatestValue]> {
    for (let j = 0; j < this.names.length; j++) yield [this.name(j), this.at(j)];
  }

  *keys(): MapIterator<string> {
    for (let j = 0; j < this.names.length; j++) yield this.name(j);
  }

  *values(): MapIterator<LatestValue> {
    for (let j = 0; j < this.names.length; j++) yield this.at(j);
  }

  [Symbol.iterator](): MapIterator<[string, LatestValue]> {
    return this.entries();
  }

  forEach(fn: (value: LatestValue, key: string, map: ReadonlyMap<string, LatestValue>) => void): void {
    for (let j = 0; j < this.names.length; j++) fn(this.at(j), this.name(j), this);
  }

  /** A plain copy, safe to serialise and to hold. */
  toJSON(): Record<string, LatestValue> {
    const out: Record<string, LatestValue> = {};
    for (let j = 0; j < this.names.length; j++) out[this.name(j)] = this.at(j);
    return out;
  }
}
