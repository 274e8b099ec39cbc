/**
 * A fixed-size ring of (ts, value) samples allocated once per device, thinned so `cap` samples
 * cover the window. Gives the change per hour between the oldest sample in the window and now.
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
  if (r.len > 0) {
    const tail = (r.head - r.len + cap) % cap;
    const span = ts - r.ts[tail]!;
    if (span >= minSpanMs && span > 0) rate = ((v - r.v[tail]!) / span) * 3_600_000;
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
