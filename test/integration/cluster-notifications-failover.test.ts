import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { CLUSTER_MIGRATIONS, type ClusterTables } from '../../gateway/src/cluster/store.js';
import { type Db } from '../../gateway/src/storage/db.js';
import type { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { VIEW_STEPS, type ViewTables } from '../../gateway/src/view/tables.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';
import { notifyMember } from '../fixtures/notify-member.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

const log = pino({ level: 'silent' });
const SECRET = 'failover-shared-secret-0123456789';
const PARTITIONS = 8;
const partitionOf = (site: string, device: string) => partitionOfDevice(site, device, PARTITIONS);
const ALL = Array.from({ length: PARTITIONS }, (_, i) => i);
/** The members' heartbeat TTL (the cluster's failover time). */
const TTL = 15_000;

const dirs: string[] = [];
const dbs: Db[] = [];
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const s of stops) await s();
  for (const db of dbs) if (db.open) db.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** One member with its workers started and no partition yet (test/fixtures/notify-member.ts). */
const member = (shared: SharedDb, id: string, webhookUrl: string) =>
  notifyMember({
    shared,
    id,
    webhookUrl,
    secret: SECRET,
    partitionOf,
    ttlMs: TTL,
    log,
    leftovers: { dirs, dbs, stops },
    start: true,
  });

const sharedRow = async (shared: SharedDb, ticketId: string) =>
  shared.db
    .withTables<ViewTables>()
    .selectFrom('view_notifications')
    .select(['event_id', 'channel', 'instance_id', 'state'])
    .where('ticket_id', '=', ticketId)
    .execute();

/**
 * Notifications queued on an instance that dies and never returns are delivered by the next holder
 * of their ticket (ADR 0160 addendum 2), over a real PostgreSQL and a real webhook receiver; on a
 * graceful hand-over the old holder keeps delivering its own.
 */
describe('undelivered notifications move with the tickets of a dead instance', () => {
  const fx = sharedDbFixture([...CLUSTER_MIGRATIONS, ...VIEW_STEPS]);
  let n = 0;

  /** A's receiver URL: a closed port, so that A never delivers. */
  const closedUrl = async () => `http://127.0.0.1:${await freePort()}/hook`;

  /** A holds everything and queues one `ticket.created` it cannot deliver; copied to PostgreSQL. */
  async function setup() {
    const shared = await fx.postgres(`notify_${++n}`);
    const receiver = new WebhookReceiver(SECRET, await freePort());
    await receiver.start();
    stops.push(() => receiver.stop());
    const a = await member(shared, 'gw-a', await closedUrl());
    const b = await member(shared, 'gw-b', receiver.url);
    await a.heartbeat();
    await b.heartbeat();
    await a.records.adopt(shared.db, ALL);
    const ticket = a.wo.create({ title: 'Smoke detector alarm', site: 'estate', device: 'tank-1' }, 'eve');
    // A tries and fails (nothing listens there); the row stays pending, and its copy reaches the view.
    await waitFor(() => (a.notifications.metrics()[0]?.failures ?? 0) >= 1, 10_000, 'a failed attempt on A');
    await a.writer.drained();
    const rows = await sharedRow(shared, ticket.id);
    expect(rows).toEqual([
      {
        event_id: expect.stringMatching(/^evt_/),
        channel: 'webhook:cmms',
        instance_id: 'gw-a',
        state: 'pending',
      },
    ]);
    return { shared, receiver, a, b, ticket, eventId: rows[0]!.event_id };
  }

  it('A dies with a pending notification; B adopts the partition and delivers it to the receiver once', async () => {
    const { shared, receiver, a, b, ticket, eventId } = await setup();
    // A dies: its workers stop and its heartbeat is gone (as after a SIGKILL, past the TTL).
    await a.stop();
    await shared.db
      .withTables<ClusterTables>()
      .deleteFrom('cluster_members')
      .where('instance_id', '=', 'gw-a')
      .execute();
    await b.heartbeat();

    await b.records.adopt(shared.db, ALL);
    expect(b.wo.get(ticket.id)).toBeDefined();
    await waitFor(() => receiver.acceptedKeys().get(eventId) === 1, 10_000, 'the event delivered by B');
    expect([...receiver.acceptedKeys()]).toEqual([[eventId, 1]]);
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
    expect((JSON.parse(receiver.received[0]!.body) as { id: string }).id).toBe(eventId);
    // B's word on it reaches the view: the row is B's and delivered.
    await waitFor(
      async () => (await sharedRow(shared, ticket.id))[0]?.state === 'delivered',
      10_000,
      'the shared row marked delivered',
    );
    expect(await sharedRow(shared, ticket.id)).toEqual([
      { event_id: eventId, channel: 'webhook:cmms', instance_id: 'gw-b', state: 'delivered' },
    ]);
    // A sweep or a second adoption takes nothing again: the receiver still has it once.
    await b.records.adopt(shared.db, ALL);
    await new Promise((r) => setTimeout(r, 300));
    expect([...receiver.acceptedKeys()]).toEqual([[eventId, 1]]);
  });

  it('on a graceful hand-over (A alive) B takes the ticket but not its notifications: A keeps them', async () => {
    const { shared, receiver, a, b, ticket } = await setup();
    await a.records.flush(5000);
    a.records.evict(new Set(ALL));
    await b.records.adopt(shared.db, ALL);
    expect(b.wo.get(ticket.id)).toBeDefined();
    expect(b.notifications.queue.list('pending', undefined, 10)).toEqual([]);
    expect(a.notifications.queue.list('pending', undefined, 10)).toHaveLength(1);
    expect((await sharedRow(shared, ticket.id))[0]?.instance_id).toBe('gw-a');
    // B delivers nothing of A's (a fixed pause to see that nothing arrives, not a timing assertion).
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toEqual([]);
  });
});
