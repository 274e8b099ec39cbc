// Times in a schedule's own IANA zone, whatever the browser's zone is (a maintenance schedule's
// times are the site's wall clock). Pure, with the browser's Intl only, so it is tested without a browser.
import type { Lang } from './i18n.js';

/** The instant as month, day, hour and minute on the zone's wall clock. */
export function fmtZoned(iso: string | number | null | undefined, lang: Lang, zone: string): string {
  if (iso === null || iso === undefined) return '–';
  return new Date(iso).toLocaleString(lang, {
    timeZone: zone,
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** The zone's wall clock at `ms` as milliseconds of the same fields read as UTC. */
function wallAsUtc(ms: number, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(ms);
  const f = (t: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return Date.UTC(f('year'), f('month') - 1, f('day'), f('hour'), f('minute'), f('second'));
}

/** `<input type=datetime-local>` value of an instant on the zone's wall clock (`2026-12-10T09:00`). */
export function zonedInput(ms: number, zone: string): string {
  return new Date(wallAsUtc(ms, zone)).toISOString().slice(0, 16);
}

/**
 * The instant a `datetime-local` value (`2026-12-10T09:00`) names on the zone's wall clock, or
 * undefined if it is not such a value. A wall time the clocks skip (spring forward) lands just after
 * the change, as the gateway's schedules do; a repeated one (fall back) is one of its two instants.
 */
export function zonedInstant(value: string, zone: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value);
  if (!m) return undefined;
  const wall = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!);
  // The offset at a first guess, then at the instant it gives: they differ only near a change.
  const before = wallAsUtc(wall, zone) - wall;
  const t = wall - before;
  const after = wallAsUtc(t, zone) - t;
  if (after === before) return t;
  const t2 = wall - after;
  return wallAsUtc(t2, zone) - t2 === after ? t2 : Math.max(t, t2);
}
