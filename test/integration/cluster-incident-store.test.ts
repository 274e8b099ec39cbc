import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ALARM_MIGRATIONS, AlarmService, alarmsSchema } from '../../gateway/src/alarms/index.js';
import type { AlarmEvent } from '../../gateway/src/alarms/types.js';
import type { Transition } from '../../gateway/src/rules/types.js';
import { openDb } from '../../gateway/src/storage/db.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { SharedIncidentStore } from '../../gateway/src/view/incident-store.js';
import { IncidentSync } from '../../gateway/src/view/incident-sync.js';
import { VIEW_STEPS, type ViewTables } from '../../gateway/src/view/tables.js';
import { ViewWriter } from '../../gateway/src/view/writer.js';
import { waitFor } from '../fixtures/ports.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

const log = pino({ level: 'silent' });
const cfg = alarmsSchema.parse({ grouping: { windowMs: 60_000 } });

/**
 * The cluster's incident grouping (ADR 0170) on a real PostgreSQL, with in-process alarm services
 * standing for two members: the threshold counts both members' raises, raised at once; an incident
 * one member made alone while PostgreSQL was out of reach is reconciled once with the shared one
 * (the earlier kept, the other merged, its alarms moved to the kept one).
 */
describe('cluster incident grouping store', () => {
  const fx = sharedDbFixture([]);
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  let n = 0;

  async function database(): Promise<string> {
    return fx.pg().createDatabase(`incidents_${++n}`);
  }

  async function member(url: string, id: string, withWriter = false, pendingLimit?: number) {
    const shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, VIEW_STEPS);
    await shared.start();
    const db = openDb(':memory:', ALARM_MIGRATIONS);
    let k = 0;
    const alarms = new AlarmService({ db, config: cfg, sharedGrouping: true, newId: () => `${id}-${++k}` });
    await alarms.start();
    const events: AlarmEvent[] = [];
    alarms.onEvent((e) => events.push(e));
    /** PostgreSQL out of reach for this member (its connection handle refuses, as a cut would). */
    const link = { down: false };
    const store = new SharedIncidentStore(() => {
      if (link.down) throw new Error('connect ECONNREFUSED (test)');
      return shared.db;
    }, id);
    /** The member's view writer (when asked for), cut off from PostgreSQL on its own. */
    const writerLink = { down: false };
    const writer = withWriter
      ? new ViewWriter({
          instanceId: id,
          db: () => {
            if (writerLink.down) throw new Error('connect ECONNREFUSED (test)');
            return shared.db;
          },
          dialect: () => shared.dialect,
          log,
          retry: { minMs: 50, maxMs: 100 },
          sharedIncidents: true,
        })
      : undefined;
    if (writer) {
      await writer.start();
      alarms.onEvent(writer.onAlarm);
    }
    const sync = new IncidentSync({
      store,
      alarms,
      grouping: () => cfg.grouping,
      log,
      pollMs: 100,
      pendingLimit,
      copied: writer ? (ms) => writer.flushed(ms) : undefined,
    });
    alarms.onEvent(sync.onAlarm);
    await sync.start();
    cleanup.push(async () => {
      writerLink.down = false;
      await sync.stop();
      await writer?.stop();
      await shared.stop();
      db.close();
    });
    return { alarms, events, sync, link, writerLink, db: shared };
  }

  const tr = (device: string, ts: number): Transition => ({
    type: 'raise',
    severity: 'warning',
    value: 1,
    ts,
    message: 'm',
    deviceKey: `s1/${device}`,
    site: 's1',
    device,
    kind: 'env-probe',
    ruleId: 'r1',
    ruleClass: 'key',
    critical: false,
  });

  const groups = async (db: SharedDb) =>
    (
      await db.db
        .withTables<ViewTables>()
        .selectFrom('incident_groups')
        .select(['id', 'state', 'alarm_count', 'merged_into'])
        .orderBy('opened_at')
        .execute()
    ).map((r) => ({ ...r, alarm_count: Number(r.alarm_count) }));

  it('five raises over two members, at once, are one incident that both members’ alarms join', async () => {
    const url = await database();
    const a = await member(url, 'gw-a');
    const b = await member(url, 'gw-b');
    const t0 = Date.now();
    // key class: five make an incident; neither member has five.
    a.alarms.apply([tr('a1', t0), tr('a2', t0 + 1), tr('a3', t0 + 2)]);
    b.alarms.apply([tr('b1', t0 + 3), tr('b2', t0 + 4), tr('b3', t0 + 5)]);
    await waitFor(
      () => [...a.alarms.activeAlarms(), ...b.alarms.activeAlarms()].every((x) => x.incidentId !== null),
      10_000,
      'every alarm in an incident',
    );
    const g = await groups(a.db);
    expect(g).toEqual([{ id: expect.any(String), state: 'open', alarm_count: 6, merged_into: null }]);
    const ids = new Set([...a.alarms.activeAlarms(), ...b.alarms.activeAlarms()].map((x) => x.incidentId));
    expect([...ids]).toEqual([g[0]!.id]);
    // One anchor: exactly one `group` event across the cluster makes the incident ticket.
    const anchors = [...a.events, ...b.events].filter((e) => e.type === 'group' && !e.remoteIncident);
    expect(anchors).toHaveLength(1);

    // Cleared everywhere, the incident closes once (the window is a minute: moved past it).
    a.alarms.apply(['a1', 'a2', 'a3'].map((d) => ({ ...tr(d, t0 + 10), type: 'clear' as const })));
    b.alarms.apply(['b1', 'b2', 'b3'].map((d) => ({ ...tr(d, t0 + 10), type: 'clear' as const })));
    await waitFor(async () => (a.sync.health().raises as number) === 3, 5000, 'raises counted');
    const store = new SharedIncidentStore(() => a.db.db, 'test');
    await waitFor(
      async () =>
        (
          await a.db.db
            .withTables<ViewTables>()
            .selectFrom('incident_raises')
            .select('active')
            .where('active', '=', 1)
            .execute()
        ).length === 0,
      5000,
      'clears reported',
    );
    const closed = await store.closeQuiet(Date.now() + 120_000, cfg.grouping.windowMs);
    expect(closed.map((i) => i.id)).toEqual([g[0]!.id]);
    expect(await store.closeQuiet(Date.now() + 120_000, cfg.grouping.windowMs)).toEqual([]);
    // Its raises count no more and are forgotten; none while they may still count.
    expect(await store.prune(Date.now(), 2 * cfg.grouping.windowMs)).toBe(0);
    expect(await store.prune(Date.now() + 600_000, 2 * cfg.grouping.windowMs)).toBe(6);
  });

  it('an incident made alone during an outage is reconciled once: the earlier kept, the other merged', async () => {
    const url = await database();
    const a = await member(url, 'gw-a');
    const b = await member(url, 'gw-b');
    const t0 = Date.now();
    // A cannot reach PostgreSQL: its five raises make an incident of its own.
    a.link.down = true;
    a.alarms.apply([0, 1, 2, 3, 4].map((i) => tr(`a${i}`, t0 + i)));
    await waitFor(() => a.alarms.activeAlarms().every((x) => x.incidentId !== null), 5000, 'a grouped alone');
    const local = a.alarms.activeAlarms()[0]!.incidentId!;
    expect(a.sync.health()).toMatchObject({ state: 'degraded', groupedLocally: 5 });
    // B, later, makes the shared one.
    b.alarms.apply([0, 1, 2, 3, 4].map((i) => tr(`b${i}`, t0 + 100 + i)));
    await waitFor(() => b.alarms.activeAlarms().every((x) => x.incidentId !== null), 5000, 'b grouped');
    const shared = b.alarms.activeAlarms()[0]!.incidentId!;
    expect(shared).not.toBe(local);

    a.link.down = false;
    // A's incident was opened first: it is kept; B's is merged into it and B's alarms move to it.
    await waitFor(
      () => b.alarms.activeAlarms().every((x) => x.incidentId === local),
      10_000,
      'b’s alarms in the kept incident',
    );
    expect(await groups(a.db)).toEqual([
      { id: local, state: 'open', alarm_count: 10, merged_into: null },
      { id: shared, state: 'merged', alarm_count: 5, merged_into: local },
    ]);
    expect(a.sync.health()).toMatchObject({ state: 'ok', reconciled: 1, merged: 1 });
    expect(a.alarms.activeAlarms().every((x) => x.incidentId === local)).toBe(true);
    // Reconciled once: later polls change nothing.
    await new Promise((r) => setTimeout(r, 500));
    expect(a.sync.health()).toMatchObject({ reconciled: 1, merged: 1 });
  });
  it('an incident whose clears were lost with their member (stopped or killed before reporting) closes from the view', async () => {
    const url = await database();
    const a = await member(url, 'gw-a');
    const t0 = Date.now();
    a.alarms.apply([0, 1, 2, 3, 4].map((i) => tr(`a${i}`, t0 + i)));
    await waitFor(() => a.alarms.activeAlarms().every((x) => x.incidentId !== null), 10_000, 'grouped');
    const [g] = await groups(a.db);
    // A stops (or is killed) before its next poll: the clears it makes now never reach the raises.
    await a.sync.stop();
    const ids = a.alarms.activeAlarms().map((x) => x.id);
    a.alarms.apply([0, 1, 2, 3, 4].map((i) => ({ ...tr(`a${i}`, t0 + 10), type: 'clear' as const })));
    const store = new SharedIncidentStore(() => a.db.db, 'gw-b');
    const later = Date.now() + 120_000;
    // The view still shows them active (their copy not written yet): the incident stays open.
    const row = (id: string, state: string) => ({
      id,
      instance_id: 'gw-a',
      site: 's1',
      device: 'd',
      rule: 'r1',
      state,
      raised_at: t0,
      updated_at: t0 + 10,
      partition: null,
      body: '{}',
    });
    const view = a.db.db.withTables<ViewTables>();
    await view
      .insertInto('view_alarms')
      .values(ids.map((id) => row(id, 'active-unacknowledged')))
      .execute();
    expect(await store.closeQuiet(later, cfg.grouping.windowMs)).toEqual([]);
    // A's writer copied the clears (as the view has them after its batch): closed once, by B.
    await view
      .updateTable('view_alarms')
      .set({ state: 'cleared-unacknowledged' })
      .where('id', 'in', ids)
      .execute();
    expect((await store.closeQuiet(later, cfg.grouping.windowMs)).map((i) => i.id)).toEqual([g!.id]);
    expect(await store.prune(later + 600_000, 2 * cfg.grouping.windowMs)).toBe(5);
  });
  it('a join is marked seen only once the member’s copy of it is in the view (a SIGKILL before would lose it)', async () => {
    const url = await database();
    const a = await member(url, 'gw-a');
    const b = await member(url, 'gw-b', true);
    const seen = async () =>
      (
        await a.db.db
          .withTables<ViewTables>()
          .selectFrom('incident_raises')
          .select(['alarm_id', 'alarm_seen'])
          .where('alarm_id', 'like', 'gw-b-%')
          .execute()
      ).map((r) => Number(r.alarm_seen));
    // B's writer cannot reach PostgreSQL (its grouping can): B's alarms join, but their copy waits.
    b.writerLink.down = true;
    const t0 = Date.now();
    b.alarms.apply([tr('b1', t0), tr('b2', t0 + 1)]);
    await waitFor(async () => (await seen()).length === 2, 5000, 'b’s raises recorded');
    a.alarms.apply([0, 1, 2].map((i) => tr(`a${i}`, t0 + 2 + i)));
    await waitFor(() => b.alarms.activeAlarms().every((x) => x.incidentId !== null), 10_000, 'b joined');
    // Several polls later, still not marked: were B killed now, the next holder would look again.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await seen()).toEqual([0, 0]);
    b.writerLink.down = false;
    await waitFor(async () => (await seen()).every((x) => x === 1), 10_000, 'marked once copied');
    const rows = await a.db.db
      .withTables<ViewTables>()
      .selectFrom('view_alarms')
      .select(['id', 'body'])
      .where('instance_id', '=', 'gw-b')
      .execute();
    const [g] = await groups(a.db);
    expect(rows.map((r) => (JSON.parse(r.body) as { incidentId: string | null }).incidentId)).toEqual([
      g!.id,
      g!.id,
    ]);
  });
  it('joins another member decided reach an alarm’s holder past older rows no one will mark (no work orders)', async () => {
    const url = await database();
    // Pages of two: the older incident's rows, never marked on the ticket side, fill a page.
    const a = await member(url, 'gw-a', false, 2);
    const b = await member(url, 'gw-b', false, 2);
    const joined = (ids: readonly string[], inc: string) =>
      ids.every((id) => a.alarms.get(id)?.incidentId === inc);
    const round = async (t: number, raised: number) => {
      a.alarms.apply([0, 1, 2].map((i) => tr(`a${i}-${t}`, t + i)));
      await waitFor(async () => (a.sync.health().raises as number) >= raised, 5000, 'a raised');
      const mine = a.alarms
        .activeAlarms()
        .filter((x) => x.incidentId === null)
        .map((x) => x.id);
      // B's two raises make the incident, with A's three waiting ones: A learns it by its poll.
      b.alarms.apply([3, 4].map((i) => tr(`b${i}-${t}`, t + i)));
      await waitFor(
        () => b.alarms.activeAlarms().some((x) => x.incidentId !== null && x.raisedAt >= t),
        5000,
        'b made the incident',
      );
      const inc = b.alarms.activeAlarms().find((x) => x.raisedAt >= t)!.incidentId!;
      await waitFor(() => joined(mine, inc), 10_000, `a's alarms in incident ${inc}`);
    };
    const t0 = Date.now();
    await round(t0, 3);
    // A window later the first incident still waits for its alarms (settling); a second one forms.
    await round(t0 + 120_000, 6);
    expect((await groups(a.db)).map((g) => g.state)).toEqual(['settling', 'open']);
  });
});
