import { DateTime } from 'luxon';

/**
 * A small five-field cron parser (minute hour day-of-month month day-of-week) for
 * preventive-maintenance schedules: `*`, numbers, ranges `a-b`, lists `a,b` and steps `*\/n`, `a-b/n`.
 * Day of week 0 or 7 is Sunday. As in classic cron, when both day fields are restricted a day
 * matching either is taken.
 */
export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  anyDay: boolean;
  anyWeekday: boolean;
}

const RANGES: [number, number][] = [
  [0, 59],
  [0, 23],
  [1, 31],
  [1, 12],
  [0, 7],
];

function field(text: string, [lo, hi]: [number, number], name: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new Error(`cron ${name}: cannot read "${part}"`);
    const from = m[1] === '*' ? lo : Number(m[2]);
    const to = m[1] === '*' ? hi : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? hi : from;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (from < lo || to > hi || from > to || step < 1)
      throw new Error(`cron ${name}: "${part}" outside ${lo}-${hi}`);
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

export function parseCron(expr: string): Cron {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5)
    throw new Error(`cron: expected 5 fields (minute hour day month weekday), got ${parts.length}`);
  const names = ['minute', 'hour', 'day', 'month', 'weekday'];
  const [minutes, hours, days, months, weekdays] = parts.map((p, i) => field(p, RANGES[i]!, names[i]!)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  if (weekdays.has(7)) weekdays.add(0);
  return { minutes, hours, days, months, weekdays, anyDay: parts[2] === '*', anyWeekday: parts[4] === '*' };
}

const DAY = 86_400_000;

/**
 * The first time strictly after `after` (epoch ms) that the expression matches in the time zone
 * (UTC by default); undefined within 5 years.
 */
export function nextCron(c: Cron, after: number, zone = 'UTC'): number | undefined {
  if (zone !== 'UTC') return nextCronIn(c, after, zone);
  const start = Math.floor(after / 60_000) * 60_000 + 60_000;
  const firstDay = Math.floor(start / DAY) * DAY;
  for (let day = firstDay; day < firstDay + 5 * 366 * DAY; day += DAY) {
    const d = new Date(day);
    if (!dayMatches(c, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCDay())) continue;
    for (let h = 0; h < 24; h++) {
      if (!c.hours.has(h)) continue;
      for (let m = 0; m < 60; m++) {
        if (!c.minutes.has(m)) continue;
        const t = day + h * 3_600_000 + m * 60_000;
        if (t >= start) return t;
      }
    }
  }
  return undefined;
}

/** Days that match the day fields (as classic cron: both restricted means either matches). */
function dayMatches(c: Cron, month: number, dom: number, dow: number): boolean {
  if (!c.months.has(month)) return false;
  const d = c.days.has(dom);
  const w = c.weekdays.has(dow);
  return c.anyDay && c.anyWeekday ? true : c.anyDay ? w : c.anyWeekday ? d : d || w;
}

/**
 * `nextCron` in a time zone, local day by local day (luxon). A local time skipped by a clock change
 * falls due when the clocks have gone forward; a repeated one the first time it occurs.
 */
function nextCronIn(c: Cron, after: number, zone: string): number | undefined {
  const hours = [...c.hours].sort((a, b) => a - b);
  const minutes = [...c.minutes].sort((a, b) => a - b);
  let day = DateTime.fromMillis(after, { zone }).startOf('day');
  for (let i = 0; i < 5 * 366; i++, day = day.plus({ days: 1 })) {
    // luxon weekdays are 1 (Monday) … 7 (Sunday); cron's Sunday is 0.
    if (!dayMatches(c, day.month, day.day, day.weekday % 7)) continue;
    for (const h of hours) {
      for (const m of minutes) {
        const t = day.set({ hour: h, minute: m }).toMillis();
        if (t > after) return t;
      }
    }
  }
  return undefined;
}
