import { DateTime } from 'luxon';
import type { Severity } from '../rules/types.js';
import type { ReadRateEntry } from '../rules/read-rate.js';
import { cyclesOf, judge } from './sla.js';
import { reportWord } from './report-words.js';
import {
  clockPaused,
  PRIORITIES,
  type Language,
  type Priority,
  type SlaCycle,
  type SlaJudgement,
  type Ticket,
} from './types.js';

const MIN = 60_000;

/** What the report needs of an alarm. */
export interface ReportAlarm {
  site: string;
  rule: string;
  severity: Severity;
  raisedAt: number;
}

export interface MonthlyReportInput {
  /** `YYYY-MM`. */
  month: string;
  /** IANA zone the month's boundaries are taken in. */
  timeZone: string;
  /** Only this site (null: all sites). */
  site: string | null;
  generatedAt: number;
  /** Every ticket created before the month's end, with at least its `escalate` and `close` history lines. */
  tickets: readonly Ticket[];
  /** Alarms raised in the month (others are ignored). */
  alarms: readonly ReportAlarm[];
  /** Read rates of the report's period (the caller picks live windows or InfluxDB's history). */
  readRates: readonly ReadRateEntry[];
}

export interface CountBy {
  total: number;
  byPriority: Record<Priority, number>;
  bySite: Record<string, number>;
}

export interface TimeFigures {
  count: number;
  meanMin: number | null;
  p90Min: number | null;
}

export interface ReadRateRow {
  site: string;
  meterClass: string;
  period: 'month' | 'quarter';
  expected: number;
  reported: number;
  rate: number;
  target: number;
  met: boolean;
}

export interface MonthlyReport {
  month: string;
  timeZone: string;
  from: string;
  to: string;
  generatedAt: string;
  site: string | null;
  tickets: { opened: CountBy; closed: CountBy };
  response: TimeFigures;
  resolution: TimeFigures;
  sla: {
    response: SlaFigure;
    resolution: SlaFigure;
    byPriority: Record<Priority, { responseRate: number | null; resolutionRate: number | null }>;
  };
  /** Cycles begun by a reopen, apart from the first cycles above: their own times and deadlines. */
  reopened: {
    count: number;
    response: TimeFigures;
    resolution: TimeFigures;
    sla: { response: SlaFigure; resolution: SlaFigure };
  };
  escalations: { total: number; byLevel: Record<string, number> };
  repeats: { count: number; rate: number | null };
  preventive: {
    due: number;
    doneOnTime: number;
    late: number;
    open: number;
    missed: number;
    onTimeRate: number | null;
  };
  alarms: {
    total: number;
    bySeverity: Record<string, number>;
    byRule: Record<string, number>;
    bySite: Record<string, number>;
  };
  readRates: ReadRateRow[];
}

export interface SlaFigure {
  met: number;
  total: number;
  rate: number | null;
}

export type MonthError = { ok: false; message: string };

/** The month's first instant and the next month's first instant in `timeZone`, epoch ms. */
export function monthRange(
  month: string,
  timeZone: string,
): { ok: true; from: number; to: number } | MonthError {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m) return { ok: false, message: `month must be YYYY-MM, got ${JSON.stringify(month)}` };
  const start = DateTime.fromObject({ year: Number(m[1]), month: Number(m[2]), day: 1 }, { zone: timeZone });
  if (!start.isValid)
    return { ok: false, message: `time zone ${timeZone}: ${start.invalidExplanation ?? ''}` };
  return { ok: true, from: start.toMillis(), to: start.plus({ months: 1 }).toMillis() };
}

/**
 * The 90th percentile by the nearest-rank method: the value at rank ⌈0.9·n⌉ of the values sorted
 * ascending (1-based). Always one of the values; for n < 10 it is the largest.
 */
