import { describe, expect, it } from 'vitest';
import {
  monthlyReport,
  monthlyReportCsv,
  monthRange,
  percentileNearestRank,
  type MonthlyReport,
  type ReportAlarm,
} from '../../gateway/src/workorders/report.js';
import type { HistoryEntry, Priority, Ticket } from '../../gateway/src/workorders/types.js';

/** 2026-10-d hh:mm UTC. */
const oct = (d: number, h: number, m = 0) => Date.UTC(2026, 9, d, h, m);
const MIN = 60_000;

function esc(ts: number, level: number): HistoryEntry {
  return { ts, actor: 'system', action: 'escalate', from: 'open', to: 'open', note: null, data: { level } };
}
/** The `close` line the month's closed tickets are counted by. */
function closeLine(ts: number): HistoryEntry {
  return { ts, actor: 'desk', action: 'close', from: 'resolved', to: 'closed', note: null };
}

let n = 0;
function tk(priority: Priority, site: string, over: Partial<Ticket>): Ticket {
  const id = `WO-${String(++n).padStart(6, '0')}`;
  return {
    id,
    title: id,
    status: 'open',
    priority,
    class: 'routine',
    severity: null,
    site,
    device: null,
    rule: null,
    alarmId: null,
    alarmIds: [],
    incidentId: null,
    devices: [],
    serviceItem: id,
    standard: null,
    location: null,
    requester: 'system',
    critical: false,
    readings: null,
    conditionCleared: false,
    createdAt: 0,
    updatedAt: 0,
    responseDueAt: 0,
    resolveDueAt: 0,
    respondedAt: null,
    resolvedAt: null,
    resolvedBy: null,
    verifiedAt: null,
    verifiedBy: null,
    closedAt: null,
    assignee: null,
    escalationLevel: 0,
    nextResponseCheckAt: null,
    nextResolveCheckAt: null,
    breaches: { response: 0, resolve: 0 },
    repeatOf: null,
    history: [],
    ...over,
  };
}
const pm = (dueAt: number) => ({ schedule: 'tank-disinfection', dueAt, form: 'none' as const, record: null });

