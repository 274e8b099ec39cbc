import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, memberConfig, owned, spread, ViewTables } from '../fixtures/cluster.js';
import { spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { publishAll, type TestMessage } from '../fixtures/publisher.js';

const PARTITIONS = 8;
const FAILOVER_MS = 3000;
const SITE = 'kact-';

/** Smoke at one device per site (distinct sites: no incident groups their alarms into one ticket). */
function smoke(n: number): TestMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    topic: `facility/${SITE}${i}/env-probe/room-${i}/telemetry`,
    payload: JSON.stringify({ smoke: true, temperature_c: 22, humidity_pct: 45 }),
  }));
}

const post = (url: string, body: unknown) =>
  fetch(url, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/**
 * Issue 15 / ADR 0173 on real servers: an ack and a ticket action answered 200 by the holder are in
 * PostgreSQL at that moment, so a SIGKILL of the holder right after the answers loses neither: the
 * member that takes the partition over shows both.
 */
describe("cluster: a person's change survives a SIGKILL right after its answer", () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let view: ViewTables;
  const dirs: string[] = [];
  const procs: GatewayProcess[] = [];

  beforeAll(async () => {
    [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
    view = new ViewTables(pg.url);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await view?.close();
    await Promise.all([pg?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function start(instanceId: string): Promise<GatewayProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-kact-${instanceId}-`));
    dirs.push(dataDir);
    const p = await spawnGateway(
      memberConfig({
        instanceId,
        dataDir,
        postgres: pg.url,
        mqtt: mosq.url,
        influx: influx.url,
        partitions: PARTITIONS,
        failoverMs: FAILOVER_MS,
      }),
    );
    procs.push(p);
    return p;
  }

  it('an ack and a ticket action answered 200 are in the view at once and shown by the next owner', async () => {
    const a = await start('gw-a');
    const b = await start('gw-b');
    await waitFor(() => spread([a, b], PARTITIONS), 30_000, 'partitions shared');
    await publishAll(mosq.url, smoke(8));
    await waitFor(
      async () => (await view.alarms(SITE)).length === 8 && (await view.tickets(SITE)).length === 8,
      30_000,
      'eight alarms and tickets in the view',
    );
    // An alarm and a ticket gw-a holds (of different devices).
    const alarm = (await view.alarms(SITE)).find((x) => x.instance_id === 'gw-a')!;
    const ticket = (await view.tickets(SITE)).find(
      (t) => t.instance_id === 'gw-a' && t.device !== alarm.device,
    )!;
    expect(alarm).toBeDefined();
    expect(ticket).toBeDefined();

    const [ack, act] = await Promise.all([
      post(`${a.url}/api/alarms/${alarm.id}/ack`, { note: 'on my way' }),
      post(`${a.url}/api/tickets/${ticket.id}/actions`, { action: 'acknowledge', note: 'seen' }),
    ]);
    // Killed right after the answers: whatever waited in its writer's queue is gone.
    await a.kill();
    expect(ack.status, await ack.clone().text()).toBe(200);
    expect(act.status, await act.clone().text()).toBe(200);

    // In the view already (no flush could run after the kill).
    expect((await view.alarms(SITE)).find((x) => x.id === alarm.id)).toMatchObject({
      instance_id: 'gw-a',
      state: 'active-acknowledged',
    });
    expect((await view.tickets(SITE)).find((t) => t.id === ticket.id)).toMatchObject({
      status: 'acknowledged',
    });
    expect((await view.entries(ticket.id)).map((e) => e.body.action)).toContain('acknowledge');

    // gw-b takes gw-a's partitions over and holds both as acknowledged.
    await waitFor(async () => (await owned(b)).length === PARTITIONS, 30_000, 'gw-b owns every partition');
    await waitFor(
      async () => (await view.alarms(SITE)).find((x) => x.id === alarm.id)?.instance_id === 'gw-b',
      20_000,
      'the alarm adopted by gw-b',
    );
    const al = (await (await fetch(`${b.url}/api/alarms/${alarm.id}`, { headers: AUTH })).json()) as {
      state: string;
      acknowledgedBy: string | null;
    };
    expect(al.state).toBe('active-acknowledged');
    const t = (await (await fetch(`${b.url}/api/tickets/${ticket.id}`, { headers: AUTH })).json()) as {
      status: string;
      history: { action: string }[];
    };
    expect(t.status).toBe('acknowledged');
    expect(t.history.filter((h) => h.action === 'acknowledge')).toHaveLength(1);
    // A second ack now reaches gw-b, which refuses it as already made: nothing was lost or doubled.
    expect((await post(`${b.url}/api/alarms/${alarm.id}/ack`, {})).status).toBe(409);
  }, 90_000);
});
