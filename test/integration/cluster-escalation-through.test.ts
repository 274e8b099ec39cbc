import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { CLUSTER_MIGRATIONS } from '../../gateway/src/cluster/store.js';
import type { Db } from '../../gateway/src/storage/db.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { PartitionRecords } from '../../gateway/src/view/records.js';
import { VIEW_STEPS, type ViewTables } from '../../gateway/src/view/tables.js';
import { ViewWriter } from '../../gateway/src/view/writer.js';
import { WorkOrderService } from '../../gateway/src/workorders/index.js';
import type { TicketEvent } from '../../gateway/src/workorders/types.js';
import { CHAIN_CONFIG, memberAlarmFiles, testRaise } from '../fixtures/alarm.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';
import { startTcpProxy, type TcpProxy } from '../fixtures/tcp-proxy.js';

const log = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 11, 7, 2);
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
 * One member's records side as the composition root wires it in cluster mode, with the escalation
 * written through its view writer (`confirm`). `notified` is what its notification queue got: the
 * events handed to `inTransaction`, i.e. committed with the escalation.
 */
function member(shared: SharedDb, id: string, clock: { t: number }) {
  const folder = mkdtempSync(join(tmpdir(), `fgw-esc-${id}-`));
  dirs.push(folder);
  const { alarms, adb, wdb } = memberAlarmFiles(folder, id, clock);
  dbs.push(adb, wdb);
  const writer = new ViewWriter({
    instanceId: id,
    db: () => shared.db,
    dialect: () => shared.dialect,
    log,
    partitionOf,
    retry: { minMs: 50, maxMs: 200 },
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
    confirm: (tickets) => writer.writeThrough(tickets),
    confirmTimeoutMs: 2000,
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

const levelInView = async (shared: SharedDb, id: string) => {
  const r = await shared.db
    .withTables<ViewTables>()
    .selectFrom('view_tickets')
    .select(['instance_id', 'body'])
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return { by: r.instance_id, level: (JSON.parse(r.body) as { escalationLevel: number }).escalationLevel };
};

/**
 * Issue 15: "a ticket's escalation fires exactly once", also when its holder is cut off from
 * PostgreSQL and another member adopts the ticket meanwhile (ADR 0160 addendum). Real PostgreSQL;
 * the cut is a TCP relay that drops every connection and refuses new ones.
 */
describe('escalations written through to the shared view', () => {
  const fx = sharedDbFixture([...CLUSTER_MIGRATIONS, ...VIEW_STEPS]);
  let n = 0;

  /** A store for `name` reached directly, and one reached through a relay that can be cut. */
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

  it('a due escalation waits while PostgreSQL is cut off, then fires once', async () => {
    const { direct, relayed, proxy } = await stores2(`escal_${++n}`);
    const clock = { t: T0 };
    const a = member(relayed, 'gw-a', clock);
    await a.start();
    await a.records.adopt(relayed.db, ALL);
    a.alarms.apply([testRaise(T0)]);
    a.wo.flush();
    const id = a.wo.list({})[0]!.id;
    await a.writer.drained();

    clock.t = T0 + 16 * MIN;
    const cut = proxy.interrupt(2500);
    expect(await a.wo.tickThrough()).toEqual([]);
    expect(a.notified).toEqual([]);
    expect(a.wo.get(id)).toMatchObject({ escalationLevel: 0 });
    expect(a.wo.stored(id)).toMatchObject({ escalationLevel: 0 });
    expect(a.wo.health()).toMatchObject({ escalationsHeld: 1, escalations: 0 });
    // The timer's tick in cluster mode starts the write-through and answers nothing itself.
    expect(a.wo.tick()).toEqual([]);
    await cut;

    const events = await a.wo.tickThrough();
    expect(events.map((e) => e.type)).toEqual(['escalated']);
    expect(a.notified).toEqual([1]);
    expect(await levelInView(direct, id)).toEqual({ by: 'gw-a', level: 1 });
    // Nothing more is due: a later tick fires nothing.
    expect(await a.wo.tickThrough()).toEqual([]);
    expect(a.notified).toEqual([1]);
    expect(a.wo.health()).toMatchObject({ escalations: 1 });
    await a.writer.drained();
    expect(await levelInView(direct, id)).toEqual({ by: 'gw-a', level: 1 });
    await a.stop();
  }, 30_000);

  it('a holder cut off while another member adopts its ticket never fires it; the new holder fires it once', async () => {
    const { direct, relayed, proxy } = await stores2(`escal_${++n}`);
    const clock = { t: T0 };
    const a = member(relayed, 'gw-a', clock);
    const b = member(direct, 'gw-b', clock);
    await a.start();
    await b.start();
    await a.records.adopt(relayed.db, ALL);
    a.alarms.apply([testRaise(T0)]);
    a.wo.flush();
    const id = a.wo.list({})[0]!.id;
    await a.writer.drained();

    // A is cut off but still holds the ticket (its fence is seconds away); B takes partition p.
    clock.t = T0 + 16 * MIN;
    const cut = proxy.interrupt(2500);
    await b.records.adopt(direct.db, [P]);
    expect(await levelInView(direct, id)).toEqual({ by: 'gw-b', level: 0 });
    expect(await a.wo.tickThrough()).toEqual([]);
    await cut;
    // Reachable again, before its fence: the row is B's now, so A's write-through is fenced.
    expect(await a.wo.tickThrough()).toEqual([]);
    expect(a.wo.holds(id)).toBe(true);
    expect(a.wo.health()).toMatchObject({ escalationsHeld: 2, escalations: 0 });
    expect(a.writer.stats().fenced).toBeGreaterThanOrEqual(1);

    expect((await b.wo.tickThrough()).map((e) => e.type)).toEqual(['escalated']);
    expect(await b.wo.tickThrough()).toEqual([]);
    expect(a.notified).toEqual([]);
    expect(b.notified).toEqual([1]);
    expect(await levelInView(direct, id)).toEqual({ by: 'gw-b', level: 1 });
    await a.stop();
    await b.stop();
  }, 30_000);

  it('a ticket changed while its escalation was being written is not escalated from the older copy', async () => {
    const { relayed } = await stores2(`escal_${++n}`);
    const clock = { t: T0 };
    const a = member(relayed, 'gw-a', clock);
    await a.start();
    await a.records.adopt(relayed.db, ALL);
    a.alarms.apply([testRaise(T0)]);
    a.wo.flush();
    const id = a.wo.list({})[0]!.id;
    await a.writer.drained();

    clock.t = T0 + 16 * MIN;
    const pending = a.wo.tickThrough();
    // A person acknowledges during the write-through: the escalation made from the open ticket is dropped.
    a.wo.act(id, { action: 'acknowledge', actor: 'li' });
    expect(await pending).toEqual([]);
    expect(a.notified).toEqual([]);
    expect(a.wo.get(id)).toMatchObject({ status: 'acknowledged', escalationLevel: 0 });
    await a.stop();
  }, 30_000);
});
