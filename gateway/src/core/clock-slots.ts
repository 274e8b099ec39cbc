/**
 * Cluster mode (ADR 0177): polls on the wall clock's multiples of an interval `iv`, stamped with
 * their slot's time, so that every member's poll of a device in one slot is one point. The timers
 * run on a monotonic clock and the slots on the wall clock: when the wall clock is set back (an NTP
 * step, a VM restored), the slots follow it at once. Otherwise the next slot would lie as far in the
 * future as the clock went back, and no poll would run until that time came again.
 */

/**
 * The slot a poll starting at `now` runs in, after the slot `last` (absent: the first poll): its own
 * slot, or `last + iv` when the timer fired a moment early (a slot is never stamped twice), but never
 * one more than an interval ahead of `now` (the clock was set back).
 */
export function slotOf(now: number, iv: number, last?: number): number {
  const own = Math.floor(now / iv) * iv;
  if (last === undefined) return own;
  const next = last + iv;
  return next > own && next - now < iv ? next : own;
}

/** How long to wait from `now` for the slot after `last`: at once when overdue, at most one interval. */
export function slotDelay(last: number, now: number, iv: number): number {
  return Math.min(iv, Math.max(0, last + iv - now));
}
