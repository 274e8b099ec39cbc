// rrule ships CommonJS for Node: its named exports are only reachable through the default one.
import rrule, { type RRule, type RRuleSet } from 'rrule';
import { nextCron, parseCron, type Cron } from '../core/cron.js';

/**
 * Maintenance windows: planned work (tank cleaning, a meter exchange, a power test) set in
 * advance. An alarm raised inside one is recorded as suppressed and pages nobody. Pure: the
 * caller's clock, no I/O.
 */
export type WindowSchedule =
  | { type: 'once'; fromMs: number; toMs: number }
  /** An RFC 5545 rule, with its DTSTART (and TZID) in the string: `DTSTART:...\nRRULE:FREQ=...`. */
  | { type: 'rrule'; rrule: string; durationMin: number }
  /** Five-field cron in `timeZone` (the preventive-maintenance parser). */
  | { type: 'cron'; cron: string; timeZone: string; durationMin: number };

export interface MaintenanceWindow {
  id: string;
  /** Scope: every field that is set must match; at least one is set. */
  site: string | null;
  device: string | null;
  kind: string | null;
  rule: string | null;
  schedule: WindowSchedule;
  reason: string;
  /** The name of the token that set it. */
  createdBy: string;
  /** SSO: the identity provider's subject of whoever set it / ended it (null: none or a token). */
  createdBySubject?: string | null;
  createdAt: number;
  /** Ended early (or cancelled) by a person; no occurrence covers anything from then on. */
  endedAt: number | null;
  endedBy: string | null;
  endedBySubject?: string | null;
}

/** What a window is matched against: an alarm or a rule transition. */
export interface WindowSubject {
  site: string;
  device: string;
  kind: string;
  rule: string;
}

export interface Occurrence {
  from: number;
  to: number;
}

type Compiled =
  | { type: 'once'; fromMs: number; toMs: number }
  | { type: 'rrule'; rule: RRule | RRuleSet; durationMs: number }
  | { type: 'cron'; cron: Cron; timeZone: string; durationMs: number };

const compiled = new WeakMap<WindowSchedule, Compiled>();

/** Reads a schedule; throws an Error naming what is wrong (the route turns it into a 400). */
export function compileSchedule(s: WindowSchedule): Compiled {
  let c = compiled.get(s);
  if (c) return c;
  switch (s.type) {
    case 'once':
      if (!(s.toMs > s.fromMs)) throw new Error('to must be after from');
      c = { type: 'once', fromMs: s.fromMs, toMs: s.toMs };
      break;
    case 'rrule': {
      let rule: RRule | RRuleSet;
      try {
        rule = rrule.rrulestr(s.rrule, { forceset: false });
      } catch (err) {
        throw new Error(`rrule: ${(err as Error).message}`, { cause: err });
      }
      // Without a DTSTART rrule counts from "now" at parse time: a window must say when it begins.
      if (!/DTSTART/i.test(s.rrule)) throw new Error('rrule: needs a DTSTART line');
      c = { type: 'rrule', rule, durationMs: s.durationMin * 60_000 };
      break;
    }
    case 'cron':
      c = { type: 'cron', cron: parseCron(s.cron), timeZone: s.timeZone, durationMs: s.durationMin * 60_000 };
      break;
  }
  compiled.set(s, c);
  return c;
}

/** The first occurrence that begins strictly after `after`, if any. */
function startAfter(c: Compiled, after: number): number | undefined {
  switch (c.type) {
    case 'once':
      return c.fromMs > after ? c.fromMs : undefined;
    case 'rrule':
      return c.rule.after(new Date(after), false)?.getTime();
    case 'cron':
      return nextCron(c.cron, after, c.timeZone);
  }
}

function durationOf(c: Compiled): number {
  return c.type === 'once' ? c.toMs - c.fromMs : c.durationMs;
}

/**
 * The occurrence of the window's schedule that covers `ts` (`from <= ts < to`), cut short where
 * the window was ended early; undefined when none does.
 */
export function occurrenceAt(w: MaintenanceWindow, ts: number): Occurrence | undefined {
  if (w.endedAt !== null && ts >= w.endedAt) return undefined;
  const c = compileSchedule(w.schedule);
  const d = durationOf(c);
  // The latest start that could still cover ts is the first one after ts - d (starts are ordered).
  const from = c.type === 'once' ? c.fromMs : startAfter(c, ts - d);
  if (from === undefined || from > ts || ts >= from + d) return undefined;
  const to = w.endedAt !== null ? Math.min(from + d, w.endedAt) : from + d;
  return { from, to };
}

/** Whether the window's scope takes in this site, device, kind and rule. */
export function scopeMatches(w: MaintenanceWindow, s: WindowSubject): boolean {
  return (
    (w.site === null || w.site === s.site) &&
    (w.device === null || w.device === s.device) &&
    (w.kind === null || w.kind === s.kind) &&
    (w.rule === null || w.rule === s.rule)
  );
}

/** The first window among `windows` that covers the subject at `ts`. */
export function coveringWindow(
  windows: readonly MaintenanceWindow[],
  s: WindowSubject,
  ts: number,
): MaintenanceWindow | undefined {
  for (const w of windows) if (scopeMatches(w, s) && occurrenceAt(w, ts) !== undefined) return w;
  return undefined;
}

/** The next occurrence that begins after `now` (for the API and dashboard); undefined when none will. */
export function nextOccurrence(w: MaintenanceWindow, now: number): Occurrence | undefined {
  if (w.endedAt !== null) return undefined;
  const c = compileSchedule(w.schedule);
  const from = startAfter(c, now);
  return from === undefined ? undefined : { from, to: from + durationOf(c) };
}

/** No occurrence covers `now` or anything after it: the window can be forgotten (it stays in the record). */
export function isFinished(w: MaintenanceWindow, now: number): boolean {
  if (w.endedAt !== null && w.endedAt <= now) return true;
  return occurrenceAt(w, now) === undefined && nextOccurrence(w, now) === undefined;
}
