import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { ADMIN_TOKEN, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { publishAll } from '../fixtures/publisher.js';

const PARTITIONS = 8;
// Long enough that the short PostgreSQL outage below does not fence the partitions.
const FAILOVER_MS = 10_000;
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

interface AlarmJson {
  id: string;
  site: string;
  device: string;
  state: string;
  shelved: boolean;
  suppressed: boolean;
}

/**
 * Shelves and maintenance windows shared by the cluster (ADR 0163), on real servers: two gateways as
 * child processes share PostgreSQL, Mosquitto and InfluxDB. Each raises only the alarms of the
 * devices it owns, so a shelf or window set through one must hold back the other's alarms.
 */
describe('cluster: shelves and maintenance windows apply on every instance', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  const dirs: string[] = [];
  let a: GatewayProcess;
  let b: GatewayProcess;
  /** The partitions each instance owns. */
  const owns = new Map<GatewayProcess, number[]>();

  function config(instanceId: string) {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-quiet-${instanceId}-`));
    dirs.push(dataDir);
    return {
      dataDir,
      storage: { postgres: pg.url },
      cluster: { instanceId, partitions: PARTITIONS, failoverMs: FAILOVER_MS },
      mqtt: { url: mosq.url, keepaliveSec: 5 },
      influx: {
        api: 'v1',
        url: influx.url,
        db: 'facility',
        flushIntervalMs: 100,
        retry: { minMs: 100, maxMs: 500 },
      },
    };
  }

  async function owned(g: GatewayProcess): Promise<number[]> {
    const h = (await (await fetch(`${g.url}/api/health`)).json()) as {
      components: { cluster: { partitions: { owned: number[] } } };
    };
    return h.components.cluster.partitions.owned;
  }

  /** A device at `site` whose partition `g` owns. */
  function deviceOf(g: GatewayProcess, site: string): string {
    for (let i = 0; i < 200; i++) {
      const dev = `room-${i}`;
      if (owns.get(g)!.includes(partitionOfDevice(site, dev, PARTITIONS))) return dev;
    }
    throw new Error(`no device at ${site} owned by ${g.url}`);
  }

  function smoke(site: string, device: string) {
    return {
      topic: `facility/${site}/env-probe/${device}/telemetry`,
      payload: JSON.stringify({ smoke: true, temperature_c: 22, humidity_pct: 45 }),
    };
  }

  async function call(g: GatewayProcess, method: string, path: string, body?: unknown) {
    const res = await fetch(`${g.url}${path}`, {
      method,
      headers: body === undefined ? { authorization: AUTH.authorization } : AUTH,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** The cluster's alarms at a site, as an instance lists them. */
  async function alarmsAt(g: GatewayProcess, site: string): Promise<AlarmJson[]> {
    const r = await call(g, 'GET', `/api/alarms?state=all&site=${site}`);
    return r.status === 200 ? (r.body.alarms as AlarmJson[]) : [];
  }

  /** Alarms raised by the instance itself (its health counts only its own). */
  async function ownActive(g: GatewayProcess): Promise<number> {
    const h = (await (await fetch(`${g.url}/api/health`)).json()) as {
      components: { alarms: { active: number } };
    };
    return h.components.alarms.active;
  }

  async function quietHealth(g: GatewayProcess): Promise<{ state: string; listening: boolean }> {
    const h = (await (await fetch(`${g.url}/api/health`)).json()) as {
      components: Record<string, { state: string; listening: boolean }>;
    };
    return h.components['cluster shelves']!;
  }

  beforeAll(async () => {
    [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
    a = await spawnGateway(config('gw-a'));
    b = await spawnGateway(config('gw-b'));
    await waitFor(
      async () => (await owned(a)).length === PARTITIONS / 2 && (await owned(b)).length === PARTITIONS / 2,
      30_000,
      'partitions shared',
    );
    owns.set(a, await owned(a));
    owns.set(b, await owned(b));
  }, 90_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([pg?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  afterEach(() => {
    for (const g of [a, b])
      if (g && g.proc.exitCode !== null) throw new Error(`gateway ${g.url} exited:\n${g.output()}`);
  });

  it('a shelf set through A holds back an alarm B raises, is listed on both, and ending it on B releases it', async () => {
    const site = 'quiet-1';
    const dev = deviceOf(b, site);
    const set = await call(a, 'POST', '/api/alarms/shelve', {
      site,
      device: dev,
      durationMin: 30,
      reason: 'detector being replaced',
    });
    expect(set.status, JSON.stringify(set.body)).toBe(201);
    const id = set.body.id as string;
    for (const g of [a, b]) {
      const list = await call(g, 'GET', '/api/alarms/shelves');
      expect(list.status).toBe(200);
      expect((list.body.shelves as { id: string; user: string }[]).map((s) => s.id)).toContain(id);
    }
    const before = await ownActive(b);
    await publishAll(mosq.url, [smoke(site, dev)]);
    // B owns the device, so B raises the alarm: shelved, as A's shelf says.
    await waitFor(async () => (await ownActive(b)) === before + 1, 20_000, 'alarm raised on b');
    for (const g of [a, b])
      await waitFor(async () => (await alarmsAt(g, site)).length === 1, 20_000, `alarm listed on ${g.url}`);
    const [alarm] = await alarmsAt(a, site);
    expect(alarm).toMatchObject({ device: dev, state: 'active-unacknowledged', shelved: true });
    // No ticket for a shelved alarm.
    const tickets = await call(a, 'GET', `/api/tickets?site=${site}`);
    expect(tickets.body.tickets).toEqual([]);

    // Ended through B (it knows the shelf from PostgreSQL): the alarm is raised for real.
    const end = await call(b, 'DELETE', `/api/alarms/shelves/${id}`);
    expect(end.status, JSON.stringify(end.body)).toBe(200);
    expect(end.body.endedBy).toBe('admin');
    await waitFor(async () => (await alarmsAt(a, site))[0]?.shelved === false, 20_000, 'alarm unshelved');
    for (const g of [a, b]) {
      expect(((await call(g, 'GET', '/api/alarms/shelves')).body.shelves as unknown[]).length).toBe(0);
      const all = (await call(g, 'GET', '/api/alarms/shelves?all=true')).body.shelves as { id: string }[];
      expect(all.map((s) => s.id)).toContain(id);
    }
    // Ended twice: the second answer says there is no active shelf, from either instance.
    expect((await call(a, 'DELETE', `/api/alarms/shelves/${id}`)).status).toBe(404);
  }, 60_000);

  it('a window set on B suppresses alarms on A (and B); ending it on A raises both for real', async () => {
    const site = 'quiet-2';
    const devA = deviceOf(a, site);
    const devB = deviceOf(b, site);
    const now = Date.now();
    const set = await call(b, 'POST', '/api/windows', {
      site,
      schedule: {
        type: 'once',
        from: new Date(now - 60_000).toISOString(),
        to: new Date(now + 3_600_000).toISOString(),
      },
      reason: 'tank cleaning',
    });
    expect(set.status, JSON.stringify(set.body)).toBe(201);
    const id = set.body.id as string;
    for (const g of [a, b]) {
      const list = (await call(g, 'GET', '/api/windows')).body.windows as { id: string; active: boolean }[];
      expect(list.find((w) => w.id === id)?.active).toBe(true);
    }
    await publishAll(mosq.url, [smoke(site, devA), smoke(site, devB)]);
    for (const g of [a, b])
      await waitFor(async () => (await alarmsAt(g, site)).length === 2, 20_000, `two alarms on ${g.url}`);
    for (const x of await alarmsAt(b, site)) expect(x).toMatchObject({ suppressed: true, shelved: false });

    const end = await call(a, 'POST', `/api/windows/${id}/end`);
    expect(end.status, JSON.stringify(end.body)).toBe(200);
    // A released its own alarm in its answer; B released its own on hearing of the end.
    const mine = (await alarmsAt(a, site)).find((x) => x.device === devA)!;
    expect(end.body.released).toEqual([mine.id]);
    for (const g of [a, b])
      await waitFor(
        async () => (await alarmsAt(g, site)).every((x) => x.suppressed === false),
        20_000,
        `both released, seen on ${g.url}`,
      );
    // Each released alarm now has its ticket.
    await waitFor(
      async () =>
        ((await call(b, 'GET', `/api/tickets?site=${site}`)).body.tickets as unknown[]).length === 2,
      20_000,
      'two tickets',
    );
    // Ending it again, through B: already ended.
    const again = await call(b, 'POST', `/api/windows/${id}/end`);
    expect(again.status).toBe(409);
    expect((again.body.error as { code: string }).code).toBe('GW_ERR_WINDOW_ENDED');
  }, 60_000);

  it('with PostgreSQL down a new shelf or window is refused with 503 and set nowhere; bad input stays 400', async () => {
    const bad = await call(a, 'POST', '/api/alarms/shelve', {
      site: 'quiet-3',
      untilMs: 1000,
      reason: 'past',
    });
    expect(bad.status).toBe(400);
    await pg.kill();
    try {
      // Health says the shared copy cannot be heard (the last one applies meanwhile).
      await waitFor(async () => (await quietHealth(a)).state === 'degraded', 10_000, 'shelves degraded');
      const shelf = await call(a, 'POST', '/api/alarms/shelve', {
        site: 'quiet-3',
        durationMin: 5,
        reason: 'r',
      });
      expect(shelf.status).toBe(503);
      expect(shelf.body.error).toMatchObject({ code: 'GW_ERR_UNAVAILABLE', retryable: true });
      expect((shelf.body.error as { message: string }).message).toMatch(/nothing was changed/);
      const now = Date.now();
      const win = await call(b, 'POST', '/api/windows', {
        site: 'quiet-3',
        schedule: {
          type: 'once',
          from: new Date(now).toISOString(),
          to: new Date(now + 60_000).toISOString(),
        },
        reason: 'r',
      });
      expect(win.status).toBe(503);
      // Bad input is still a 400, outage or not.
      expect(
        (await call(b, 'POST', '/api/alarms/shelve', { site: 'quiet-3', untilMs: 1000, reason: 'x' })).status,
      ).toBe(400);
    } finally {
      await pg.start();
    }
    for (const g of [a, b])
      await waitFor(
        async () => (await quietHealth(g)).state === 'ok',
        20_000,
        `shelves listening on ${g.url}`,
      );
    // Nothing was set on either instance: their alarm services hold no shelf or window for quiet-3.
    for (const g of [a, b])
      await waitFor(
        async () => (await call(g, 'GET', '/api/alarms/shelves?all=true')).status === 200,
        20_000,
        'pg back',
      );
    for (const g of [a, b]) {
      const shelves = (await call(g, 'GET', '/api/alarms/shelves?all=true')).body.shelves as {
        site: string;
      }[];
      expect(shelves.filter((s) => s.site === 'quiet-3')).toEqual([]);
      const wins = (await call(g, 'GET', '/api/windows?all=true')).body.windows as { site: string }[];
      expect(wins.filter((w) => w.site === 'quiet-3')).toEqual([]);
    }
  }, 60_000);
});
