import { describe, expect, it } from 'vitest';
import { slotDelay, slotOf } from '../../gateway/src/core/clock-slots.js';

const IV = 1000;

/**
 * Runs the clock-aligned scheduler as the Modbus and M-Bus sources do (a timer on a monotonic clock,
 * slots on the wall clock) for `ms` of monotonic time, with the wall clock stepped by `step` ms at
 * `stepAt`; returns the slots polled, in order.
 */
function simulate(ms: number, stepAt: number, step: number): { at: number; slot: number }[] {
  let mono = 0;
  const wall = (): number => 1_700_000_000_000 + mono + (mono >= stepAt ? step : 0);
  const polls: { at: number; slot: number }[] = [];
  let last = slotOf(wall(), IV);
  let due = slotDelay(last, wall(), IV);
  while (mono + due <= ms) {
    mono += due;
    const slot = slotOf(wall(), IV, last);
    polls.push({ at: mono, slot });
    last = slot;
    due = slotDelay(last, wall(), IV);
  }
  return polls;
}

describe('clock-aligned poll slots', () => {
  it('a poll on time, a moment early and late each get one slot, never one twice', () => {
    expect(slotOf(11_000, IV, 10_000)).toBe(11_000);
    // A timer a millisecond early: the next slot, not the one already stamped.
    expect(slotOf(10_999, IV, 10_000)).toBe(11_000);
    // A busy event loop: the later slot's poll.
    expect(slotOf(12_500, IV, 10_000)).toBe(12_000);
    expect(slotDelay(11_000, 11_000, IV)).toBe(IV);
    expect(slotDelay(11_000, 11_400, IV)).toBe(600);
  });

  it('the wall clock set back an hour: polls go on every interval, stamped with the clock', () => {
    const polls = simulate(20_000, 10_000, -3_600_000);
    const after = polls.filter((p) => p.at > 10_000);
    // One poll per interval after the step, not none until the old time comes back.
    expect(after.length).toBeGreaterThanOrEqual(9);
    // Stamped with the (new) wall clock's slots, never an hour in the future.
    for (const p of after)
      expect(Math.abs(p.slot - (1_700_000_000_000 + p.at - 3_600_000))).toBeLessThanOrEqual(IV);
  });

  it('a delay is never more than one interval, whatever the clock did', () => {
    expect(slotDelay(1_700_003_600_000, 1_700_000_000_000, IV)).toBeLessThanOrEqual(IV);
    const polls = simulate(20_000, 10_000, -5_000);
    for (let i = 1; i < polls.length; i++) expect(polls[i]!.at - polls[i - 1]!.at).toBeLessThanOrEqual(IV);
  });

  it('the wall clock set forward: polls go on, on the new slots', () => {
    const polls = simulate(20_000, 10_000, 3_600_000);
    expect(polls.filter((p) => p.at > 10_000).length).toBeGreaterThanOrEqual(9);
  });
});
