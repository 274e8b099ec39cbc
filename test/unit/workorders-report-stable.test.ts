import { afterEach, describe, expect, it } from 'vitest';
import { testAlarm } from '../fixtures/alarm.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import {
  monthlyReport,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
  type MonthlyReport,
} from '../../gateway/src/workorders/index.js';

/**
 * A month's report is a record: what happens to its tickets after the month has ended (a reopen, a
 * hold, a resume, a higher priority) must not change it. Tickets go through the service and its
 * SQLite store, and the report reads them back as the HTTP route does.
 */

const MIN = 60_000;
const HOUR = 60 * MIN;
/** 2026-10-d hh:mm UTC; day 32 is November 1. */
const oct = (d: number, h: number, m = 0) => Date.UTC(2026, 9, d, h, m);
const nov = (d: number, h: number, m = 0) => Date.UTC(2026, 10, d, h, m);

const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
});

function setup(cfg: Record<string, unknown> = {}) {
  const db = openDb(':memory:', WORKORDER_MIGRATIONS);
  dbs.push(db);
  const clock = { t: oct(1, 0) };
  const svc = new WorkOrderService({ db, config: workordersSchema.parse(cfg), now: () => clock.t });
  const report = (month: string, generatedAt: number): MonthlyReport => {
    const r = monthlyReport({
      month,
      timeZone: 'UTC',
      site: null,
      generatedAt,
      tickets: svc.reportTickets(Date.parse(`${month}-01T00:00:00Z`) + 40 * 24 * HOUR),
      alarms: [],
      readRates: [],
    });
    if ('ok' in r) throw new Error(r.message);
    return r;
  };
  const walk = (id: string, ...actions: ('acknowledge' | 'start' | 'resolve' | 'verify' | 'close')[]) => {
    for (const action of actions) {
      if (action === 'start') svc.act(id, { action: 'assign', actor: 'eve', assignee: 'eve' });
      svc.act(id, { action, actor: action === 'verify' ? 'desk' : 'eve' });
    }
  };
  return { svc, clock, report, walk };
}

/** The figures a month's report must keep once the month is over. */
const figures = (r: MonthlyReport) => ({
  tickets: r.tickets,
  response: r.response,
  resolution: r.resolution,
  sla: r.sla,
  reopened: r.reopened,
  escalations: r.escalations,
  preventive: r.preventive,
});

