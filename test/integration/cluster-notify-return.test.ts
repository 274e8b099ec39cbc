import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import {
  AUTH,
  cmmsWebhook,
  health,
  owned,
  spread,
  spawnMember,
  type ClusterShared,
} from '../fixtures/cluster.js';
import { type GatewayProcess } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

const PARTITIONS = 8;
const FAILOVER_MS = 3000;
const SITE = 'ret-plant';
const SECRET = 'ret-webhook-secret-0123456789';
const CHANNEL = 'webhook:cmms';

/** What the test reads of the notifications' health. */
interface NotifyHealth {
  channels: Record<string, { pending: number; dead: number }>;
  takenOver: number;
}

/**
 * ADR 0179, on real servers with gateways as child processes: member A holds a ticket whose
 * notification the receiver keeps refusing; A is SIGKILLed; B takes the ticket and its notification
 * over and delivers it; A is started again with the same data folder and instance id. A's own copy of
 * the row is still pending in its workorders.db, and A must not send it a second time.
 */
describe('cluster: a member back from a crash does not resend what another member took over', () => {
  let pgs: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let receiver: WebhookReceiver;
  let pool: pg.Pool;
  const dirs: string[] = [];
  const procs = new Map<string, GatewayProcess>();
  const dataDirs = new Map<string, string>();

  beforeAll(async () => {
    [pgs, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
    receiver = new WebhookReceiver(SECRET, await freePort());
    await receiver.start();
    pool = new pg.Pool({ connectionString: pgs.url, max: 2 });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([...procs.values()].map((p) => p.stop()));
    await pool?.end();
    await receiver?.stop();
    await Promise.all([pgs?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Starts a member; the second start of an id uses the data folder of its first. */
  const shared = (): ClusterShared => ({
    postgres: pgs.url,
    mqtt: mosq.url,
    influx: influx.url,
    partitions: PARTITIONS,
    failoverMs: FAILOVER_MS,
  });

  async function start(instanceId: string): Promise<GatewayProcess> {
    let dataDir = dataDirs.get(instanceId);
    if (dataDir === undefined) {
      dataDir = mkdtempSync(join(tmpdir(), `fgw-ret-${instanceId}-`));
      dirs.push(dataDir);
      dataDirs.set(instanceId, dataDir);
    }
    const p = await spawnMember(shared(), instanceId, dataDir, {
      workorders: { tickMs: 200 },
      notifications: notifications(),
    });
    procs.set(instanceId, p);
    return p;
  }

  /**
   * The signed webhook `cmms`, with a short attempt time limit: a member killed in the middle of an
   * attempt leaves its claim (renewed during attempts, at most 6 s, ADR 0179 addendum) before the row
   * can be taken over.
   */
  function notifications(): Record<string, unknown> {
    const n = cmmsWebhook(receiver.url, SECRET) as { webhooks: Array<Record<string, unknown>> };
    return { ...n, webhooks: n.webhooks.map((w) => ({ ...w, timeoutMs: 2000 })) };
  }

  const notifyHealth = async (g: GatewayProcess) =>
    (await health(g)).notifications as unknown as NotifyHealth;

  /** The shared copy of the event's row: who holds it and its state. */
  const sharedRow = async (eventId: string) =>
    (
      await pool.query<{ instance_id: string; state: string }>(
        'select instance_id, state from view_notifications where event_id = $1 and channel = $2',
        [eventId, CHANNEL],
      )
    ).rows;

  it('the receiver gets the event once: from B, not again from A when it comes back', async () => {
    // The contact's receiver is down (503) while A holds the notification.
    receiver.defaultStatus = 503;
    const a = await start('gw-a');
    const b = await start('gw-b');
    await waitFor(() => spread([a, b], PARTITIONS, 1), 30_000, 'a and b share the partitions');
    const parts = await owned(a);
    let device = '';
    for (let i = 0; device === ''; i++)
      if (parts.includes(partitionOfDevice(SITE, `tank-${i}`, PARTITIONS))) device = `tank-${i}`;

    // A raises the ticket of a device it owns: A holds it and queues its `ticket.created`.
    const made = await fetch(`${a.url}/api/tickets`, {
      method: 'POST',
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Chlorine dosing pump fault', site: SITE, device }),
    });
    expect(made.status, await made.clone().text()).toBe(201);
    const ticketId = ((await made.json()) as { id: string }).id;
    // A tried at least once (refused), and its copy of the row reached the shared view.
    await waitFor(() => receiver.received.length >= 1, 10_000, 'an attempt by A');
    const eventId = (JSON.parse(receiver.received[0]!.body) as { id: string; ticket: { id: string } }).id;
    expect((JSON.parse(receiver.received[0]!.body) as { ticket: { id: string } }).ticket.id).toBe(ticketId);
    await waitFor(async () => (await sharedRow(eventId)).length === 1, 10_000, 'the row in the view');
    expect(await sharedRow(eventId)).toEqual([{ instance_id: 'gw-a', state: 'pending' }]);

    // A crashes; only then does the receiver come back.
    await a.kill();
    procs.delete('gw-a');
    receiver.defaultStatus = 200;

    // B takes A's partitions, the ticket and its undelivered notification, and delivers it once.
    await waitFor(async () => (await owned(b)).length === PARTITIONS, FAILOVER_MS * 5, 'b owns all');
    // Within the failover time, the claim of an attempt A may have been killed in (at most 6 s,
    // ADR 0179 addendum) and B's next sweep (5 s); the rest is a margin for a busy machine.
    await waitFor(() => receiver.acceptedKeys().get(eventId) === 1, 30_000, 'the event delivered by B').catch(
      async (err: Error) => {
        err.message += `\nshared row: ${JSON.stringify(await sharedRow(eventId))}\nB:\n${b.output().slice(-5000)}`;
        throw err;
      },
    );
    await waitFor(
      async () => (await sharedRow(eventId))[0]?.state === 'delivered',
      10_000,
      'the shared row marked delivered',
    );
    expect(await sharedRow(eventId)).toEqual([{ instance_id: 'gw-b', state: 'delivered' }]);

    // A comes back with the same data folder and id: its own copy of the row is still pending there.
    const back = await start('gw-a');
    await waitFor(
      async () => (await notifyHealth(back)).channels[CHANNEL]?.pending === 0,
      20_000,
      'nothing pending on A after its return',
    );
    // A's retry schedule (100–400 ms, polled every 200 ms) has run many times over in this pause
    // (a fixed wait to see that nothing more arrives, not a timing assertion).
    await new Promise((r) => setTimeout(r, 3000));
    expect(receiver.acceptedKeys().get(eventId), 'event accepted by the receiver').toBe(1);
    expect(
      receiver.received.filter((r) => r.headers['idempotency-key'] === eventId && r.status < 300),
    ).toHaveLength(1);
    // A dropped it as taken over, counted, and the shared copy is still B's.
    expect((await notifyHealth(back)).takenOver).toBe(1);
    expect(await sharedRow(eventId)).toEqual([{ instance_id: 'gw-b', state: 'delivered' }]);
    expect(back.proc.exitCode).toBeNull();
  }, 60_000);
});
