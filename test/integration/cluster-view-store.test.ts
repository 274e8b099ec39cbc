import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AlarmEvent } from '../../gateway/src/alarms/types.js';
import { CLUSTER_MIGRATIONS } from '../../gateway/src/cluster/store.js';
import type { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { ViewReader } from '../../gateway/src/view/reader.js';
import { VIEW_STEPS, type ViewTables } from '../../gateway/src/view/tables.js';
import { LeasedTicketNumbers } from '../../gateway/src/view/ticket-numbers.js';
import { ViewWriter } from '../../gateway/src/view/writer.js';
import type { HistoryEntry, Ticket, TicketEvent } from '../../gateway/src/workorders/types.js';
import { testAlarm } from '../fixtures/alarm.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

const log = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 6, 20);

/** A ticket with what the view's columns read; the rest of a ticket is carried whole in its JSON. */
function ticket(id: string, over: Partial<Ticket> = {}): Ticket {
  return {
    id,
    site: 'estate',
    device: 'tank-1',
    status: 'open',
    priority: 'critical',
    assignee: null,
    createdAt: T0,
    updatedAt: T0,
    respondedAt: null,
    resolvedAt: null,
    verifiedAt: null,
    closedAt: null,
    nextResponseCheckAt: null,
    nextResolveCheckAt: null,
    readings: null,
    responseDueAt: T0 + 900_000,
    resolveDueAt: T0 + 14_400_000,
    history: [],
    ...over,
  } as Ticket;
}

const entry = (ts: number, action: HistoryEntry['action'], to: Ticket['status']): HistoryEntry => ({
  ts,
  actor: 'system',
  action,
  from: null,
  to,
  note: null,
});

/**
 * The shared view's store (ADR 0155, 0158) on both databases: what the writer copies is what the
 * reader answers, a batch written twice changes nothing, and ticket numbers leased by two
 * instances never meet.
 */
describe.each(['sqlite', 'postgres'] as const)('cluster view store on %s', (dialect) => {
  // With the cluster's tables: the holder lookup reads the members' URLs.
  const fx = sharedDbFixture([...CLUSTER_MIGRATIONS, ...VIEW_STEPS]);
  let n = 0;
  const open = (): Promise<SharedDb> => (dialect === 'sqlite' ? fx.sqlite() : fx.postgres(`view_${++n}`));

  it('copies alarms, their events and tickets with their audit trail; the reader answers from the copy', async () => {
    const shared = await open();
    const writer = new ViewWriter({
      instanceId: 'gw-a',
      db: () => shared.db,
      dialect: () => shared.dialect,
      log,
    });
    await writer.start();
    const raised = testAlarm({ raisedAt: T0, updatedAt: T0 });
    writer.onAlarm({ type: 'raise', ts: T0, alarm: raised });
    const acked = {
      ...raised,
      state: 'active-acknowledged' as const,
      acknowledgedBy: 'li',
      updatedAt: T0 + 1,
    };
    writer.onAlarm({ type: 'ack', ts: T0 + 1, alarm: acked, user: 'li' } satisfies AlarmEvent);
    const created: TicketEvent = {
      type: 'created',
      ticket: ticket('WO-000101'),
      entries: [entry(T0, 'create', 'open')],
      firstEntry: 0,
    };
    writer.onTicket(created);
    const later = ticket('WO-000101', { status: 'acknowledged', updatedAt: T0 + 5 });
    writer.onTicket({
      type: 'updated',
      ticket: later,
      entries: [entry(T0 + 5, 'acknowledge', 'acknowledged')],
      firstEntry: 1,
    });
    writer.onTicket({ type: 'created', ticket: ticket('WO-000102'), entries: [], firstEntry: 0 });
    await Promise.race([writer.drained(), new Promise((r) => setTimeout(r, 3000))]);
    expect(writer.health()).toMatchObject({ state: 'ok', pending: 0 });

    const reader = new ViewReader('gw-b', () => shared.db);
    const alarms = await reader.listAlarms({ state: 'active', limit: 10 });
    expect(alarms.map((a) => [a.id, a.state])).toEqual([[raised.id, 'active-acknowledged']]);
    const detail = await reader.getAlarm(raised.id);
    expect(detail?.history.map((h) => [h.type, h.user])).toEqual([
      ['raise', null],
      ['ack', 'li'],
    ]);
    expect(await reader.holder('alarm', raised.id)).toEqual({ instanceId: 'gw-a', url: null });

    const page = await reader.pageTickets({ now: T0, limit: 10, status: 'acknowledged', withHistory: true });
    expect(page.total).toBe(1);
    expect(page.tickets[0]!.history.map((h) => h.action)).toEqual(['create', 'acknowledge']);
    const all = await reader.pageTickets({ now: T0, limit: 10 });
    expect(all.tickets.map((t) => t.id)).toEqual(['WO-000102', 'WO-000101']);
    // Overdue: the response deadline passed without a response, judged at `now`.
    const overdue = await reader.pageTickets({ now: T0 + 1_000_000, limit: 10, overdue: true });
    expect(overdue.tickets.map((t) => t.id).sort()).toEqual(['WO-000101', 'WO-000102']);

    // At a restart the open tickets are copied again with their whole trail: nothing twice.
    writer.resync(
      [acked],
      [],
      [{ ...later, history: [entry(T0, 'create', 'open'), entry(T0 + 5, 'acknowledge', 'acknowledged')] }],
    );
    await writer.drained();
    const again = await reader.getTicket('WO-000101');
    expect(again?.history.map((h) => h.action)).toEqual(['create', 'acknowledge']);
    expect((await reader.getAlarm(raised.id))?.history).toHaveLength(2);
    expect(writer.health()).toMatchObject({ state: 'ok', pending: 0, written: 7 });

    // The live feed holds the two alarm and three ticket changes, numbered in order.
    const feed = await shared.db
      .withTables<ViewTables>()
      .selectFrom('view_changes')
      .select(['change_seq', 'type'])
      .orderBy('change_seq')
      .execute();
    expect(feed.map((f) => [Number(f.change_seq), f.type])).toEqual([
      [1, 'alarm'],
      [2, 'alarm'],
      [3, 'ticket'],
      [4, 'ticket'],
      [5, 'ticket'],
    ]);
    await writer.stop();
  }, 60_000);

  it('two instances leasing ticket numbers never give out the same one', async () => {
    const shared = await open();
    const db = shared.db.withTables<ViewTables>();
    const a = new LeasedTicketNumbers(db, log, 10);
    const b = new LeasedTicketNumbers(db, log, 10);
    // b's own file had numbers up to 499: its numbers start above them, and so do a's next blocks.
    await Promise.all([a.start(1), b.start(500)]);
    const seen: number[] = [];
    for (let i = 0; i < 60; i++) {
      seen.push(a.next(), b.next());
      // Let the leases ahead complete, as the event loop does between tickets.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((x, i) => i % 2 === 1).every((x) => x >= 500)).toBe(true);
    expect(a.health().failures + b.health().failures).toBe(0);
  }, 60_000);
});
