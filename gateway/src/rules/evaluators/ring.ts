/**
 * A fixed-size ring of (ts, value) samples allocated once per device, thinned so `cap` samples
 * cover the window. Gives the steepest change per hour between now and any sample in the window
 * at least `minSpanMs` old: a rise of 6 °C/h that lasted 40 minutes is a rise of 6 °C/h, even
 * though the whole hour's window also holds 20 flat minutes before it.
 */
export interface Ring {
  ts: number[];
  v: number[];
  head: number;
  len: number;
}

export function createRing(cap: number): Ring {
  return { ts: new Array<number>(cap).fill(NaN), v: new Array<number>(cap).fill(NaN), head: 0, len: 0 };
}

/** Records (ts, v) and returns the rate per hour over the window, or NaN if the span is too short. */
export function ringRate(r: Ring, ts: number, v: number, windowMs: number, minSpanMs: number): number {
  const cap = r.ts.length;
  // Drop samples that fell out of the window (oldest is at head - len).
  while (r.len > 0) {
    const tail = (r.head - r.len + cap) % cap;
    if (ts - r.ts[tail]! <= windowMs) break;
    r.len--;
  }
  let rate = NaN;
  let steepest = 0;
  for (let k = r.len; k > 0; k--) {
    const i = (r.head - k + cap) % cap;
    const span = ts - r.ts[i]!;
    // Samples are in time order: once one is too recent, so are the rest.
    if (span < minSpanMs || span <= 0) break;
    const x = ((v - r.v[i]!) / span) * 3_600_000;
    if (Number.isNaN(rate) || Math.abs(x) > steepest) {
      rate = x;
      steepest = Math.abs(x);
    }
  }
  const last = (r.head - 1 + cap) % cap;
  if (r.len === 0 || ts - r.ts[last]! >= windowMs / cap) {
    r.ts[r.head] = ts;
    r.v[r.head] = v;
    r.head = (r.head + 1) % cap;
    if (r.len < cap) r.len++;
  }
  return rate;
}
