import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { viewReportSource } from '../../gateway/src/reports.js';
import { openDb } from '../../gateway/src/storage/db.js';
import { ViewReader } from '../../gateway/src/view/reader.js';
import { VIEW_STEPS } from '../../gateway/src/view/tables.js';
import { ViewWriter } from '../../gateway/src/view/writer.js';
import type { MonthlyReport } from '../../gateway/src/workorders/report.js';
import { ReportScheduler } from '../../gateway/src/workorders/report-schedule.js';
import { OVERALL, ReportStore } from '../../gateway/src/workorders/report-store.js';
import type { HistoryEntry, Ticket } from '../../gateway/src/workorders/types.js';
import { testAlarm } from '../fixtures/alarm.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

const log = pino({ level: 'silent' });
const NOV = Date.UTC(2026, 10, 1);
const DEC = Date.UTC(2026, 11, 1);
const DAY = 86_400_000;

/** A ticket with what the report and the view's columns read; the rest is carried whole in its JSON. */
function ticket(id: string, site: string, createdAt: number): Ticket {
  return {
    id,
    title: `work at ${site}`,
    site,
    device: 'tank-1',
    status: 'open',
    priority: 'high',
    assignee: null,
    createdAt,
    updatedAt: createdAt,
    respondedAt: null,
    resolvedAt: null,
    verifiedAt: null,
    closedAt: null,
    nextResponseCheckAt: null,
    nextResolveCheckAt: null,
    readings: null,
    repeatOf: null,
    responseDueAt: createdAt + 3_600_000,
    resolveDueAt: createdAt + 86_400_000,
    history: [],
  } as unknown as Ticket;
}

const entry = (
  ts: number,
  action: HistoryEntry['action'],
  to: Ticket['status'],
  data?: Record<string, unknown>,
): HistoryEntry => ({ ts, actor: 'system', action, from: null, to, note: null, ...(data ? { data } : {}) });

/**
 * The monthly report in cluster mode (issue 15): the leader builds it from the shared view, so it
 * counts the alarms and tickets every member holds, not only its own.
 */
describe('monthly report from the cluster view', () => {
  const fx = sharedDbFixture(VIEW_STEPS);

  it('counts alarms and tickets held by two different instances', async () => {
    const shared = await fx.postgres('report_view');
    const writers = ['gw-1', 'gw-2'].map(
      (instanceId) => new ViewWriter({ instanceId, db: () => shared.db, dialect: () => shared.dialect, log }),
    );
    for (const w of writers) await w.start();
    const [w1, w2] = writers as [ViewWriter, ViewWriter];
    try {
      // gw-1 holds an alarm and a ticket at north, escalated and closed in November.
      const north = testAlarm({ site: 'north', severity: 'critical', raisedAt: NOV + 4 * DAY });
      w1.onAlarm({ type: 'raise', ts: north.raisedAt, alarm: north });
      const t1 = ticket('WO-000001', 'north', NOV + 4 * DAY);
      w1.onTicket({
        type: 'created',
        ticket: t1,
        entries: [
          entry(t1.createdAt, 'create', 'open'),
          entry(t1.createdAt + 1000, 'escalate', 'open', { level: 1 }),
          entry(t1.createdAt + DAY, 'close', 'closed', { priority: 'high' }),
        ],
        firstEntry: 0,
      });
      // gw-2 holds two alarms at south (one raised in October) and a ticket opened in November,
      // and one opened in December (after the month: not in its report).
      const south = testAlarm({ site: 'south', severity: 'warning', raisedAt: NOV + 9 * DAY });
      const october = testAlarm({ site: 'south', raisedAt: NOV - DAY });
      w2.onAlarm({ type: 'raise', ts: south.raisedAt, alarm: south });
      w2.onAlarm({ type: 'raise', ts: october.raisedAt, alarm: october });
      const t2 = ticket('WO-000002', 'south', NOV + 9 * DAY);
      w2.onTicket({
        type: 'created',
        ticket: t2,
        entries: [entry(t2.createdAt, 'create', 'open')],
        firstEntry: 0,
      });
      const t3 = ticket('WO-000003', 'south', DEC + DAY);
      w2.onTicket({
        type: 'created',
        ticket: t3,
        entries: [entry(t3.createdAt, 'create', 'open')],
        firstEntry: 0,
      });
      for (const w of writers) await w.drained();
      for (const w of writers) expect(w.health()).toMatchObject({ state: 'ok', pending: 0 });

      // The leader (gw-1 here) reads the view through the report's source.
      const reader = new ViewReader('gw-1', () => shared.db);
      const tickets = await reader.reportTickets(DEC);
      expect(tickets.map((t) => t.id)).toEqual(['WO-000001', 'WO-000002']);
      // Only the lines the report reads, as the local store gives them.
      expect(tickets[0]!.history.map((h) => h.action)).toEqual(['escalate', 'close']);
      expect(tickets[1]!.history).toEqual([]);

      const db = openDb(':memory:', []);
      const store = new ReportStore(db);
      const scheduler = new ReportScheduler({
        store,
        config: {
          timeZone: 'UTC',
          generate: true,
          recipients: [],
          dueDay: 10,
          retryMs: 60_000,
          checkMs: 3_600_000,
          ticketSite: 'north',
        },
        sources: {
          // The leader's own stores hold nothing of the month: the report must come from the view.
          tickets: { reportTickets: () => [] },
          alarmsBetween: () => [],
          source: viewReportSource(reader),
        },
        sender: {
          email: () => Promise.reject(new Error('no recipients')),
          webhook: () => Promise.reject(new Error('no recipients')),
          close: () => undefined,
        },
        sites: () => [],
        raiseTicket: () => 'WO-none',
        log,
        now: () => DEC + DAY,
      });
      await scheduler.tick();
      const stored = store.get('2026-11', OVERALL);
      expect(stored).toBeDefined();
      const r = JSON.parse(stored!.json) as MonthlyReport;
      expect(r.alarms.total).toBe(2);
      expect(r.alarms.bySite).toEqual({ north: 1, south: 1 });
      expect(r.alarms.bySeverity).toEqual({ critical: 1, warning: 1 });
      expect(r.tickets.opened.total).toBe(2);
      expect(r.tickets.opened.bySite).toEqual({ north: 1, south: 1 });
      expect(r.tickets.closed.total).toBe(1);
      expect(r.escalations.total).toBe(1);
      // Each site's own report too, from the same view.
      const southReport = JSON.parse(store.get('2026-11', 'south')!.json) as MonthlyReport;
      expect(southReport.alarms.total).toBe(1);
      expect(southReport.tickets.opened.total).toBe(1);
      db.close();
    } finally {
      for (const w of writers) await w.stop();
    }
  }, 60_000);
});
