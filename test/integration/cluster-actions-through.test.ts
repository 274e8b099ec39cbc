import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ALARM_MIGRATIONS, AlarmService, alarmsSchema } from '../../gateway/src/alarms/index.js';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { CLUSTER_MIGRATIONS } from '../../gateway/src/cluster/store.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { ViewReader } from '../../gateway/src/view/reader.js';
import { PartitionRecords } from '../../gateway/src/view/records.js';
import { VIEW_STEPS, type ViewTables } from '../../gateway/src/view/tables.js';
import { ViewWriter } from '../../gateway/src/view/writer.js';
import { WORKORDER_MIGRATIONS, WorkOrderService } from '../../gateway/src/workorders/index.js';
import type { DeliveryFailure, TicketEvent } from '../../gateway/src/workorders/types.js';
import { CHAIN_CONFIG, testRaise } from '../fixtures/alarm.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';
import { startTcpProxy, type TcpProxy } from '../fixtures/tcp-proxy.js';

const log = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 7, 4);
const MIN = 60_000;
const PARTITIONS = 8;
const partitionOf = (site: string, device: string) => partitionOfDevice(site, device, PARTITIONS);
const P = partitionOf('estate', 'tank-1');
const ALL = Array.from({ length: PARTITIONS }, (_, i) => i);