describe("a past month's report does not change", () => {
  it('a reopen after the month starts a new cycle, reported apart; the first cycle keeps its times and deadlines', () => {
    const { svc, clock, report, walk } = setup();
    clock.t = oct(30, 8);
    const t = svc.create({ title: 'Leaking valve', site: 'estate', priority: 'medium' }, 'desk');
    clock.t = oct(30, 8, 10);
    walk(t.id, 'acknowledge'); // responded in 10 of 30 min: met
    clock.t = oct(30, 11);
    walk(t.id, 'start', 'resolve'); // resolved in 180 of 240 min: met
    clock.t = oct(30, 12);
    walk(t.id, 'verify', 'close');
    const before = figures(report('2026-10', nov(1, 0)));
    expect(before.sla.response).toEqual({ met: 1, total: 1, rate: 1 });
    expect(before.sla.resolution).toEqual({ met: 1, total: 1, rate: 1 });
    expect(before.response).toEqual({ count: 1, meanMin: 10, p90Min: 10 });
    expect(before.tickets.closed.total).toBe(1);

    // November: the leak is back. The ticket is reopened, nobody responds in time, then it is fixed again.
    clock.t = nov(3, 9);
    const r = svc.act(t.id, { action: 'reopen', actor: 'desk', note: 'leaking again' });
    expect(r).toMatchObject({ status: 'reopened', cycle: 2, cycleStartedAt: nov(3, 9), respondedAt: null });
    expect(r.responseDueAt).toBe(nov(3, 9, 30));
    expect(r.cycles).toEqual([
      {
        n: 1,
        startedAt: oct(30, 8),
        endedAt: nov(3, 9),
        priority: 'medium',
        responseDueAt: oct(30, 8, 30),
        resolveDueAt: oct(30, 12),
        respondedAt: oct(30, 8, 10),
        resolvedAt: oct(30, 11),
        heldMs: 0,
        response: { met: true, dueAt: oct(30, 8, 30), priority: 'medium' },
        resolve: { met: true, dueAt: oct(30, 12), priority: 'medium' },
      },
    ]);
    svc.tick(nov(3, 10));
    clock.t = nov(3, 10);
    walk(t.id, 'acknowledge', 'start');
    clock.t = nov(3, 12);
    walk(t.id, 'resolve');

    expect(figures(report('2026-10', nov(10, 0)))).toEqual(before);
    const n = report('2026-11', nov(10, 0));
    expect(n.tickets.opened.total).toBe(0);
    expect(n.sla.response.total).toBe(0);
    expect(n.reopened).toEqual({
      count: 1,
      response: { count: 1, meanMin: 60, p90Min: 60 },
      resolution: { count: 1, meanMin: 180, p90Min: 180 },
      sla: {
        response: { met: 0, total: 1, rate: 0 },
        resolution: { met: 1, total: 1, rate: 1 },
      },
    });
    expect(n.escalations.total).toBe(1);
  });

  it('a resolution deadline missed before a hold stays missed; the hold and the resume cannot hide it', () => {
    const { svc, clock, report, walk } = setup();
    clock.t = oct(10, 9);
    const t = svc.create({ title: 'Pump seal', site: 'estate', priority: 'medium' }, 'desk');
    clock.t = oct(10, 9, 5);
    walk(t.id, 'acknowledge', 'start');
    // Due at 13:00; at 14:00, an hour late, the parts are found missing: on hold. No tick ran in between.
    clock.t = oct(10, 14);
    const held = svc.act(t.id, {
      action: 'hold',
      actor: 'eve',
      note: 'seal kit ordered',
      reason: 'waiting_for_parts',
    });
    expect(held.sla!.resolve).toEqual({ met: false, dueAt: oct(10, 13), priority: 'medium' });
    const during = figures(report('2026-10', nov(2, 0)));
    expect(during.sla.resolution).toEqual({ met: 0, total: 1, rate: 0 });

    // Resumed and resolved in November: the deadline moves out by the time held, the judgement stays.
    clock.t = nov(4, 9);
    const resumed = svc.act(t.id, { action: 'resume', actor: 'eve' });
    // Held 24 d 19 h: from Oct 10 13:00 to Nov 4 08:00, already passed as well.
    expect(resumed.resolveDueAt).toBe(nov(4, 8));
    clock.t = nov(4, 10);
    walk(t.id, 'resolve');
    expect(figures(report('2026-10', nov(10, 0)))).toEqual(during);
    expect(report('2026-11', nov(10, 0)).sla.resolution.total).toBe(0);
  });

  it('a deadline not yet due when the hold began is not judged while held, and is judged by its new date after', () => {
    const { svc, clock, report } = setup();
    clock.t = oct(31, 20);
    const t = svc.create({ title: 'Door closer', site: 'estate', priority: 'medium' }, 'desk');
    clock.t = oct(31, 21);
    svc.act(t.id, { action: 'hold', actor: 'eve', note: 'customer away', reason: 'waiting_for_access' });
    // Its resolution deadline (Nov 1 00:00) stands still: October has only the missed response (20:30).
    const oct1 = figures(report('2026-10', nov(2, 0)));
    expect(oct1.sla.resolution.total).toBe(0);
    expect(oct1.sla.response).toEqual({ met: 0, total: 1, rate: 0 });
    clock.t = nov(2, 9);
    const r = svc.act(t.id, { action: 'resume', actor: 'eve' });
    // Held 36 h: due Nov 2 12:00.
    expect(r.resolveDueAt).toBe(nov(2, 12));
    expect(figures(report('2026-10', nov(5, 0)))).toEqual(oct1);
    expect(report('2026-11', nov(5, 0)).sla.resolution).toEqual({ met: 0, total: 1, rate: 0 });
  });

  it('a ticket closed in the month and reopened after it stays closed in that month', () => {
    const { svc, clock, report, walk } = setup();
    clock.t = oct(20, 9);
    const t = svc.create({ title: 'Meter swap', site: 'estate', class: 'key' }, 'desk');
    walk(t.id, 'acknowledge', 'start', 'resolve', 'verify', 'close');
    const before = report('2026-10', nov(1, 0)).tickets.closed;
    expect(before).toMatchObject({ total: 1, byPriority: { high: 1 } });
    clock.t = nov(2, 9);
    svc.act(t.id, { action: 'reopen', actor: 'desk' });
    expect(report('2026-10', nov(5, 0)).tickets.closed).toEqual(before);
  });

  it('a priority raised after the month keeps the priority the month counted it opened with', () => {
    const { svc, clock, report } = setup({ priority: { criticalSeverityBump: true } });
    const a = testAlarm({
      device: 'wm-1',
      kind: 'water-meter',
      rule: 'water.pressure.low',
      class: 'routine',
      severity: 'warning',
      value: 150,
      message: 'pressure 150 kPa below 200',
      raisedAt: oct(31, 22),
    });
    clock.t = oct(31, 22);
    svc.applyAlarmEvents([{ type: 'raise', ts: clock.t, alarm: a }]);
    const before = report('2026-10', nov(1, 0)).tickets.opened;
    expect(before.byPriority).toMatchObject({ medium: 1, high: 0 });
    clock.t = nov(1, 1);
    svc.applyAlarmEvents([{ type: 'escalate', ts: clock.t, alarm: { ...a, severity: 'critical' } }]);
    expect(svc.list({})[0]!.priority).toBe('high');
    expect(report('2026-10', nov(2, 0)).tickets.opened).toEqual(before);
  });
});
