import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ALARM_MIGRATIONS, AlarmError, AlarmService, alarmsSchema } from '../../gateway/src/alarms/index.js';
import { ClusterQuiet } from '../../gateway/src/quiet/service.js';
import { QuietStore } from '../../gateway/src/quiet/store.js';
import { QuietSync } from '../../gateway/src/quiet/sync.js';
import { QUIET_STEPS } from '../../gateway/src/quiet/tables.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { waitFor } from '../fixtures/ports.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

const log = pino({ level: 'silent' });
const MIN = 60_000;

/**
 * The shared shelves and windows (ADR 0163) on a real PostgreSQL, with in-process alarm services
 * standing for the instances: a shelf set through one reaches the others by NOTIFY (the poll is set
 * to a minute here, so only the notification can deliver it in time), an instance that starts later
 * loads it, and two people ending one shelf at once get one success.
 */
describe('cluster shelves and windows store', () => {
  const fx = sharedDbFixture([]);
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  let n = 0;

  async function database(): Promise<string> {
    const url = await fx.pg().createDatabase(`quiet_${++n}`);
    const shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, QUIET_STEPS);
    await shared.start();
    cleanup.push(() => shared.stop());
    return url;
  }

  async function instance(url: string, id: string, before?: (svc: AlarmService) => void) {
    const shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, QUIET_STEPS);
    await shared.start();
    const db: Db = openDb(':memory:', ALARM_MIGRATIONS);
    const alarms = new AlarmService({ db, config: alarmsSchema.parse({}) });
    await alarms.start();
    before?.(alarms);
    const store = new QuietStore(() => shared.db, id);
    const sync = new QuietSync({ instanceId: id, postgresUrl: url, store, alarms, log, pollMs: 60_000 });
    await sync.start();
    cleanup.push(async () => {
      await sync.stop();
      await shared.stop();
      db.close();
    });
    await waitFor(async () => sync.health().listening === true, 10_000, `${id} listening`);
    return { alarms, sync, quiet: new ClusterQuiet(store, alarms, log) };
  }

  it('a shelf set through one instance reaches the other by NOTIFY; a later instance loads it; one end wins', async () => {
    const url = await database();
    const a = await instance(url, 'gw-a');
    const b = await instance(url, 'gw-b');
    const shelf = await a.quiet.shelve({
      device: 'tank-1',
      untilMs: Date.now() + 30 * MIN,
      user: 'ann',
      reason: 'sensor swap',
    });
    await waitFor(async () => b.alarms.listShelves().length === 1, 3_000, 'shelf on b');
    expect(b.alarms.listShelves()[0]).toMatchObject({ id: shelf.id, user: 'ann', reason: 'sensor swap' });
    // A shelf set on an instance before it joined the cluster is shared when it starts; it loads A's.
    const c = await instance(url, 'gw-c', (svc) =>
      svc.shelve({ site: 'old-site', untilMs: Date.now() + MIN, user: 'dan', reason: 'set alone' }),
    );
    expect(
      c.alarms
        .listShelves()
        .map((s) => s.user)
        .sort(),
    ).toEqual(['ann', 'dan']);
    await waitFor(async () => a.alarms.listShelves().length === 2, 3_000, "c's old shelf on a");
    expect((await b.quiet.listShelves(true)).map((s) => s.user).sort()).toEqual(['ann', 'dan']);

    // Two people end the same shelf at once, through two instances: one 200, one 404.
    const ends = await Promise.allSettled([
      a.quiet.unshelve(shelf.id, 'ann'),
      b.quiet.unshelve(shelf.id, 'bob'),
    ]);
    expect(ends.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = ends.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(AlarmError);
    expect((refused.reason as AlarmError).code).toBe('GW_ERR_ALARM_NOT_FOUND');
    for (const x of [a, b, c])
      await waitFor(
        async () => x.alarms.listShelves().every((s) => s.id !== shelf.id),
        3_000,
        'ended everywhere',
      );
  }, 60_000);

  it('a window set while an instance was stopped is loaded when it starts; its end reaches every instance', async () => {
    const url = await database();
    const a = await instance(url, 'gw-a');
    const now = Date.now();
    const w = await a.quiet.createWindow({
      kind: 'chlorination',
      schedule: { type: 'once', fromMs: now - MIN, toMs: now + 60 * MIN },
      user: 'ann',
      reason: 'tank cleaning',
    });
    const b = await instance(url, 'gw-b');
    expect(b.alarms.listWindows().map((x) => x.id)).toEqual([w.id]);
    await b.quiet.endWindow(w.id, 'bob');
    await waitFor(async () => a.alarms.listWindows().length === 0, 3_000, 'ended on a');
    expect(a.alarms.listWindows(true)[0]).toMatchObject({ id: w.id, endedBy: 'bob' });
    await expect(a.quiet.endWindow(w.id, 'ann')).rejects.toMatchObject({ code: 'GW_ERR_WINDOW_ENDED' });
    await expect(a.quiet.endWindow('nope', 'ann')).rejects.toMatchObject({ code: 'GW_ERR_ALARM_NOT_FOUND' });
  }, 60_000);
});