// The fixture: ten tickets around October 2026. Times in minutes after creation in brackets.
const tickets: Ticket[] = [
  // A critical s1: responded in 10 (due 15: met), resolved in 100 (due 120: met), closed Oct 3.
  tk('critical', 's1', {
    createdAt: oct(2, 10),
    respondedAt: oct(2, 10, 10),
    responseDueAt: oct(2, 10, 15),
    resolvedAt: oct(2, 11, 40),
    resolveDueAt: oct(2, 12),
    closedAt: oct(3, 9),
    status: 'closed',
    history: [closeLine(oct(3, 9))],
  }),
  // B high s1, a repeat: responded in 40 (due 30: missed), resolved in 240 (due 180: missed); escalated twice.
  tk('high', 's1', {
    createdAt: oct(5, 8),
    respondedAt: oct(5, 8, 40),
    responseDueAt: oct(5, 8, 30),
    resolvedAt: oct(5, 12),
    resolveDueAt: oct(5, 11),
    status: 'resolved',
    repeatOf: 'WO-000000',
    history: [esc(oct(5, 8, 30), 1), esc(oct(5, 11), 2)],
  }),
  // C medium s2: responded in 20 (met), resolved after 270 of which 60 on hold: 210; deadline moved to 14:00 (met).
  tk('medium', 's2', {
    createdAt: oct(10, 9),
    respondedAt: oct(10, 9, 20),
    responseDueAt: oct(10, 9, 30),
    resolvedAt: oct(10, 13, 30),
    resolveDueAt: oct(10, 14),
    heldMs: 60 * MIN,
    closedAt: oct(11, 10),
    status: 'closed',
    history: [closeLine(oct(11, 10))],
  }),
  // D low s2, created Oct 30 22:00: neither responded (due Oct 31 00:00) nor resolved (due Oct 31 22:00): both missed.
  tk('low', 's2', { createdAt: oct(30, 22), responseDueAt: oct(31, 0), resolveDueAt: oct(31, 22) }),
  // E medium s1, a repeat opened in September: resolved Oct 1 02:00 (Sep 28 08:00 + 66 h = 3960 min, due Oct 1 00:00: missed),
  // closed Oct 2; escalated at its deadline.
  tk('medium', 's1', {
    createdAt: Date.UTC(2026, 8, 28, 8),
    respondedAt: Date.UTC(2026, 8, 28, 8, 10),
    responseDueAt: Date.UTC(2026, 8, 28, 8, 30),
    resolvedAt: oct(1, 2),
    resolveDueAt: oct(1, 0),
    closedAt: oct(2, 12),
    status: 'closed',
    repeatOf: 'WO-000000',
    history: [esc(oct(1, 0), 1), closeLine(oct(2, 12))],
  }),
  // F medium s1, maintenance due Oct 11 08:00: responded in 5 (met), resolved in 26 h = 1560 (due Oct 14: on time).
  tk('medium', 's1', {
    createdAt: oct(11, 8),
    respondedAt: oct(11, 8, 5),
    responseDueAt: oct(11, 8, 30),
    resolvedAt: oct(12, 10),
    resolveDueAt: oct(14, 8),
    status: 'resolved',
    maintenance: pm(oct(11, 8)),
  }),
  // G medium s2, maintenance due Oct 21 08:00: responded in 60 (missed), resolved in 4 days = 5760 (due Oct 24: late).
  tk('medium', 's2', {
    createdAt: oct(21, 8),
    respondedAt: oct(21, 9),
    responseDueAt: oct(21, 8, 30),
    resolvedAt: oct(25, 8),
    resolveDueAt: oct(24, 8),
    status: 'resolved',
    maintenance: pm(oct(21, 8)),
    history: [esc(oct(21, 8, 30), 1)],
  }),
  // H low s1, maintenance due Oct 31 08:00: no response (due 10:00: missed), open (resolution due Nov 3: not judged).
  tk('low', 's1', {
    createdAt: oct(31, 8),
    responseDueAt: oct(31, 10),
    resolveDueAt: Date.UTC(2026, 10, 3, 8),
    maintenance: pm(oct(31, 8)),
  }),
  // I s1 opened in November: nothing of it counts for October.
  tk('critical', 's1', {
    createdAt: Date.UTC(2026, 10, 2),
    responseDueAt: Date.UTC(2026, 10, 2, 0, 15),
    resolveDueAt: Date.UTC(2026, 10, 2, 2),
    history: [esc(Date.UTC(2026, 10, 2, 0, 15), 1)],
  }),
  // J high s2: responded in 10 (met), on hold since 11:00: its resolution deadline (13:00) is not judged.
  tk('high', 's2', {
    createdAt: oct(20, 10),
    respondedAt: oct(20, 10, 10),
    responseDueAt: oct(20, 10, 30),
    resolveDueAt: oct(20, 13),
    onHold: true,
    heldSince: oct(20, 11),
    status: 'in_progress',
  }),
];

const alarms: ReportAlarm[] = [
  { site: 's1', rule: 'chlorine.free.low', severity: 'critical', raisedAt: oct(2, 9, 58) },
  { site: 's1', rule: 'chlorine.free.low', severity: 'warning', raisedAt: oct(5, 7, 59) },
  { site: 's2', rule: 'water.leak', severity: 'warning', raisedAt: oct(10, 8, 59) },
  // Sep 30 23:59 UTC: September in UTC, October 1 07:59 in Asia/Shanghai.
  { site: 's2', rule: 'serverroom.temp.high', severity: 'critical', raisedAt: Date.UTC(2026, 8, 30, 23, 59) },
  // Oct 31 20:00 UTC: October in UTC, November 1 04:00 in Asia/Shanghai.
  { site: 's2', rule: 'serverroom.temp.high', severity: 'warning', raisedAt: oct(31, 20) },
  // The first instant of November: outside (windows are half-open).
  { site: 's1', rule: 'gas.leak', severity: 'critical', raisedAt: Date.UTC(2026, 10, 1) },
];

const NOV5 = Date.UTC(2026, 10, 5);
const base = {
  month: '2026-10',
  timeZone: 'UTC',
  site: null,
  generatedAt: NOV5,
  tickets,
  alarms,
  readRates: [],
};

