import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';
import { envReadings, publishAll } from '../fixtures/publisher.js';

interface ClusterHealth {
  state: string;
  detail?: string;
  partitions: { owned: number[] };
  replay: { replayed: number };
}

/**
 * PostgreSQL stopped under a running cluster member (ADR 0150): the member cannot renew its leases,
 * so it stops processing at its own deadline (it cannot know whether another member took over) and
 * keeps the messages in its replay window; when PostgreSQL is back it claims its partitions again,
 * replays from its last durable watermark, and nothing published meanwhile is lost.
 */
describe('cluster member through a PostgreSQL outage', () => {
  let pg: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let gw: Awaited<ReturnType<typeof startGateway>> | undefined;

  beforeAll(async () => {
    [pg, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
  }, 120_000);
  afterAll(async () => {
    await gw?.cleanup();
    await Promise.all([pg?.close(), mosq?.stop(), influx?.close()]);
  });

  const points = async (): Promise<number> => {
    const res = await influx.query('SELECT count(temperature_c) FROM env_probe', 'facility').catch(() => []);
    return Number(res[0]?.values[0]?.[1] ?? 0);
  };

  it('stops processing at its lease deadline, shows the outage, and recovers by itself without losing a reading', async () => {
    const g = await startGateway(
      testConfig({
        storage: { postgres: pg.url },
        cluster: { instanceId: 'gw-solo', partitions: 4, failoverMs: 2000 },
        mqtt: { url: mosq.url, clientId: 'facility-gateway-gw-solo' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        logLevel: 'silent',
      }),
    );
    gw = g;
    const cluster = () => g.health().cluster as unknown as ClusterHealth;
    await waitFor(async () => cluster().partitions.owned.length === 4, 10_000, 'owns all');
    const base = Date.now() - 3600_000;
    const before = envReadings(500, 20, base, 'site-p');
    await publishAll(mosq.url, before);
    await waitFor(async () => (await points()) === before.length, 20_000, 'first readings written');

    await pg.kill();
    await waitFor(async () => cluster().partitions.owned.length === 0, 10_000, 'stopped at its deadline');
    expect(cluster().state).toBe('degraded');
    expect(cluster().detail).toMatch(/cluster store/);
    const during = envReadings(500, 20, base + 600_000, 'site-p');
    await publishAll(mosq.url, during);
    // Acknowledged by the member (kept in its window), not processed while it holds no lease.
    await waitFor(async () => g.mqtt!.health().acks === before.length + during.length, 10_000, 'acked');
    expect(await points()).toBe(before.length);

    await pg.start();
    await waitFor(async () => cluster().partitions.owned.length === 4, 20_000, 'owns all again');
    await waitFor(
      async () => (await points()) === before.length + during.length,
      20_000,
      'readings of the outage written',
    );
    expect(cluster().state).toBe('ok');
    expect(cluster().replay.replayed).toBeGreaterThanOrEqual(during.length);
  }, 120_000);
});
