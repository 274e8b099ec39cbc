import { DateTime } from 'luxon';
import type { CalendarConfig } from './schema.js';

/** How far a deadline may be searched for (a calendar with every day a holiday must not loop for ever). */
const MAX_DAYS = 3660;

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));

/**
 * Working time of a calendar: working days and hours in a time zone, minus holidays. Daylight
 * saving is the time zone's: a working day of 08:00–17:00 is nine hours of local time whatever
 * the offset. Pure (no clock).
 */
export class WorkCalendar {
  private readonly holidays: Set<string>;
  private readonly startMin: number;
  private readonly endMin: number;
  private readonly days: Set<number>;

  constructor(private readonly cfg: CalendarConfig) {
    this.holidays = new Set(cfg.holidays);
    this.startMin = minutesOf(cfg.hours.start);
    this.endMin = minutesOf(cfg.hours.end);
    this.days = new Set(cfg.days);
  }

  /** The working window of the local day that `day` (any instant of it) falls in, or null for a day off. */
  private window(day: DateTime): { from: number; to: number } | null {
    if (!this.days.has(day.weekday) || this.holidays.has(day.toISODate()!)) return null;
    const midnight = day.startOf('day');
    const at = (min: number) =>
      midnight
        .set({ hour: Math.floor(min / 60) % 24, minute: min % 60 })
        .plus({ days: min === 1440 ? 1 : 0 });
    return { from: at(this.startMin).toMillis(), to: at(this.endMin).toMillis() };
  }

  /** The instant at which `ms` of working time has passed after `start`. */
  add(start: number, ms: number): number {
    let left = ms;
    let day = DateTime.fromMillis(start, { zone: this.cfg.timeZone }).startOf('day');
    for (let i = 0; i < MAX_DAYS; i++, day = day.plus({ days: 1 })) {
      const w = this.window(day);
      if (!w || w.to <= start) continue;
      const begin = Math.max(start, w.from);
      if (left <= w.to - begin) return begin + left;
      left -= w.to - begin;
    }
    // No working time within ten years: the deadline is as far as the search went.
    return day.toMillis();
  }

  /** Working time between two instants (0 when `b` is not after `a`). */
  between(a: number, b: number): number {
    if (b <= a) return 0;
    let sum = 0;
    let day = DateTime.fromMillis(a, { zone: this.cfg.timeZone }).startOf('day');
    for (let i = 0; i < MAX_DAYS && day.toMillis() < b; i++, day = day.plus({ days: 1 })) {
      const w = this.window(day);
      if (!w) continue;
      sum += Math.max(0, Math.min(b, w.to) - Math.max(a, w.from));
    }
    return sum;
  }
}
