import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { AlarmEvent } from '../../gateway/src/alarms/types.js';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { CLUSTER_MIGRATIONS, ClusterStore, leasedTo } from '../../gateway/src/cluster/store.js';
import type { Db } from '../../gateway/src/storage/db.js';
import type { Transition } from '../../gateway/src/rules/types.js';
import type { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { PartitionRecords } from '../../gateway/src/view/records.js';
import { VIEW_STEPS, type ViewTables } from '../../gateway/src/view/tables.js';
import { ViewWriter } from '../../gateway/src/view/writer.js';
import { WorkOrderService } from '../../gateway/src/workorders/index.js';
import { CHAIN_CONFIG, memberAlarmFiles, testRaise } from '../fixtures/alarm.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

const log = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 6, 20);
const MIN = 60_000;
const HOUR = 60 * MIN;
const PARTITIONS = 8;
const partitionOf = (site: string, device: string) => partitionOfDevice(site, device, PARTITIONS);
const P = partitionOf('estate', 'tank-1');
const ALL = Array.from({ length: PARTITIONS }, (_, i) => i);

const dirs: string[] = [];
const dbs: Db[] = [];
afterAll(() => {
  for (const db of dbs) if (db.open) db.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * One cluster member's records side, as the composition root wires it: the alarm and work-order
 * services on their own SQLite files, the view writer hearing both, and the records mover.
 */
function member(
  shared: SharedDb,
  id: string,
  clock: { t: number },
  dir?: string,
  /** The partitions this member processes (for the sweep and for tickets made here). */
  owned: Set<number> = new Set(ALL),
  /** Whether its takes check its leases in cluster_partitions (as the composition root wires it). */
  leases = false,
  /** Ticket numbers shared by the members (the cluster's numbering: unique across members). */
  numbers?: { next(): number },
) {
  const folder = dir ?? mkdtempSync(join(tmpdir(), `fgw-rec-${id}-`));
  if (!dir) dirs.push(folder);
  const { alarms, adb, wdb } = memberAlarmFiles(folder, id, clock);
  dbs.push(adb, wdb);
  const wo = new WorkOrderService({
    db: wdb,
    config: CHAIN_CONFIG,
    now: () => clock.t,
    ...(numbers ? { numbers } : {}),
  });
  const writer = new ViewWriter({
    instanceId: id,
    db: () => shared.db,
    dialect: () => shared.dialect,
    log,
    partitionOf,
  });
  const offs = [
    alarms.onEvent(wo.onAlarmEvent),
    alarms.onEvent(writer.onAlarm),
    wo.onChange(writer.onTicket),
  ];
  const records = new PartitionRecords({
    instanceId: id,
    partitionOf,
    alarms,
    tickets: wo,
    writer,
    log,
    owns: (site, device) => owned.has(partitionOf(site, device)),
    owned: () => [...owned],
    db: () => shared.db,
    ...(leases ? { leased: (tx, parts) => leasedTo(tx, id, parts) } : {}),
  });
  offs.push(wo.onChange(records.onTicket));
  const escalations: number[] = [];
  wo.onChange((e) => {
    for (const h of e.entries) if (h.action === 'escalate') escalations.push(e.ticket.escalationLevel);
  });
  return {
    folder,
    alarms,
    wo,
    writer,
    records,
    escalations,
    offs,
    async start() {
      await writer.start();
      await alarms.start();
      await wo.start();
      // Cluster mode: nothing is held until partitions are claimed.
      records.evict();
    },
    /** The rules' transitions, with the work orders' reaction in the same turn (as after setImmediate). */
    apply(t: Transition[]): AlarmEvent[] {
      const events = alarms.apply(t);
      wo.flush();
      return events;
    },
    async stop() {
      for (const off of offs) off();
      await writer.stop();
    },
  };
}

const viewRow = async (shared: SharedDb, table: 'view_alarms' | 'view_tickets', id: string) =>
  shared.db
    .withTables<ViewTables>()
    .selectFrom(table)
    .select(['instance_id', 'partition', 'body'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();

const entries = async (shared: SharedDb, id: string) =>
  (
    await shared.db
      .withTables<ViewTables>()
      .selectFrom('view_ticket_entries')
      .select(['idx', 'instance_id', 'body'])
      .where('ticket_id', '=', id)
      .orderBy('idx')
      .execute()
  ).map((r) => ({
    idx: r.idx,
    by: r.instance_id,
    action: (JSON.parse(r.body) as { action: string }).action,
  }));

/**
 * Alarms and tickets move with their device's partition (ADR 0160), over a real PostgreSQL: what
 * one member raised is taken over by the next owner with the same ids, number and trail; the old
 * holder's late writes are fenced; the escalation carries on from the level reached, once.
 */
describe('cluster records move with the partition', () => {
  const fx = sharedDbFixture([...CLUSTER_MIGRATIONS, ...VIEW_STEPS]);
  let n = 0;

  it('A raises, hands partition p over, B adopts: one alarm, one ticket, same trail; A is fenced and silent', async () => {
    const shared = await fx.postgres(`records_${++n}`);
    const clock = { t: T0 };
    const a = member(shared, 'gw-a', clock);
    const b = member(shared, 'gw-b', clock);
    await a.start();
    await b.start();
    await a.records.adopt(shared.db, ALL);

    // A owns everything: the alarm and its ticket, escalated once (no response within 15 min).
    const [raised] = a.apply([testRaise(T0)]);
    const alarmId = raised!.alarm.id;
    const [ticket] = a.wo.list({});
    const ticketId = ticket!.id;
    clock.t = T0 + 16 * MIN;
    a.wo.tick();
    expect(a.escalations).toEqual([1]);
    await a.writer.drained();
    expect(await viewRow(shared, 'view_alarms', alarmId)).toMatchObject({
      instance_id: 'gw-a',
      partition: P,
    });
    expect(await viewRow(shared, 'view_tickets', ticketId)).toMatchObject({
      instance_id: 'gw-a',
      partition: P,
    });

    // A graceful hand-over: A stops holding p's records, its queue reaches the view, B takes p.
    a.records.evict(new Set([P]));
    await a.records.flush(5000);
    await b.records.adopt(shared.db, [P]);
    expect(await viewRow(shared, 'view_alarms', alarmId)).toMatchObject({ instance_id: 'gw-b' });
    expect(await viewRow(shared, 'view_tickets', ticketId)).toMatchObject({ instance_id: 'gw-b' });
    const taken = b.wo.get(ticketId)!;
    const before = a.wo.stored(ticketId)!;
    expect(taken).toMatchObject({ id: ticketId, escalationLevel: 1, alarmId });
    expect(taken.nextResponseCheckAt).toBe(before.nextResponseCheckAt);
    expect(taken.history).toEqual(before.history);
    expect(b.alarms.activeAlarms().map((x) => x.id)).toEqual([alarmId]);
    // Its history came along: the alarm's detail on B shows A's raise.
    const fromA = a.alarms.history(alarmId).map((h) => h.type);
    expect(fromA[0]).toBe('raise');
    expect(b.alarms.history(alarmId).map((h) => h.type)).toEqual(fromA);
    expect(b.records.health()).toMatchObject({ adoptedAlarms: 1, adoptedTickets: 1, fromLocal: 0 });

    // The condition is still there: B's alarm service dedupes the repeated raise, no second ticket.
    expect(b.apply([testRaise(clock.t)])).toEqual([]);
    expect(b.wo.list({}).map((t) => t.id)).toEqual([ticketId]);

    // A no longer takes changes to them: 503 "being handed over", not a stale copy changed.
    expect(a.alarms.get(alarmId)).toBeUndefined();
    expect(() => a.alarms.ack(alarmId, 'li')).toThrow(expect.objectContaining({ status: 503 }));
    expect(() => a.wo.act(ticketId, { action: 'acknowledge', actor: 'li' })).toThrow(
      expect.objectContaining({ code: 'GW_ERR_HOLDER_UNAVAILABLE' }),
    );

    // A stale write from A (a change it made before the hand-over, written late) is fenced.
    const stale = structuredClone(before);
    stale.status = 'acknowledged';
    stale.history.push({
      ts: clock.t,
      actor: 'li',
      action: 'acknowledge',
      from: 'open',
      to: 'acknowledged',
      note: null,
    });
    a.writer.onTicket({
      type: 'updated',
      ticket: stale,
      entries: stale.history.slice(-1),
      firstEntry: stale.history.length - 1,
    });
    a.writer.onAlarm({ type: 'ack', ts: clock.t, alarm: { ...raised!.alarm, state: 'active-acknowledged' } });
    await a.writer.drained();
    expect(a.writer.stats().fenced).toBe(2);
    const row = await viewRow(shared, 'view_tickets', ticketId);
    expect(row.instance_id).toBe('gw-b');
    expect(JSON.parse(row.body)).toMatchObject({ status: 'open' });
    expect(JSON.parse((await viewRow(shared, 'view_alarms', alarmId)).body)).toMatchObject({
      state: 'active-unacknowledged',
    });
    expect((await entries(shared, ticketId)).map((e) => e.action)).toEqual(
      before.history.map((h) => h.action),
    );

    // The escalation carries on from level 1 on B, once; A's tick has nothing to escalate.
    clock.t = T0 + 2 * HOUR + MIN;
    expect(a.wo.tick()).toEqual([]);
    b.wo.tick();
    b.wo.tick();
    expect(a.escalations).toEqual([1]);
    expect(b.escalations).toEqual([2]);
    // B's changes reach the view under its name, the trail continuing where A's ended.
    b.alarms.ack(alarmId, 'li');
    await b.writer.drained();
    const trail = await entries(shared, ticketId);
    expect(trail.map((e) => e.idx)).toEqual(trail.map((_, i) => i));
    expect(trail.at(-1)).toMatchObject({ by: 'gw-b', action: 'escalate' });
    expect(JSON.parse((await viewRow(shared, 'view_alarms', alarmId)).body)).toMatchObject({
      state: 'active-acknowledged',
      acknowledgedBy: 'li',
    });
    expect(b.alarms.history(alarmId).map((h) => [h.type, h.user])).toEqual([
      ...fromA.map((t) => [t, null]),
      ['ack', 'li'],
    ]);
    await a.stop();
    await b.stop();
  });

  it("a restarted member takes its own records back from its local files, fresher than the view's copy", async () => {
    const shared = await fx.postgres(`records_${++n}`);
    const clock = { t: T0 };
    const a = member(shared, 'gw-a', clock);
    await a.start();
    await a.records.adopt(shared.db, ALL);
    const [raised] = a.apply([testRaise(T0)]);
    const alarmId = raised!.alarm.id;
    await a.writer.drained();
    // Acknowledged just before a crash: in alarms.db, not yet in the view.
    for (const off of a.offs) off();
    a.alarms.ack(alarmId, 'li');
    await a.writer.stop();

    const again = member(shared, 'gw-a', clock, a.folder);
    await again.start();
    // Started in cluster mode it holds nothing until partitions are claimed.
    expect(again.alarms.activeAlarms()).toEqual([]);
    expect(again.wo.list({ status: 'open' })).toHaveLength(1);
    expect(again.wo.health()).toMatchObject({ open: 0 });
    await again.records.adopt(shared.db, [P]);
    expect(again.alarms.get(alarmId)).toMatchObject({ state: 'active-acknowledged', acknowledgedBy: 'li' });
    expect(again.records.health()).toMatchObject({ adoptedAlarms: 1, adoptedTickets: 1, fromLocal: 2 });
    expect(again.wo.health()).toMatchObject({ open: 1 });
    await again.stop();
  });

  it("a ticket made by hand on a member that does not own its device is taken by the owner's sweep; only the owner escalates it", async () => {
    const shared = await fx.postgres(`records_${++n}`);
    const clock = { t: T0 };
    const a = member(shared, 'gw-a', clock, undefined, new Set(ALL.filter((p) => p !== P)));
    const b = member(shared, 'gw-b', clock, undefined, new Set([P]));
    await a.start();
    await b.start();
    await a.records.adopt(
      shared.db,
      ALL.filter((p) => p !== P),
    );
    await b.records.adopt(shared.db, [P]);
    const t = a.wo.create(
      { title: 'valve leaks', site: 'estate', device: 'tank-1', priority: 'critical' },
      'li',
    );
    await new Promise((r) => setImmediate(r));
    // A let go of it at once: it never escalates there.
    expect(a.wo.health()).toMatchObject({ open: 0 });
    await a.writer.drained();
    expect(await viewRow(shared, 'view_tickets', t.id)).toMatchObject({ instance_id: 'gw-a', partition: P });
    await b.records.sweep();
    expect(await viewRow(shared, 'view_tickets', t.id)).toMatchObject({ instance_id: 'gw-b' });
    expect(b.wo.get(t.id)?.history.map((h) => h.action)).toEqual(['create']);
    // A second sweep finds nothing more to take.
    await b.records.sweep();
    expect(b.records.health()).toMatchObject({ adoptedTickets: 1 });
    clock.t = T0 + 16 * MIN;
    expect(a.wo.tick()).toEqual([]);
    b.wo.tick();
    expect(b.escalations).toEqual([1]);
    expect(a.escalations).toEqual([]);
    await a.stop();
    await b.stop();
  });

  it("a member's sweep that reaches PostgreSQL after its lease of p ran out takes nothing of p: the new owner keeps what it adopted", async () => {
    const shared = await fx.postgres(`records_${++n}`);
    const clock = { t: T0 };
    const leases = shared.db.withTables<{
      cluster_partitions: { partition: number; owner: string | null; expires_at: number };
    }>();
    const lease = (owner: string, parts: readonly number[]) =>
      leases
        .updateTable('cluster_partitions')
        .set({ owner, expires_at: Date.now() + HOUR })
        .where('partition', 'in', parts)
        .execute();
    await new ClusterStore(shared.db).ensurePartitions(PARTITIONS);
    // A still believes it processes p (its renewals hang: a cut to PostgreSQL), B holds p's lease now.
    const a = member(shared, 'gw-a', clock, undefined, new Set(ALL), true);
    const b = member(shared, 'gw-b', clock, undefined, new Set([P]), true);
    await a.start();
    await b.start();
    await lease('gw-a', ALL);
    await a.records.adopt(shared.db, ALL);
    const [raised] = a.apply([testRaise(T0)]);
    const alarmId = raised!.alarm.id;
    const ticketId = a.wo.list({})[0]!.id;
    await a.writer.drained();
    await lease('gw-b', [P]);
    a.records.evict(new Set([P]));
    await b.records.adopt(shared.db, [P]);
    expect(b.alarms.activeAlarms().map((x) => x.id)).toEqual([alarmId]);

    // A's late sweep: p is not leased to it, so B's rows stay B's (B's later writes are not fenced).
    await a.records.sweep();
    expect(await viewRow(shared, 'view_alarms', alarmId)).toMatchObject({ instance_id: 'gw-b' });
    expect(await viewRow(shared, 'view_tickets', ticketId)).toMatchObject({ instance_id: 'gw-b' });
    b.alarms.ack(alarmId, 'li');
    await b.writer.drained();
    expect(b.writer.stats().fenced).toBe(0);
    expect(JSON.parse((await viewRow(shared, 'view_alarms', alarmId)).body)).toMatchObject({
      state: 'active-acknowledged',
    });
    // B's own sweep has nothing foreign to take and leaves its alarm as it is.
    await b.records.sweep();
    expect(b.alarms.get(alarmId)).toMatchObject({ state: 'active-acknowledged' });
    await a.stop();
    await b.stop();
  });

  /**
   * ADR 0160 addendum (issue 15, review F3): A, cut off from PostgreSQL, raised alarm #1 and ticket #1
   * while B, the next owner, raised the condition again (#2). When both copies are in the view, the
   * member taking p keeps one alarm and one unclosed ticket; the other is closed with a pointer.
   */
  const duplicates = async (shared: SharedDb, clock: { t: number }, owner: Set<number>) => {
    let seq = 0;
    const numbers = { next: () => ++seq };
    const a = member(shared, 'gw-a', clock, undefined, new Set(ALL), false, numbers);
    const b = member(shared, 'gw-b', clock, undefined, owner, false, numbers);
    await a.start();
    await b.start();
    // Each raises the condition while holding nothing the other wrote: two alarms, two tickets.
    const [first] = a.apply([testRaise(T0)]);
    clock.t = T0 + MIN;
    const [later] = b.apply([testRaise(T0 + MIN)]);
    const kept = a.wo.list({})[0]!;
    const dup = b.wo.list({})[0]!;
    b.wo.act(dup.id, { action: 'acknowledge', actor: 'li' });
    await a.writer.drained();
    await b.writer.drained();
    return { a, b, first: first!.alarm, later: later!.alarm, kept, dup };
  };

  const openInView = async (shared: SharedDb) => {
    const v = shared.db.withTables<ViewTables>();
    const alarms = await v
      .selectFrom('view_alarms')
      .select('id')
      .where('partition', '=', P)
      .where('state', 'in', ['active-unacknowledged', 'active-acknowledged', 'cleared-unacknowledged'])
      .execute();
    const tickets = await v
      .selectFrom('view_tickets')
      .select('id')
      .where('partition', '=', P)
      .where('status', '!=', 'closed')
      .execute();
    return { alarms: alarms.map((r) => r.id), tickets: tickets.map((r) => r.id) };
  };

  it('two active alarms and two tickets of one condition adopted together: one alarm and one ticket stay open, the others point at them, in the view too', async () => {
    const shared = await fx.postgres(`records_${++n}`);
    const clock = { t: T0 };
    const { a, b, first, later, kept, dup } = await duplicates(shared, clock, new Set(ALL));
    expect((await openInView(shared)).alarms).toHaveLength(2);
    const c = member(shared, 'gw-c', clock);
    await c.start();
    clock.t = T0 + 2 * MIN;
    await c.records.adopt(shared.db, [P]);

    // The alarm raised first stays the condition's; the later one is closed as its duplicate.
    expect(c.alarms.activeAlarms().map((x) => x.id)).toEqual([first.id]);
    expect(c.alarms.get(later.id)).toMatchObject({ state: 'cleared', ackNote: `duplicate of ${first.id}` });
    expect(c.alarms.history(later.id).at(-1)).toMatchObject({
      type: 'duplicate',
      user: 'system',
      note: `duplicate of ${first.id}`,
    });
    // Its ticket is closed into the kept alarm's, which now lists both alarms.
    expect(
      c.wo
        .list({})
        .filter((t) => t.status !== 'closed')
        .map((t) => t.id),
    ).toEqual([kept.id]);
    expect(c.wo.get(dup.id)!.history.at(-1)).toMatchObject({
      actor: 'system',
      action: 'merge',
      from: 'acknowledged',
      to: 'closed',
      data: { into: kept.id },
    });
    expect(c.wo.get(kept.id)!.alarmIds).toEqual([first.id, later.id]);
    expect(c.records.health()).toMatchObject({ duplicateAlarms: 1, mergedTickets: 1 });

    // The view shows the same: one open alarm, one unclosed ticket, the pointers in the trails.
    await c.writer.drained();
    expect(c.writer.stats().fenced).toBe(0);
    expect(await openInView(shared)).toEqual({ alarms: [first.id], tickets: [kept.id] });
    expect(JSON.parse((await viewRow(shared, 'view_alarms', later.id)).body)).toMatchObject({
      state: 'cleared',
      ackNote: `duplicate of ${first.id}`,
    });
    const events = await shared.db
      .withTables<ViewTables>()
      .selectFrom('view_alarm_events')
      .select('body')
      .where('alarm_id', '=', later.id)
      .orderBy('ts')
      .execute();
    expect(events.map((r) => (JSON.parse(r.body) as { type: string }).type).at(-1)).toBe('duplicate');
    expect(JSON.parse((await viewRow(shared, 'view_tickets', dup.id)).body)).toMatchObject({
      status: 'closed',
    });
    expect((await entries(shared, dup.id)).at(-1)).toMatchObject({ by: 'gw-c', action: 'merge' });
    expect((await entries(shared, kept.id)).at(-1)).toMatchObject({ by: 'gw-c', action: 'duplicate-merged' });

    // Only the kept ticket escalates; taking p again finds nothing more to merge.
    clock.t = T0 + 16 * MIN;
    expect(c.wo.tick().map((e) => e.ticket.id)).toEqual([kept.id]);
    await c.records.sweep();
    expect(c.records.health()).toMatchObject({ duplicateAlarms: 1, mergedTickets: 1 });
    for (const m of [a, b, c]) await m.stop();
  });

  it("the owner's sweep finds the cut-off member's earlier alarm beside its own: its own later one is closed as the duplicate", async () => {
    const shared = await fx.postgres(`records_${++n}`);
    const clock = { t: T0 };
    const { a, b, first, later, kept, dup } = await duplicates(shared, clock, new Set([P]));
    clock.t = T0 + 2 * MIN;
    await b.records.sweep();
    expect(b.alarms.activeAlarms().map((x) => x.id)).toEqual([first.id]);
    expect(b.alarms.get(later.id)).toMatchObject({ state: 'cleared' });
    expect(b.wo.get(dup.id)).toMatchObject({ status: 'closed' });
    expect(b.wo.get(kept.id)!.history.at(-1)).toMatchObject({ action: 'duplicate-merged' });
    await b.writer.drained();
    expect(await openInView(shared)).toEqual({ alarms: [first.id], tickets: [kept.id] });
    for (const m of [a, b]) await m.stop();
  });

  it('an adopted alarm whose shelf does not run on the new holder is released there without a second ticket', async () => {
    const shared = await fx.postgres(`records_${++n}`);
    const clock = { t: T0 };
    let seq = 0;
    const numbers = { next: () => ++seq };
    const a = member(shared, 'gw-a', clock, undefined, new Set(ALL), false, numbers);
    const b = member(shared, 'gw-b', clock, undefined, new Set(ALL), false, numbers);
    await a.start();
    await b.start();
    await a.records.adopt(shared.db, ALL);
    const [raised] = a.apply([testRaise(T0)]);
    const ticketId = a.wo.list({})[0]!.id;
    // Shelved on A (a shelf B never heard of), then handed over.
    a.alarms.shelve({ device: 'tank-1', untilMs: T0 + HOUR, user: 'eve', reason: 'sensor swap' });
    a.records.evict(new Set([P]));
    await a.records.flush(5000);
    await b.records.adopt(shared.db, [P]);
    await new Promise((r) => setImmediate(r));
    expect(b.alarms.get(raised!.alarm.id)).toMatchObject({ shelved: false });
    // The `unshelve` met the adopted ticket, which already stands for the alarm: no second one.
    expect(b.wo.list({}).map((t) => t.id)).toEqual([ticketId]);
    await a.stop();
    await b.stop();
  });
});
