/**
 * Gap filling of polled meters at a takeover (ADR 0177, addendum): pure logic, used by the
 * ownership gate only while it replays a partition's readings, never on the live path.
 *
 * The dead owner D and the survivor S poll a meter on the same wall-clock slots but build separate
 * consumption chains. Where S missed slot k that D wrote after its watermark, InfluxDB would keep D's
 * consumption at k and S's next reading would book k's difference again. A consumption-only zero
 * point at every slot S's chain skips overwrites D's consumption there (InfluxDB merges a point's
 * fields by series and timestamp; D's `volume_m3` stays), so the slot is booked once, by S's next
 * reading, whether or not D wrote it.
 */

/** Zero points written at most per meter and gap: bounds a takeover's work when a meter was silent long. */
export const FILL_MAX = 10_000;

/**
 * The poll interval of one meter's readings, from their timestamps (ascending or not): the smallest
 * positive difference, provided every timestamp lies on that grid (a multiple of it since the epoch,
 * as clock-aligned Modbus and M-Bus polls are). 0 when it cannot be told (fewer than two distinct
 * timestamps, or timestamps off the grid: readings not stamped with their slot).
 */
export function slotStep(ts: readonly number[]): number {
  if (ts.length < 2) return 0;
  const sorted = [...ts].sort((a, b) => a - b);
  let step = 0;
  for (let i = 1; i < sorted.length; i++) {
    const d = sorted[i]! - sorted[i - 1]!;
    if (d > 0 && (step === 0 || d < step)) step = d;
  }
  if (step === 0) return 0;
  for (const t of sorted) if (t % step !== 0) return 0;
  return step;
}

/**
 * The slots a chain ending at `prev` skips before its next reading at `next`: every multiple of
 * `step` strictly between them, and not before `notBefore` (slots older than that cannot hold a point
 * of the dead owner newer than its watermark), at most FILL_MAX of them (the newest). Empty when
 * `next` is the very next slot, or when `step` is 0 (unknown).
 */
export function missedSlots(prev: number, next: number, step: number, notBefore = -Infinity): number[] {
  if (!(step > 0) || !(next > prev)) return [];
  let first = Math.floor(prev / step) * step + step;
  const low = Math.ceil(notBefore / step) * step;
  if (low > first) first = low;
  let last = Math.ceil(next / step) * step - step;
  if (last >= next) last -= step;
  if (last < first) return [];
  if ((last - first) / step + 1 > FILL_MAX) first = last - (FILL_MAX - 1) * step;
  const out: number[] = [];
  for (let t = first; t <= last; t += step) out.push(t);
  return out;
}