function report(over: Partial<typeof base> | { site: string } = {}): MonthlyReport {
  const r = monthlyReport({ ...base, ...over });
  if ('ok' in r) throw new Error(r.message);
  return r;
}

describe('monthly report: figures checked against the hand-computed fixture', () => {
  it('counts opened and closed tickets by priority and site', () => {
    const r = report();
    expect(r.from).toBe('2026-10-01T00:00:00.000Z');
    expect(r.to).toBe('2026-11-01T00:00:00.000Z');
    // Opened in October: A B C D F G H J (E is September's, I November's).
    expect(r.tickets.opened).toEqual({
      total: 8,
      byPriority: { critical: 1, high: 2, medium: 3, low: 2 },
      bySite: { s1: 4, s2: 4 },
    });
    // Closed in October: A (critical s1), C (medium s2), E (medium s1, opened in September).
    expect(r.tickets.closed).toEqual({
      total: 3,
      byPriority: { critical: 1, high: 0, medium: 2, low: 0 },
      bySite: { s1: 2, s2: 1 },
    });
  });

  it('response and resolution times: mean and nearest-rank 90th percentile', () => {
    const r = report();
    // Responded in October: A 10, B 40, C 20, F 5, G 60, J 10 → mean 145/6 = 24.17; p90 rank ⌈5.4⌉ = 6 → 60.
    expect(r.response).toEqual({ count: 6, meanMin: 24.17, p90Min: 60 });
    // Resolved in October: A 100, B 240, C 270 − 60 held = 210, E 3960, F 1560, G 5760
    // → sum 11830, mean 1971.67; p90 rank 6 → 5760.
    expect(r.resolution).toEqual({ count: 6, meanMin: 1971.67, p90Min: 5760 });
  });

  it('SLA compliance against each ticket own deadlines, judged in the month they fall in', () => {
    const r = report();
    // Response deadlines in October: A met, B missed, C met, D missed, F met, G missed, H missed, J met → 4/8.
    expect(r.sla.response).toEqual({ met: 4, total: 8, rate: 0.5 });
    // Resolution deadlines in October (J on hold is not judged, H falls in November):
    // A met, B missed, C met, D missed, E missed, F met, G missed → 3/7 = 0.4286.
    expect(r.sla.resolution).toEqual({ met: 3, total: 7, rate: 0.4286 });
    expect(r.sla.byPriority).toEqual({
      critical: { responseRate: 1, resolutionRate: 1 }, // A, A
      high: { responseRate: 0.5, resolutionRate: 0 }, // B missed J met; B missed
      medium: { responseRate: 0.6667, resolutionRate: 0.5 }, // C F met G missed; C F met E G missed
      low: { responseRate: 0, resolutionRate: 0 }, // D H missed; D missed
    });
  });

  it('escalations, repeats and preventive maintenance', () => {
    const r = report();
    // B level 1 and 2, E level 1 (Oct 1 00:00), G level 1; I's is November's.
    expect(r.escalations).toEqual({ total: 4, byLevel: { '1': 3, '2': 1 } });
    // Opened in October with repeatOf: B only (E is September's) → 1/8.
    expect(r.repeats).toEqual({ count: 1, rate: 0.125 });
    // Due in October: F on time, G late, H open. Missed (not done by the end of the window): G, and
    // H, whose window ended Nov 3, before the report was made on Nov 5.
    expect(r.preventive).toEqual({
      due: 3,
      doneOnTime: 1,
      late: 1,
      open: 1,
      missed: 2,
      onTimeRate: 0.3333,
    });
  });

  it('alarm counts, and month boundaries in the report time zone', () => {
    expect(report().alarms).toEqual({
      total: 4,
      bySeverity: { critical: 1, warning: 3 },
      byRule: { 'chlorine.free.low': 2, 'water.leak': 1, 'serverroom.temp.high': 1 },
      bySite: { s1: 2, s2: 2 },
    });
    const sh = report({ timeZone: 'Asia/Shanghai' });
    expect(sh.from).toBe('2026-09-30T16:00:00.000Z');
    expect(sh.to).toBe('2026-10-31T16:00:00.000Z');
    expect(sh.alarms.total).toBe(4);
    expect(sh.alarms.bySeverity).toEqual({ critical: 2, warning: 2 });
    // The same eight tickets: H (Oct 31 08:00 UTC) is Oct 31 16:00 in Shanghai, the last hours of October there.
    expect(sh.tickets.opened.total).toBe(8);
    // D's response deadline, Oct 31 00:00 UTC = 08:00 CST, is still October's: the same 8 response deadlines.
    expect(sh.sla.response.total).toBe(8);
  });

  it('one site only', () => {
    const r = report({ site: 's2' });
    expect(r.site).toBe('s2');
    expect(r.tickets.opened.total).toBe(4); // C D G J
    expect(r.alarms.total).toBe(2); // water.leak, the Oct 31 serverroom.temp.high
    expect(r.sla.response).toEqual({ met: 2, total: 4, rate: 0.5 }); // C J met; D G missed
  });

  it('read rates as the caller gives them for the period, filtered by site', () => {
    const rate = {
      site: 's1',
      meterClass: 'in-home' as const,
      expected: 10,
      read: 7,
      rate: 0.7,
      target: 0.7,
      windowDays: 91,
      ok: true,
    };
    const running = report({ generatedAt: oct(15, 0), readRates: [rate] } as Partial<typeof base>);
    expect(running.readRates).toEqual([
      {
        site: 's1',
        meterClass: 'in-home',
        period: 'quarter',
        expected: 10,
        reported: 7,
        rate: 0.7,
        target: 0.7,
        met: true,
      },
    ]);
    expect(report({ site: 's2', readRates: [rate] } as unknown as Partial<typeof base>).readRates).toEqual(
      [],
    );
  });

  it('empty month: nulls, not zeros or NaN', () => {
    const r = report({ tickets: [], alarms: [] } as Partial<typeof base>);
    expect(r.response).toEqual({ count: 0, meanMin: null, p90Min: null });
    expect(r.sla.response.rate).toBeNull();
    expect(r.repeats.rate).toBeNull();
    expect(r.preventive.onTimeRate).toBeNull();
  });

  it('bad month or time zone is an error with a reason', () => {
    expect(monthRange('2026-13', 'UTC')).toMatchObject({
      ok: false,
      message: expect.stringContaining('YYYY-MM'),
    });
    expect(monthRange('2026-10', 'Mars/Base')).toMatchObject({
      ok: false,
      message: expect.stringContaining('Mars/Base'),
    });
  });

  it('nearest-rank percentile', () => {
    expect(percentileNearestRank([], 90)).toBeNull();
    expect(percentileNearestRank([5], 90)).toBe(5);
    // n = 10: rank 9.
    expect(percentileNearestRank([10, 1, 9, 2, 8, 3, 7, 4, 6, 5], 90)).toBe(9);
    // n = 20: rank 18.
    expect(
      percentileNearestRank(
        Array.from({ length: 20 }, (_, i) => i + 1),
        90,
      ),
    ).toBe(18);
  });

  it('CSV: one section per table', () => {
    const csv = monthlyReportCsv(report());
    const lines = csv.split('\r\n');
    const sections = lines.filter((l) => l.startsWith('section,')).map((l) => l.slice(8));
    expect(sections).toEqual([
      'summary',
      'tickets',
      'times',
      'sla',
      'reopened',
      'escalations',
      'repeats',
      'preventive',
      'alarms',
      'readRates',
    ]);
    expect(lines).toContain('opened,priority,medium,3');
    expect(lines).toContain('response,6,24.17,60');
    expect(lines).toContain('resolution,all,3,7,0.4286');
    expect(lines).toContain('3,1,1,1,2,0.3333');
    expect(lines).toContain('reopens,0,,,,,');
    expect(lines).toContain('rule,chlorine.free.low,2');
    expect(lines[lines.indexOf('section,summary') + 2]).toBe(
      '2026-10,UTC,2026-10-01T00:00:00.000Z,2026-11-01T00:00:00.000Z,2026-11-05T00:00:00.000Z,',
    );
  });
});
