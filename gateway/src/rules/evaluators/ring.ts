import { RING_HEAD, RING_LEN, RING_TS } from '../state-arena.js';

/**
 * A fixed-size ring of (ts, value) samples in a rule's state (`cap` times, then `cap` values),
 * thinned so `cap` samples cover the window. Gives the steepest change per hour between now and
 * any sample in the window at least `minSpanMs` old: a rise of 6 °C/h that lasted 40 minutes is a
 * rise of 6 °C/h, even though the whole hour's window also holds 20 flat minutes before it.
 *
 * Records (ts, v) in the ring at `r` and returns the rate per hour over the window, or NaN if the
 * span is too short.
 */
export function ringRate(
  st: Float64Array,
  r: number,
  cap: number,
  ts: number,
  v: number,
  windowMs: number,
  minSpanMs: number,
): number {
  const T = r + RING_TS;
  const V = T + cap;
  const head = st[r + RING_HEAD]!;
  let len = st[r + RING_LEN]!;
  // Drop samples that fell out of the window (oldest is at head - len).
  while (len > 0) {
    const tail = (head - len + cap) % cap;
    if (ts - st[T + tail]! <= windowMs) break;
    len--;
  }
  let rate = NaN;
  let steepest = 0;
  for (let k = len; k > 0; k--) {
    const i = (head - k + cap) % cap;
    const span = ts - st[T + i]!;
    // Samples are in time order: once one is too recent, so are the rest.
    if (span < minSpanMs || span <= 0) break;
    const x = ((v - st[V + i]!) / span) * 3_600_000;
    if (Number.isNaN(rate) || Math.abs(x) > steepest) {
      rate = x;
      steepest = Math.abs(x);
    }
  }
  const last = (head - 1 + cap) % cap;
  if (len === 0 || ts - st[T + last]! >= windowMs / cap) {
    st[T + head] = ts;
    st[V + head] = v;
    st[r + RING_HEAD] = (head + 1) % cap;
    if (len < cap) len++;
  }
  st[r + RING_LEN] = len;
  return rate;
}