const dirs: string[] = [];
const dbs: Db[] = [];
const proxies: TcpProxy[] = [];
const stores: SharedDb[] = [];
afterAll(async () => {
  for (const s of stores) await s.stop();
  for (const p of proxies) await p.close();
  for (const db of dbs) if (db.open) db.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * One member's records side as the composition root wires it in cluster mode: acks, ticket actions
 * and escalations written through its view writer.
 */
function member(shared: SharedDb, id: string, clock: { t: number }) {
  const folder = mkdtempSync(join(tmpdir(), `fgw-act-${id}-`));
  dirs.push(folder);
  const adb = openDb(join(folder, 'alarms.db'), ALARM_MIGRATIONS);
  const wdb = openDb(join(folder, 'workorders.db'), WORKORDER_MIGRATIONS);
  dbs.push(adb, wdb);
  const writer = new ViewWriter({
    instanceId: id,
    db: () => shared.db,
    dialect: () => shared.dialect,
    log,
    partitionOf,
    retry: { minMs: 50, maxMs: 200 },
  });
  let n = 0;
  const reader = new ViewReader(id, () => shared.db);
  /** The member's lease as `leaseFresh` reports it (ClusterMember.leaseFresh in the gateway). */
  const lease = { fresh: true };
  const alarms = new AlarmService({
    db: adb,
    config: alarmsSchema.parse({}),
    now: () => clock.t,
    newId: () => `${id}-alarm-${++n}`,
    confirm: (list, events) => writer.writeThroughAlarms(list, undefined, events),
    leaseFresh: () => lease.fresh,
    holderOf: async (alarm) => (await reader.holder('alarm', alarm))?.instanceId,
  });
  const notified: number[] = [];
  const wo = new WorkOrderService({
    db: wdb,
    config: CHAIN_CONFIG,
    now: () => clock.t,
    inTransaction: (events: readonly TicketEvent[]) => {
      for (const e of events)
        for (const h of e.entries) if (h.action === 'escalate') notified.push(e.ticket.escalationLevel);
    },
    confirm: (tickets, first) => writer.writeThrough(tickets, undefined, first),
    confirmTimeoutMs: 2000,
    leaseFresh: () => lease.fresh,
    holderOf: async (ticket) => (await reader.holder('ticket', ticket))?.instanceId,
  });
  alarms.onEvent(wo.onAlarmEvent);
  alarms.onEvent(writer.onAlarm);
  wo.onChange(writer.onTicket);
  const records = new PartitionRecords({
    instanceId: id,
    partitionOf,
    alarms,
    tickets: wo,
    writer,
    log,
    owns: () => true,
    owned: () => ALL,
    db: () => shared.db,
  });
  return {
    alarms,
    wo,
    writer,
    records,
    notified,
    lease,
    async start() {
      await writer.start();
      await alarms.start();
      await wo.start();
      records.evict();
    },
    async stop() {
      await wo.stop();
      await writer.stop();
    },
  };
}

async function alarmRow(shared: SharedDb, id: string) {
  const r = await shared.db
    .withTables<ViewTables>()
    .selectFrom('view_alarms')
    .select(['instance_id', 'state', 'body'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  const body = JSON.parse(r.body) as { acknowledgedBy: string | null };
  return { by: r.instance_id, state: r.state, ackedBy: body.acknowledgedBy };
}

/** The alarm's history lines in the view (what its next holder shows), by type. */
async function alarmLines(shared: SharedDb, id: string): Promise<string[]> {
  const rows = await shared.db
    .withTables<ViewTables>()
    .selectFrom('view_alarm_events')
    .select('body')
    .where('alarm_id', '=', id)
    .orderBy('ts')
    .orderBy('change_seq')
    .execute();
  return rows.map((r) => (JSON.parse(r.body) as { type: string }).type);
}

async function ticketRow(shared: SharedDb, id: string) {
  const t = shared.db.withTables<ViewTables>();
  const r = await t
    .selectFrom('view_tickets')
    .select(['instance_id', 'status', 'assignee', 'body'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  const entries = await t
    .selectFrom('view_ticket_entries')
    .select(['body'])
    .where('ticket_id', '=', id)
    .orderBy('idx')
    .execute();
  return {
    by: r.instance_id,
    status: r.status,
    assignee: r.assignee,
    level: (JSON.parse(r.body) as { escalationLevel: number }).escalationLevel,
    actions: entries.map((e) => (JSON.parse(e.body) as { action: string }).action),
  };
}

/** What an API answer of the error becomes: its code and status. */
async function refusal(p: Promise<unknown>): Promise<{ code: string; status: number }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code: string; status: number; extra?: { holder?: string } };
    return { code: e.code, status: e.status, ...(e.extra?.holder ? { holder: e.extra.holder } : {}) };
  }
  throw new Error('expected a refusal');
}

/**
 * Issue 15 / ADR 0173: a person's change in cluster mode is answered only once it is in the shared
 * view (fenced as the writer's own upsert), so a holder killed or fenced right after the answer
 * cannot lose it; real PostgreSQL, the cut a TCP relay that drops every connection (also standing
 * in for a SIGKILL right after an answer: the writer's own batch never reaches PostgreSQL).
 */
describe('operator actions and delivery-failure escalations written through', () => {
  const fx = sharedDbFixture([...CLUSTER_MIGRATIONS, ...VIEW_STEPS]);
  let n = 0;

  async function stores2(name: string): Promise<{ direct: SharedDb; relayed: SharedDb; proxy: TcpProxy }> {
    const direct = await fx.postgres(name);
    const proxy = await startTcpProxy(fx.pg().port);
    proxies.push(proxy);
    const url = new URL(`postgres://gateway@127.0.0.1:${fx.pg().port}/${name}`);
    url.port = String(proxy.port);
    const relayed = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url.toString(), log }, [
      ...CLUSTER_MIGRATIONS,
      ...VIEW_STEPS,
    ]);
    stores.push(relayed);
    await relayed.start();
    return { direct, relayed, proxy };
  }

  /** A member holding every partition with one alarm and its ticket, both copied to the view. */
  async function holding(shared: SharedDb, id: string, clock: { t: number }) {
    const m = member(shared, id, clock);
    await m.start();
    await m.records.adopt(shared.db, ALL);
    m.alarms.apply([testRaise(clock.t)]);
    m.wo.flush();
    await m.writer.drained();
    const alarm = m.alarms.activeAlarms()[0]!.id;
    const ticket = m.wo.list({})[0]!.id;
    return { m, alarm, ticket };
  }

  it('an ack and a ticket action are in the view row when they are answered, trail included', async () => {
    const { direct, relayed, proxy } = await stores2(`act_${++n}`);
    const clock = { t: T0 };
    const { m: a, alarm, ticket } = await holding(relayed, 'gw-a', clock);
    clock.t += MIN;
    const acked = await a.alarms.ackThrough(alarm, 'li', 'on my way');
    // Cut off right after the answer (as a SIGKILL would): the writer's own batch never gets there.
    let cut = proxy.interrupt(1000);
    expect(acked.state).toBe('active-acknowledged');
    expect(await alarmRow(direct, alarm)).toEqual({
      by: 'gw-a',
      state: 'active-acknowledged',
      ackedBy: 'li',
    });
    // Its history line too: the next holder shows who acknowledged it and when.
    expect((await alarmLines(direct, alarm)).filter((l) => l === 'ack')).toHaveLength(1);
    await cut;
    const t = await a.wo.actThrough(ticket, { action: 'acknowledge', actor: 'li', note: 'seen' });
    cut = proxy.interrupt(1000);
    expect(t.status).toBe('acknowledged');
    expect(await ticketRow(direct, ticket)).toMatchObject({
      by: 'gw-a',
      status: 'acknowledged',
      actions: ['create', 'acknowledge'],
    });
    await cut;
    // Committed here as well, once.
    expect(a.alarms.stored(alarm)).toMatchObject({ state: 'active-acknowledged', acknowledgedBy: 'li' });
    expect(a.wo.stored(ticket)!.history.map((h) => h.action)).toEqual(['create', 'acknowledge']);
    // An invalid action is refused before anything is written.
    expect(await refusal(a.wo.actThrough(ticket, { action: 'verify', actor: 'li' }))).toMatchObject({
      status: 409,
    });
    await a.writer.drained();
    expect(await ticketRow(direct, ticket)).toMatchObject({ actions: ['create', 'acknowledge'] });
    // The queue's copy of the ack event is the same line, not a second one.
    expect((await alarmLines(direct, alarm)).filter((l) => l === 'ack')).toHaveLength(1);
    await a.stop();
  }, 30_000);

  it('a ticket changed while an action was being written gets the action on top of the change', async () => {
    const { direct } = await stores2(`act_${++n}`);
    const clock = { t: T0 };
    const { m: a, ticket } = await holding(direct, 'gw-a', clock);
    clock.t += MIN;
    const pending = a.wo.actThrough(ticket, { action: 'acknowledge', actor: 'li' });
    // Another change commits here while the write is under way (a comment through the local path).
    a.wo.act(ticket, { action: 'comment', note: 'meanwhile', actor: 'wang' });
    expect((await pending).status).toBe('acknowledged');
    expect(a.wo.stored(ticket)!.history.map((h) => h.action)).toEqual(['create', 'comment', 'acknowledge']);
    // The view's trail is corrected to the local one (the write-through had the older order).
    await expect
      .poll(async () => (await ticketRow(direct, ticket)).actions, { timeout: 5000 })
      .toEqual(['create', 'comment', 'acknowledge']);
    expect(await ticketRow(direct, ticket)).toMatchObject({ status: 'acknowledged' });
    await a.stop();
  }, 30_000);

  it('a holder whose records another member adopted refuses the change (503) and lets go; the retry lands on the new holder once', async () => {
    const { direct } = await stores2(`act_${++n}`);
    const clock = { t: T0 };
    const { m: a, alarm, ticket } = await holding(direct, 'gw-a', clock);
    const b = member(direct, 'gw-b', clock);
    await b.start();
    // A still runs and still holds both in memory (its fence is seconds away); B takes partition p.
    await b.records.adopt(direct.db, [P]);
    expect(a.alarms.get(alarm)).toBeDefined();
    clock.t += MIN;
    // The refusal names the holder (docs/api.md: `holder`), as a forwarded request's does.
    expect(await refusal(a.alarms.ackThrough(alarm, 'li'))).toEqual({
      code: 'GW_ERR_HOLDER_UNAVAILABLE',
      status: 503,
      holder: 'gw-b',
    });
    expect(await refusal(a.wo.actThrough(ticket, { action: 'acknowledge', actor: 'li' }))).toEqual({
      code: 'GW_ERR_HOLDER_UNAVAILABLE',
      status: 503,
      holder: 'gw-b',
    });
    // Not committed on A, and let go of: a retry through A is forwarded to the holder the view names.
    expect(a.alarms.stored(alarm)).toMatchObject({ state: 'active-unacknowledged', acknowledgedBy: null });
    expect(a.wo.stored(ticket)!.status).toBe('open');
    expect(a.alarms.get(alarm)).toBeUndefined();
    expect(a.wo.get(ticket)).toBeUndefined();
    expect(a.writer.stats().fenced).toBe(2);
    // The retry, on B: made once.
    await b.alarms.ackThrough(alarm, 'li');
    await b.wo.actThrough(ticket, { action: 'acknowledge', actor: 'li' });
    expect(await alarmRow(direct, alarm)).toEqual({
      by: 'gw-b',
      state: 'active-acknowledged',
      ackedBy: 'li',
    });
    expect(await ticketRow(direct, ticket)).toMatchObject({
      by: 'gw-b',
      status: 'acknowledged',
      actions: ['create', 'acknowledge'],
    });
    expect(b.alarms.history(alarm).filter((e) => e.type === 'ack')).toHaveLength(1);
    await a.stop();
    await b.stop();
  }, 30_000);

  it('with PostgreSQL cut off a change is refused (503) and not committed', async () => {
    const { direct, relayed, proxy } = await stores2(`act_${++n}`);
    const clock = { t: T0 };
    const { m: a, alarm, ticket } = await holding(relayed, 'gw-a', clock);
    clock.t += MIN;
    const cut = proxy.interrupt(2500);
    expect(await refusal(a.alarms.ackThrough(alarm, 'li'))).toEqual({
      code: 'GW_ERR_UNAVAILABLE',
      status: 503,
    });
    expect(await refusal(a.wo.actThrough(ticket, { action: 'comment', note: 'x', actor: 'li' }))).toEqual({
      code: 'GW_ERR_UNAVAILABLE',
      status: 503,
    });
    expect(a.alarms.get(alarm)).toMatchObject({ state: 'active-unacknowledged' });
    expect(a.wo.stored(ticket)!.history.map((h) => h.action)).toEqual(['create']);
    await cut;
    // The client's retry after the cut is made.
    await a.alarms.ackThrough(alarm, 'li');
    expect(await alarmRow(direct, alarm)).toMatchObject({ state: 'active-acknowledged' });
    await a.stop();
  }, 30_000);

  it('with PostgreSQL silent (a cut without a reset) an ack and an action are refused (503) in time; a write landing later is undone', async () => {
    const { direct, relayed, proxy } = await stores2(`act_${++n}`);
    const clock = { t: T0 };
    const { m: a, alarm, ticket } = await holding(relayed, 'gw-a', clock);
    clock.t += MIN;
    proxy.freeze();
    expect(await refusal(a.alarms.ackThrough(alarm, 'li'))).toEqual({
      code: 'GW_ERR_UNAVAILABLE',
      status: 503,
    });
    expect(a.alarms.stored(alarm)).toMatchObject({ state: 'active-unacknowledged', acknowledgedBy: null });
    expect(await refusal(a.wo.actThrough(ticket, { action: 'acknowledge', actor: 'li' }))).toEqual({
      code: 'GW_ERR_UNAVAILABLE',
      status: 503,
    });
    // The network comes back: the refused write reaches PostgreSQL late, and is put right.
    proxy.thaw();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await alarmRow(direct, alarm)).toMatchObject({ state: 'active-unacknowledged', ackedBy: null });
    expect(await ticketRow(direct, ticket)).toMatchObject({ status: 'open', actions: ['create'] });
    await a.wo.actThrough(ticket, { action: 'comment', note: 'x', actor: 'wang' });
    expect(await ticketRow(direct, ticket)).toMatchObject({ status: 'open', actions: ['create', 'comment'] });
    // The retry (after any correction still under way) is made, and stays.
    await a.alarms.ackThrough(alarm, 'wang');
    expect(await alarmRow(direct, alarm)).toMatchObject({ state: 'active-acknowledged', ackedBy: 'wang' });
    await a.writer.drained();
    await new Promise((r) => setTimeout(r, 300));
    expect(await alarmRow(direct, alarm)).toMatchObject({ state: 'active-acknowledged', ackedBy: 'wang' });
    await a.stop();
  }, 30_000);

  it('a member whose lease is about to run out refuses changes (503) without writing them anywhere', async () => {
    const { direct } = await stores2(`act_${++n}`);
    const clock = { t: T0 };
    const { m: a, alarm, ticket } = await holding(direct, 'gw-a', clock);
    clock.t += MIN;
    a.lease.fresh = false;
    expect(await refusal(a.alarms.ackThrough(alarm, 'li'))).toEqual({
      code: 'GW_ERR_HOLDER_UNAVAILABLE',
      status: 503,
    });
    expect(await refusal(a.wo.actThrough(ticket, { action: 'acknowledge', actor: 'li' }))).toEqual({
      code: 'GW_ERR_HOLDER_UNAVAILABLE',
      status: 503,
    });
    expect(await alarmRow(direct, alarm)).toMatchObject({ state: 'active-unacknowledged' });
    expect(await ticketRow(direct, ticket)).toMatchObject({ status: 'open', actions: ['create'] });
    expect(a.alarms.stored(alarm)).toMatchObject({ state: 'active-unacknowledged' });
    // Still held here: the retry once the lease is renewed is made here.
    a.lease.fresh = true;
    await a.alarms.ackThrough(alarm, 'li');
    await a.wo.actThrough(ticket, { action: 'acknowledge', actor: 'li' });
    expect(await ticketRow(direct, ticket)).toMatchObject({ status: 'acknowledged' });
    await a.stop();
  }, 30_000);

  it('an adopted alarm whose ticket never reached the view gets one on its new holder; a closed one is not made again', async () => {
    for (const closedInView of [false, true]) {
      const { direct } = await stores2(`act_${++n}`);
      const clock = { t: T0 };
      const { m: a, alarm, ticket } = await holding(direct, 'gw-a', clock);
      await a.stop();
      const v = direct.db.withTables<ViewTables>();
      if (closedInView)
        // Closed by a person while the alarm stays active: no second ticket at a takeover.
        await v.updateTable('view_tickets').set({ status: 'closed' }).where('id', '=', ticket).execute();
      else {
        // gw-a killed between its writer's batch with the raise and the one with the ticket.
        await v.deleteFrom('view_ticket_entries').where('ticket_id', '=', ticket).execute();
        await v.deleteFrom('view_tickets').where('id', '=', ticket).execute();
      }
      const b = member(direct, 'gw-b', clock);
      await b.start();
      await b.records.adopt(direct.db, ALL);
      expect(b.alarms.get(alarm)).toMatchObject({ state: 'active-unacknowledged' });
      const open = b.wo.list({}).filter((t) => t.status !== 'closed');
      if (closedInView) expect(open).toEqual([]);
      else {
        expect(open).toHaveLength(1);
        expect(open[0]).toMatchObject({ alarmId: alarm, status: 'open' });
        await b.writer.drained();
        expect(await ticketRow(direct, open[0]!.id)).toMatchObject({ by: 'gw-b', status: 'open' });
      }
      await b.stop();
    }
  }, 40_000);

  it('an escalation past an unreachable contact waits while PostgreSQL is cut off, then fires once', async () => {
    const { direct, relayed, proxy } = await stores2(`act_${++n}`);
    const clock = { t: T0 };
    const { m: a, ticket } = await holding(relayed, 'gw-a', clock);
    clock.t += MIN;
    const failure: DeliveryFailure = {
      ticketId: ticket,
      channel: 'cmms',
      attempts: 5,
      dead: true,
      error: 'HTTP 500',
      level: 0,
      contact: { name: 'on-call', webhook: 'cmms' },
    };
    const cut = proxy.interrupt(2500);
    a.wo.onDeliveryFailure(failure);
    // Held: not committed, nothing queued for delivery, counted.
    await expect.poll(() => a.wo.health().escalationsHeld, { timeout: 5000 }).toBe(1);
    expect(a.notified).toEqual([]);
    expect(a.wo.stored(ticket)).toMatchObject({ escalationLevel: 0 });
    await cut;
    // The next tick (nothing due by the clock) takes the held failure up again: escalated once.
    await a.wo.tickThrough();
    await expect.poll(() => a.notified, { timeout: 5000 }).toEqual([1]);
    expect(await ticketRow(direct, ticket)).toMatchObject({ by: 'gw-a', level: 1 });
    expect(a.wo.health()).toMatchObject({ unreachable: 1 });
    // The same failure reported again, and later ticks: nothing more.
    a.wo.onDeliveryFailure(failure);
    await a.wo.tickThrough();
    await new Promise((r) => setTimeout(r, 300));
    expect(a.notified).toEqual([1]);
    expect(a.wo.stored(ticket)).toMatchObject({ escalationLevel: 1 });
    await a.stop();
  }, 30_000);
});
