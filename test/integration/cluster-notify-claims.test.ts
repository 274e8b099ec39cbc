import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { CLUSTER_MIGRATIONS } from '../../gateway/src/cluster/store.js';
import { type QueueRow } from '../../gateway/src/notifications/queue.js';
import { type Db } from '../../gateway/src/storage/db.js';
import type { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { VIEW_STEPS, type ViewTables } from '../../gateway/src/view/tables.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';
import { notifyMember } from '../fixtures/notify-member.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

const log = pino({ level: 'silent' });
const SECRET = 'claims-shared-secret-0123456789';
const PARTITIONS = 8;
const partitionOf = (site: string, device: string) => partitionOfDevice(site, device, PARTITIONS);
const ALL = Array.from({ length: PARTITIONS }, (_, i) => i);
const TTL = 15_000;

const dirs: string[] = [];
const dbs: Db[] = [];
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const s of stops) await s();
  for (const db of dbs) if (db.open) db.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** One member fenced by the claims (ADR 0179), its workers not started: the test drives the claims itself. */
const member = (shared: SharedDb, id: string, webhookUrl: string, folder?: string) =>
  notifyMember({
    shared,
    id,
    webhookUrl,
    folder,
    secret: SECRET,
    partitionOf,
    ttlMs: TTL,
    log,
    leftovers: { dirs, dbs, stops },
    fenced: true,
  });

const holderOf = async (shared: SharedDb, eventId: string) =>
  (
    await shared.db
      .withTables<ViewTables>()
      .selectFrom('view_notifications')
      .select(['instance_id', 'state'])
      .where('event_id', '=', eventId)
      .executeTakeFirst()
  )?.instance_id;

describe('notification claims in the shared copy (ADR 0179)', () => {
  const fx = sharedDbFixture([...CLUSTER_MIGRATIONS, ...VIEW_STEPS]);
  let n = 0;
  const closedUrl = async () => `http://127.0.0.1:${await freePort()}/hook`;

  /** A holds `count` tickets, each with one pending `ticket.created` copied to the view; A is dead for B. */
  async function setup(count: number) {
    const shared = await fx.postgres(`claims_${++n}`);
    const a = await member(shared, 'gw-a', await closedUrl());
    const b = await member(shared, 'gw-b', await closedUrl());
    await b.heartbeat();
    await a.records.adopt(shared.db, ALL);
    for (let i = 0; i < count; i++)
      a.wo.create({ title: `Pump fault ${i}`, site: 'estate', device: `pump-${i}` }, 'eve');
    await waitFor(() => a.writer.stats().pending === 0, 10_000, 'copied');
    await a.writer.drained();
    const rows: QueueRow[] = a.notifications.queue.list('pending', undefined, 1000);
    expect(rows).toHaveLength(count);
    return { shared, a, b, rows };
  }

  it('a claimed row is not taken over; released, it is, and then its old holder cannot claim it', async () => {
    const { shared, a, b, rows } = await setup(1);
    const row = rows[0]!;
    expect(await a.claims.claim(row, 60_000)).toBe('go');
    // A has no heartbeat (dead for B), but its claim runs: B's take leaves the row alone.
    await b.records.adopt(shared.db, ALL);
    expect(await holderOf(shared, row.eventId)).toBe('gw-a');
    expect(b.notifications.queue.list('pending', undefined, 10)).toEqual([]);
    // The attempt ends without delivery: the claim is gone and B's next sweep takes the row.
    await a.claims.release(row, null);
    await b.records.adopt(shared.db, ALL);
    expect(await holderOf(shared, row.eventId)).toBe('gw-b');
    expect(b.notifications.queue.list('pending', undefined, 10).map((r) => r.eventId)).toEqual([row.eventId]);
    // A (back) cannot claim it any more, and its start-up check names it.
    expect(await a.claims.claim(row, 60_000)).toBe('taken');
    expect(await a.claims.taken([row])).toEqual(new Set([row.seq]));
  });

  it('claims racing the takeover: no row is both claimed by its holder and taken by another member', async () => {
    const { shared, a, b, rows } = await setup(30);
    const [verdicts] = await Promise.all([
      Promise.all(rows.map((r) => a.claims.claim(r, 60_000))),
      b.records.adopt(shared.db, ALL),
    ]);
    const adopted = new Set(b.notifications.queue.list('pending', undefined, 1000).map((r) => r.eventId));
    const both = rows.filter((r, i) => verdicts[i] === 'go' && adopted.has(r.eventId));
    expect(both).toEqual([]);
    // Every row went one way or the other, and the view names the member that may send it.
    for (const [i, r] of rows.entries()) {
      expect(verdicts[i] === 'go' || adopted.has(r.eventId)).toBe(true);
      expect(await holderOf(shared, r.eventId)).toBe(verdicts[i] === 'go' ? 'gw-a' : 'gw-b');
    }
  });

  it('a member restarted on its data folder drops at start what another member took over and delivered', async () => {
    const { shared, a, b, rows } = await setup(2);
    const receiver = new WebhookReceiver(SECRET, await freePort());
    await receiver.start();
    stops.push(() => receiver.stop());
    // B takes and (through its own receiver) delivers the first row; the second stays A's.
    const first = rows[0]!;
    await shared.db
      .withTables<ViewTables>()
      .updateTable('view_notifications')
      .set({ instance_id: 'gw-b', state: 'delivered', delivered_at: Date.now() })
      .where('event_id', '=', first.eventId)
      .execute();
    await a.close();
    expect(b.notifications.queue.list('pending', undefined, 10)).toEqual([]);
    // A again, same folder, delivering to a receiver that accepts: only the row still its own goes.
    const back = await member(shared, 'gw-a', receiver.url, a.dir);
    await back.notifications.start();
    await waitFor(() => receiver.acceptedKeys().size === 1, 10_000, 'the row still A’s delivered');
    await new Promise((r) => setTimeout(r, 500));
    expect([...receiver.acceptedKeys().keys()]).toEqual([rows[1]!.eventId]);
    expect(back.notifications.health()).toMatchObject({ takenOver: 1 });
    expect(back.notifications.queue.list('taken', undefined, 10).map((r) => r.eventId)).toEqual([
      first.eventId,
    ]);
    // The delivered row is recorded in the view by the release, as A's.
    await waitFor(
      async () => (await holderOf(shared, rows[1]!.eventId)) === 'gw-a',
      5000,
      'second row still A’s',
    );
  });

  // Last: it stops the file's PostgreSQL server (and starts it again).
  it('PostgreSQL down: the holder still delivers its own notification, unclaimed and counted', async () => {
    const shared = await fx.postgres(`claims_${++n}`);
    const receiver = new WebhookReceiver(SECRET, await freePort());
    await receiver.start();
    stops.push(() => receiver.stop());
    const a = await member(shared, 'gw-a', receiver.url);
    await a.records.adopt(shared.db, ALL);
    a.wo.create({ title: 'Gas alarm', site: 'estate', device: 'boiler-1' }, 'eve');
    await waitFor(() => a.writer.stats().pending === 0, 10_000, 'copied');
    await fx.pg().kill();
    try {
      await a.notifications.start();
      await waitFor(() => receiver.acceptedKeys().size === 1, 20_000, 'delivered without PostgreSQL');
      expect(a.notifications.health()).toMatchObject({ unfenced: 1, takenOver: 0 });
      expect(a.notifications.queue.list('delivered', undefined, 10)).toHaveLength(1);
    } finally {
      await fx.pg().start();
    }
  });
});