export function percentileNearestRank(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
/** A share 0..1 to four decimals; null when there is nothing to share. */
const ratio = (a: number, b: number) => (b === 0 ? null : Math.round((a / b) * 10_000) / 10_000);

function times(mins: number[]): TimeFigures {
  if (mins.length === 0) return { count: 0, meanMin: null, p90Min: null };
  const mean = mins.reduce((a, b) => a + b, 0) / mins.length;
  return { count: mins.length, meanMin: round2(mean), p90Min: round2(percentileNearestRank(mins, 90)!) };
}

function emptyCount(): CountBy {
  return { total: 0, byPriority: { critical: 0, high: 0, medium: 0, low: 0 }, bySite: {} };
}

function count(c: CountBy, t: Ticket, priority: Priority): void {
  c.total++;
  c.byPriority[priority]++;
  c.bySite[t.site] = (c.bySite[t.site] ?? 0) + 1;
}

const isPriority = (p: string): p is Priority => (PRIORITIES as readonly string[]).includes(p);

function slaFigures(by: SlaCounts): MonthlyReport['sla'] {
  const sum = (k: 'rMet' | 'rTotal' | 'sMet' | 'sTotal') => PRIORITIES.reduce((a, p) => a + by[p][k], 0);
  return {
    response: { met: sum('rMet'), total: sum('rTotal'), rate: ratio(sum('rMet'), sum('rTotal')) },
    resolution: { met: sum('sMet'), total: sum('sTotal'), rate: ratio(sum('sMet'), sum('sTotal')) },
    byPriority: Object.fromEntries(
      PRIORITIES.map((p) => [
        p,
        { responseRate: ratio(by[p].rMet, by[p].rTotal), resolutionRate: ratio(by[p].sMet, by[p].sTotal) },
      ]),
    ) as MonthlyReport['sla']['byPriority'],
  };
}

const inc = (r: Record<string, number>, k: string) => (r[k] = (r[k] ?? 0) + 1);

/** Met and judged deadlines by priority. */
type SlaCounts = Record<Priority, { rMet: number; rTotal: number; sMet: number; sTotal: number }>;

const emptySla = (): SlaCounts =>
  Object.fromEntries(PRIORITIES.map((p) => [p, { rMet: 0, rTotal: 0, sMet: 0, sTotal: 0 }])) as SlaCounts;

/**
 * A cycle's deadline as the report judges it by `now`: its judgement when one was written (fixed
 * since), else met or missed from the cycle's times. Not judged (null): still ahead and not met;
 * a resolution deadline whose clock is paused since before it fell due; a deadline of a cycle that
 * ended (reopen) before it fell due without its step.
 */
function judged(
  c: SlaCycle,
  kind: 'response' | 'resolve',
  now: number,
  pausedSince: number | null,
): SlaJudgement | null {
  const written = c[kind];
  if (written) return written;
  const dueAt = kind === 'response' ? c.responseDueAt : c.resolveDueAt;
  const doneAt = kind === 'response' ? c.respondedAt : c.resolvedAt;
  const j = judge(doneAt, dueAt, Math.min(now, c.endedAt ?? Infinity), c.priority);
  if (j?.met === false && kind === 'resolve' && pausedSince !== null && pausedSince <= dueAt) return null;
  return j;
}

/**
 * The monthly service report (CONTRACT.md), a pure function of tickets, alarms and read rates.
 * Definitions (docs/workorders.md "Monthly service report"), every window half-open `[from, to)`:
 * - opened: created in the month, by the priority opened with; closed: `close` lines in the month,
 *   by the priority then.
 * - response time: `respondedAt − start` of cycles responded in the month (acknowledge or assign);
 *   resolution time: `resolvedAt − start − heldMs` of cycles resolved in the month (time the clock
 *   was paused does not count). A cycle starts at creation, or at a reopen.
 * - SLA: each deadline is judged in the month it falls in: by the judgement written when it was
 *   decided (met when the step came by it, missed once it passed without it), which nothing later
 *   changes; a deadline still ahead of `generatedAt` and not yet met is not judged.
 * - first cycles count in `response`, `resolution` and `sla`; cycles begun by a reopen in `reopened`.
 * - escalations: `escalate` lines of the history in the month, by the level they reached.
 * - repeats: tickets opened in the month with `repeatOf`; rate over tickets opened.
 * - preventive: maintenance tickets whose occurrence fell due in the month, by their first cycle:
 *   done on time when resolved by their resolution deadline, missed when that passed without it
 *   (`late`: resolved since, `open`: not yet), open when not resolved.
 * - alarms: raised in the month.
 */
export function monthlyReport(input: MonthlyReportInput): MonthlyReport | MonthError {
  const range = monthRange(input.month, input.timeZone);
  if (!range.ok) return range;
  const { from, to } = range;
  const within = (ts: number | null | undefined): ts is number =>
    ts !== null && ts !== undefined && ts >= from && ts < to;
  const now = input.generatedAt;
  const tickets = input.tickets.filter((t) => input.site === null || t.site === input.site);

  const opened = emptyCount();
  const closed = emptyCount();
  const first = { responseMin: [] as number[], resolveMin: [] as number[], sla: emptySla() };
  const again = { count: 0, responseMin: [] as number[], resolveMin: [] as number[], sla: emptySla() };
  const escalations = { total: 0, byLevel: {} as Record<string, number> };
  let repeats = 0;
  const pm = { due: 0, doneOnTime: 0, late: 0, open: 0, missed: 0 };

  for (const t of tickets) {
    if (within(t.createdAt)) {
      count(opened, t, t.openedPriority ?? t.priority);
      if (t.repeatOf !== null) repeats++;
    }
    const cycles = cyclesOf(t);
    // Only the current cycle can be paused now.
    const pausedSince = clockPaused(t) ? (t.heldSince ?? null) : null;
    for (const c of cycles) {
      const into = c.n === 1 ? first : again;
      if (c.n > 1 && within(c.startedAt)) again.count++;
      if (within(c.respondedAt)) into.responseMin.push((c.respondedAt - c.startedAt) / MIN);
      if (within(c.resolvedAt)) into.resolveMin.push((c.resolvedAt - c.startedAt - c.heldMs) / MIN);
      const r = judged(c, 'response', now, null);
      if (r && within(r.dueAt)) {
        into.sla[r.priority].rTotal++;
        if (r.met) into.sla[r.priority].rMet++;
      }
      const s = judged(c, 'resolve', now, c.endedAt === null ? pausedSince : null);
      if (s && within(s.dueAt)) {
        into.sla[s.priority].sTotal++;
        if (s.met) into.sla[s.priority].sMet++;
      }
    }
    for (const h of t.history) {
      if (!within(h.ts)) continue;
      if (h.action === 'close') {
        const p = h.data?.priority;
        count(closed, t, typeof p === 'string' && isPriority(p) ? p : t.priority);
      } else if (h.action === 'escalate') {
        escalations.total++;
        inc(escalations.byLevel, String(h.data?.level ?? '?'));
      }
    }
    if (t.maintenance && within(t.maintenance.dueAt)) {
      // The occurrence is its first cycle: a reopen later is follow-up work, not the occurrence.
      const c = cycles[0]!;
      const s = judged(c, 'resolve', now, c.endedAt === null ? pausedSince : null);
      pm.due++;
      if (s?.met) pm.doneOnTime++;
      else if (s) pm.missed++;
      if (c.resolvedAt === null) pm.open++;
      else if (!s?.met) pm.late++;
    }
  }

  const alarms = {
    total: 0,
    bySeverity: {} as Record<string, number>,
    byRule: {} as Record<string, number>,
    bySite: {} as Record<string, number>,
  };
  for (const a of input.alarms) {
    if (!within(a.raisedAt) || (input.site !== null && a.site !== input.site)) continue;
    alarms.total++;
    inc(alarms.bySeverity, a.severity);
    inc(alarms.byRule, a.rule);
    inc(alarms.bySite, a.site);
  }

  // The caller gives the read rates of the report's period: the rule's rolling windows for the
  // running month, InfluxDB's history for a month that has ended.
  const readRates: ReadRateRow[] = input.readRates
    .filter((r) => input.site === null || r.site === input.site)
    .map((r) => ({
      site: r.site,
      meterClass: r.meterClass,
      period: r.windowDays > 31 ? 'quarter' : 'month',
      expected: r.expected,
      reported: r.read,
      rate: r.rate,
      target: r.target,
      met: r.ok,
    }));

  const iso = (ms: number) => new Date(ms).toISOString();
  const againSla = slaFigures(again.sla);
  return {
    month: input.month,
    timeZone: input.timeZone,
    from: iso(from),
    to: iso(to),
    generatedAt: iso(now),
    site: input.site,
    tickets: { opened, closed },
    response: times(first.responseMin),
    resolution: times(first.resolveMin),
    sla: slaFigures(first.sla),
    reopened: {
      count: again.count,
      response: times(again.responseMin),
      resolution: times(again.resolveMin),
      sla: { response: againSla.response, resolution: againSla.resolution },
    },
    escalations,
    repeats: { count: repeats, rate: ratio(repeats, opened.total) },
    preventive: { ...pm, onTimeRate: ratio(pm.doneOnTime, pm.due) },
    alarms,
    readRates,
  };
}

/** RFC 4180 field: quoted when it holds a comma, quote or line break. */
function csvField(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * The report as CSV: one section per table, each a line `section,<name>`, a header line, the rows,
 * and an empty line. Empty cells stand for null.
 */
export function monthlyReportCsv(r: MonthlyReport, lang: Language = 'en'): string {
  const out: string[] = [];
  const w = (x: string) => reportWord(x, lang);
  // Fixed labels in the rows (measures, priorities) are translated; data (ids, numbers) never.
  const label = (v: unknown) => (typeof v === 'string' ? w(v) : v);
  const section = (name: string, header: string[], rows: unknown[][]) => {
    out.push(`${w('section')},${w(name)}`, header.map(w).join(','));
    for (const row of rows)
      out.push(row.map((v, i) => csvField(labelled(header[i]) ? label(v) : v)).join(','));
    out.push('');
  };
  section(
    'summary',
    ['month', 'timeZone', 'from', 'to', 'generatedAt', 'site'],
    [[r.month, r.timeZone, r.from, r.to, r.generatedAt, r.site]],
  );
  const ticketRows: unknown[][] = [];
  for (const which of ['opened', 'closed'] as const) {
    const c = r.tickets[which];
    ticketRows.push([which, 'total', '', c.total]);
    for (const p of PRIORITIES) ticketRows.push([which, 'priority', p, c.byPriority[p]]);
    for (const [s, n] of Object.entries(c.bySite)) ticketRows.push([which, 'site', s, n]);
  }
  section('tickets', ['measure', 'by', 'key', 'count'], ticketRows);
  section(
    'times',
    ['measure', 'count', 'meanMin', 'p90Min'],
    [
      ['response', r.response.count, r.response.meanMin, r.response.p90Min],
      ['resolution', r.resolution.count, r.resolution.meanMin, r.resolution.p90Min],
    ],
  );
  section(
    'sla',
    ['deadline', 'priority', 'met', 'total', 'rate'],
    [
      ['response', 'all', r.sla.response.met, r.sla.response.total, r.sla.response.rate],
      ['resolution', 'all', r.sla.resolution.met, r.sla.resolution.total, r.sla.resolution.rate],
      ...PRIORITIES.flatMap((p) => [
        ['response', p, '', '', r.sla.byPriority[p].responseRate],
        ['resolution', p, '', '', r.sla.byPriority[p].resolutionRate],
      ]),
    ],
  );
  const ro = r.reopened;
  const cycleRow = (measure: string, t: TimeFigures, sla: SlaFigure) => [
    measure,
    t.count,
    t.meanMin,
    t.p90Min,
    sla.met,
    sla.total,
    sla.rate,
  ];
  section(
    'reopened',
    ['measure', 'count', 'meanMin', 'p90Min', 'met', 'total', 'rate'],
    [
      ['reopens', ro.count, '', '', '', '', ''],
      cycleRow('response', ro.response, ro.sla.response),
      cycleRow('resolution', ro.resolution, ro.sla.resolution),
    ],
  );
  section(
    'escalations',
    ['level', 'count'],
    [['all', r.escalations.total], ...Object.entries(r.escalations.byLevel)],
  );
  section('repeats', ['count', 'rate'], [[r.repeats.count, r.repeats.rate]]);
  const p = r.preventive;
  section(
    'preventive',
    ['due', 'doneOnTime', 'late', 'open', 'missed', 'onTimeRate'],
    [[p.due, p.doneOnTime, p.late, p.open, p.missed, p.onTimeRate]],
  );
  section(
    'alarms',
    ['by', 'key', 'count'],
    [
      ['total', '', r.alarms.total],
      ...Object.entries(r.alarms.bySeverity).map(([k, n]) => ['severity', k, n]),
      ...Object.entries(r.alarms.byRule).map(([k, n]) => ['rule', k, n]),
      ...Object.entries(r.alarms.bySite).map(([k, n]) => ['site', k, n]),
    ],
  );
  section(
    'readRates',
    ['site', 'meterClass', 'period', 'expected', 'reported', 'rate', 'target', 'met'],
    r.readRates.map((x) => [x.site, x.meterClass, x.period, x.expected, x.reported, x.rate, x.target, x.met]),
  );
  // A byte-order mark lets a spreadsheet open the Chinese text as UTF-8.
  return (lang === 'zh' ? '\uFEFF' : '') + out.join('\r\n');
}

/** Columns that hold fixed labels (translated), not data. */
function labelled(column: string | undefined): boolean {
  return column === 'measure' || column === 'by' || column === 'deadline' || column === 'priority';
}
