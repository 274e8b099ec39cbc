import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { publishAll, type TestMessage } from '../fixtures/publisher.js';

const PARTITIONS = 8;
const FAILOVER_MS = 4000;
const DEVICES = 6;
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

interface AlarmJson {
  id: string;
  site: string;
  device: string;
  state: string;
}
interface TicketJson {
  id: string;
  site: string;
  alarmId: string | null;
}

/** Smoke at one device per site (distinct sites: no incident groups their alarms). */
function smoke(): TestMessage[] {
  return Array.from({ length: DEVICES }, (_, i) => ({
    topic: `facility/handover-${i}/env-probe/room-${i}/telemetry`,
    payload: JSON.stringify({ smoke: true, temperature_c: 22, humidity_pct: 45 }),
  }));
}

/**
 * Alarms and tickets move with their device's partition (ADR 0160) between real gateway processes:
 * a member that joins takes over the open alarms and tickets of the partitions it is given, a
 * member that stops hands its records on, and the condition holding throughout stays one alarm and
 * one ticket per device.
 */
describe('cluster: records move with the partition between processes', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  const dirs: string[] = [];
  const procs: GatewayProcess[] = [];

  function config(instanceId: string) {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-hand-${instanceId}-`));
    dirs.push(dataDir);
    return {
      dataDir,
      storage: { postgres: pg.url },
      cluster: { instanceId, partitions: PARTITIONS, failoverMs: FAILOVER_MS },
      mqtt: { url: mosq.url, keepaliveSec: 5 },
      influx: { enabled: false },
    };
  }
  async function start(id: string): Promise<GatewayProcess> {
    const g = await spawnGateway(config(id));
    procs.push(g);
    return g;
  }
  async function health(g: GatewayProcess): Promise<Record<string, Record<string, unknown>>> {
    return (
      (await (await fetch(`${g.url}/api/health`)).json()) as {
        components: Record<string, Record<string, unknown>>;
      }
    ).components;
  }
  const owned = async (g: GatewayProcess) =>
    ((await health(g)).cluster!.partitions as { owned: number[] }).owned.length;
  async function alarms(g: GatewayProcess): Promise<AlarmJson[]> {
    const res = await fetch(`${g.url}/api/alarms?state=all&limit=500`, { headers: AUTH });
    if (res.status !== 200) return [];
    return ((await res.json()) as { alarms: AlarmJson[] }).alarms.filter((x) =>
      x.site.startsWith('handover-'),
    );
  }
  async function tickets(g: GatewayProcess): Promise<TicketJson[]> {
    const res = await fetch(`${g.url}/api/tickets?limit=500`, { headers: AUTH });
    if (res.status !== 200) return [];
    return ((await res.json()) as { tickets: TicketJson[] }).tickets.filter((x) =>
      x.site.startsWith('handover-'),
    );
  }

  beforeAll(async () => {
    [pg, mosq] = await Promise.all([startPostgres(), startMosquitto()]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all([pg?.close(), mosq?.stop()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a joining member adopts its share, a stopping one hands its records on: one alarm and one ticket per device', async () => {
    const a = await start('gw-a');
    await waitFor(async () => (await owned(a)) === PARTITIONS, 20_000, 'a owns every partition');
    await publishAll(mosq.url, smoke());
    await waitFor(async () => (await alarms(a)).length === DEVICES, 30_000, 'alarms raised on a');
    await waitFor(async () => (await tickets(a)).length === DEVICES, 30_000, 'tickets raised on a');
    const first = (await alarms(a)).map((x) => x.id).sort();
    const firstTickets = (await tickets(a)).map((t) => t.id).sort();

    // B joins: A gives half of the partitions back (with a flush of its copy), B adopts their records.
    const b = await start('gw-b');
    await waitFor(
      async () => (await owned(a)) === PARTITIONS / 2 && (await owned(b)) === PARTITIONS / 2,
      30_000,
      'partitions shared',
    );
    await waitFor(
      async () =>
        Number((await health(b))['cluster records']!.adoptedAlarms) > 0 &&
        Number((await health(a)).alarms!.active) + Number((await health(b)).alarms!.active) === DEVICES,
      20_000,
      'b holds the alarms of its partitions, a the others',
    );
    // The condition still holds: published again, nothing new is raised anywhere.
    await publishAll(mosq.url, smoke());
    await new Promise((r) => setTimeout(r, 1500));
    for (const g of [a, b]) {
      expect((await alarms(g)).map((x) => x.id).sort()).toEqual(first);
      expect((await tickets(g)).map((t) => t.id).sort()).toEqual(firstTickets);
    }
    // An ack sent to A for an alarm B now holds is forwarded to B.
    const bHeld: string[] = [];
    for (const x of await alarms(a)) {
      const res = await fetch(`${a.url}/api/alarms/${x.id}/ack`, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ note: 'seen' }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      if (res.headers.get('x-gateway-holder') === 'gw-b') bHeld.push(x.id);
    }
    expect(bHeld.length).toBeGreaterThan(0);

    // A stops cleanly: B takes every partition and every record; still one alarm and ticket each.
    await a.stop();
    await waitFor(async () => (await owned(b)) === PARTITIONS, 20_000, 'b owns every partition');
    await waitFor(
      async () => Number((await health(b)).alarms!.open) === DEVICES,
      20_000,
      'b holds every alarm',
    );
    await publishAll(mosq.url, smoke());
    await new Promise((r) => setTimeout(r, 1500));
    expect((await alarms(b)).map((x) => x.id).sort()).toEqual(first);
    expect((await tickets(b)).map((t) => t.id).sort()).toEqual(firstTickets);
    expect(Number((await health(b)).workorders!.open)).toBe(DEVICES);
    expect((await alarms(b)).every((x) => x.state === 'active-acknowledged')).toBe(true);
  }, 180_000);
});
