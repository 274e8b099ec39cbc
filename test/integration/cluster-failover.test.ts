import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runGatewayCli, spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { envReadings, publishAll } from '../fixtures/publisher.js';

const PARTITIONS = 8;
const FAILOVER_MS = 3000;

interface ClusterHealth {
  state: string;
  leader: boolean;
  partitions: { total: number; owned: number[] };
  members: Array<{ id: string; partitions: number[]; lagMs: number; heartbeatAgeMs: number }>;
  takeovers: number;
  replay: { replayed: number; overruns: number };
}

/**
 * Cluster mode (ADR 0150) on real servers: PostgreSQL (leases), Mosquitto (every member reads every
 * message), InfluxDB. Two gateways as child processes share the devices; one that acknowledged
 * readings but never wrote them to InfluxDB is killed with SIGKILL, and the survivor takes its
 * partitions over within failoverMs and replays those readings from its own window.
 */
describe('cluster: two gateways, one killed', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  const dirs: string[] = [];
  const procs: GatewayProcess[] = [];
  /** gw-b, still running after the first test. */
  let survivor: GatewayProcess | undefined;

  beforeAll(async () => {
    [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await Promise.all([pg?.close(), mosq?.stop(), influx?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function config(
    instanceId: string,
    extra: { influxUrl?: string; clientId?: string; partitions?: number } = {},
  ) {
    const dataDir = mkdtempSync(join(tmpdir(), `fgw-${instanceId}-`));
    dirs.push(dataDir);
    return {
      dataDir,
      storage: { postgres: pg.url },
      cluster: { instanceId, partitions: extra.partitions ?? PARTITIONS, failoverMs: FAILOVER_MS },
      mqtt: { url: mosq.url, keepaliveSec: 5, ...(extra.clientId ? { clientId: extra.clientId } : {}) },
      influx: {
        api: 'v1',
        url: extra.influxUrl ?? influx.url,
        db: 'facility',
        flushIntervalMs: 100,
        retry: { minMs: 100, maxMs: 500 },
      },
    };
  }

  async function start(instanceId: string, extra?: Parameters<typeof config>[1]): Promise<GatewayProcess> {
    const p = await spawnGateway(config(instanceId, extra));
    procs.push(p);
    return p;
  }

  async function cluster(g: GatewayProcess): Promise<ClusterHealth> {
    const h = (await (await fetch(`${g.url}/api/health`)).json()) as {
      components: { cluster: ClusterHealth };
    };
    return h.components.cluster;
  }

  async function standby(g: GatewayProcess, component: string): Promise<boolean> {
    const h = (await (await fetch(`${g.url}/api/health`)).json()) as {
      components: Record<string, { detail?: string }>;
    };
    return /standby/.test(h.components[component]?.detail ?? '');
  }

  async function accepted(g: GatewayProcess): Promise<number> {
    const text = await (await fetch(`${g.url}/metrics`)).text();
    return Number(/^gateway_messages_accepted_total (\d+)/m.exec(text)?.[1] ?? 0);
  }

  async function pointsInInflux(): Promise<number> {
    const res = await influx.query('SELECT count(temperature_c) FROM env_probe', 'facility').catch(() => []);
    return Number(res[0]?.values[0]?.[1] ?? 0);
  }

  it('spreads the devices, takes a killed owner over within failoverMs and replays what it never wrote', async () => {
    // A acknowledges readings into its outbox but cannot reach InfluxDB (nothing listens on port 1):
    // everything it owns is "acknowledged, never written" when it dies.
    const a = await start('gw-a', { influxUrl: 'http://127.0.0.1:1' });
    await waitFor(
      async () => (await cluster(a)).partitions.owned.length === PARTITIONS,
      20_000,
      'a owns all',
    );
    expect((await cluster(a)).leader).toBe(true);
    const b = await start('gw-b');
    survivor = b;
    await waitFor(
      async () =>
        (await cluster(a)).partitions.owned.length === PARTITIONS / 2 &&
        (await cluster(b)).partitions.owned.length === PARTITIONS / 2,
      20_000,
      'partitions shared',
    );
    const view = await cluster(b);
    expect(view.members.map((m) => [m.id, m.partitions.length])).toEqual([
      ['gw-a', PARTITIONS / 2],
      ['gw-b', PARTITIONS / 2],
    ]);

    const base = Date.now() - 3600_000;
    // The cluster-wide singletons (preventive maintenance, the monthly report) run on the leader
    // only; notification delivery works on each member's own tickets, so it runs on both.
    for (const c of ['maintenance', 'reports']) {
      expect(await standby(a, c), c).toBe(false);
      expect(await standby(b, c), c).toBe(true);
    }
    expect(await standby(b, 'notifications')).toBe(false);

    for (const m of view.members) {
      expect(m.lagMs).toBeGreaterThanOrEqual(0);
      expect(m.heartbeatAgeMs).toBeLessThan(FAILOVER_MS);
    }

    const before = envReadings(2000, 40, base, 'site-c');
    await publishAll(mosq.url, before);
    await waitFor(
      async () => (await accepted(a)) + (await accepted(b)) === before.length,
      30_000,
      'all accepted once',
    );
    const byA = await accepted(a);
    const byB = await accepted(b);
    // Each device on one owner: both did part of the work, nothing was processed twice.
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
    await waitFor(async () => (await pointsInInflux()) === byB, 30_000, "b's readings written");

    // A cannot write: its durable lag grows, and every member's health shows it.
    await waitFor(
      async () => ((await cluster(b)).members.find((m) => m.id === 'gw-a')?.lagMs ?? 0) > 1000,
      10_000,
      "a's lag shown",
    );

    const killedAt = Date.now();
    await a.kill();
    const after = envReadings(1000, 40, base + 600_000, 'site-c');
    await publishAll(mosq.url, after);
    await waitFor(
      async () => (await cluster(b)).partitions.owned.length === PARTITIONS,
      20_000,
      'b owns all',
    );
    const tookMs = Date.now() - killedAt;
    // The lease runs failoverMs from its last renewal; one renewal period to notice, plus polling.
    expect(tookMs).toBeLessThan(FAILOVER_MS + FAILOVER_MS / 5 + 1500);

    // Every reading is in InfluxDB: what A acknowledged and never wrote (replayed by B), and what
    // was published after the kill (processed by B). Identical points overwrite, so count is exact.
    await waitFor(
      async () => (await pointsInInflux()) === before.length + after.length,
      30_000,
      'every reading in InfluxDB',
    );
    const h = await cluster(b);
    expect(h.takeovers).toBeGreaterThanOrEqual(PARTITIONS / 2);
    expect(h.replay.replayed).toBeGreaterThanOrEqual(byA);
    expect(h.replay.overruns).toBe(0);
    await waitFor(async () => (await cluster(b)).leader, 10_000, 'b leads');
    await waitFor(async () => !(await standby(b, 'maintenance')), 10_000, "b runs the leader's duties");
    const text = await (await fetch(`${b.url}/metrics`)).text();
    expect(text).toMatch(/^gateway_cluster_owned_partitions 8$/m);
    expect(text).toMatch(/^gateway_cluster_takeovers_total [1-9]/m);
    expect(text).toMatch(/^gateway_cluster_replayed_readings_total [1-9]/m);
  }, 180_000);

  it('refuses to start a second live instance with a member id, client id or another partition count', async () => {
    // gw-b runs (the previous test); each of these stops at start with exit code 2 and its reason.
    const refused = async (instanceId: string, extra: Parameters<typeof config>[1], reason: RegExp) => {
      const dir = mkdtempSync(join(tmpdir(), 'fgw-cluster-cfg-'));
      dirs.push(dir);
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, stringify({ ...config(instanceId, extra), http: { host: '127.0.0.1', port: 0 } }));
      const { code, out } = await runGatewayCli(['--config', file]);
      expect(code, out).toBe(2);
      expect(out).toMatch(reason);
    };
    await refused('gw-b', {}, /another running instance already uses cluster\.instanceId \\"gw-b\\"/);
    await refused(
      'gw-c',
      { clientId: 'facility-gateway-gw-b' },
      /cluster member \\"gw-b\\" already uses MQTT client id \\"facility-gateway-gw-b\\"/,
    );
    await refused(
      'gw-d',
      { partitions: 16 },
      /cluster\.partitions is 16 but this cluster was created with 8/,
    );
  }, 120_000);

  it('shares with a member that joins, and takes its partitions back at once when it stops cleanly', async () => {
    // gw-b runs alone after the first test.
    const b = survivor!;
    expect((await cluster(b)).partitions.owned).toHaveLength(PARTITIONS);
    const c = await start('gw-c');
    await waitFor(
      async () =>
        (await cluster(b)).partitions.owned.length === PARTITIONS / 2 &&
        (await cluster(c)).partitions.owned.length === PARTITIONS / 2,
      20_000,
      'b and c share',
    );
    const start0 = await pointsInInflux();
    const last = envReadings(1000, 40, Date.now() - 1200_000, 'site-c');
    await publishAll(mosq.url, last);
    await waitFor(async () => (await accepted(c)) > 0, 10_000, 'c processed its share');
    expect(await c.stop()).toBe(0);
    const stoppedAt = Date.now();
    // Given back on stop, not left to expire (which takes failoverMs from c's last renewal): b owns
    // them after its next renewal.
    await waitFor(
      async () => (await cluster(b)).partitions.owned.length === PARTITIONS,
      10_000,
      'b owns all',
    );
    expect(Date.now() - stoppedAt).toBeLessThan(FAILOVER_MS / 2);
    await waitFor(
      async () => (await pointsInInflux()) === start0 + last.length,
      30_000,
      'every reading of the handover in InfluxDB',
    );
  }, 120_000);
});
