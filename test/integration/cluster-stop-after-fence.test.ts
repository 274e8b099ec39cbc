import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

interface ClusterHealth {
  partitions: { owned: number[] };
  lastHeartbeatAgeMs: number | null;
}

/** The member's fence, reached through the lifecycle (no public way to make a member miss its deadline). */
interface Fenceable {
  name: string;
  deadline: number;
  fence(): void;
}

/**
 * ADR 0151: a member that stops after a fence (it stopped processing because it could not renew in
 * time, while PostgreSQL still records its leases) gives those leases back at stop, so the other
 * members claim them at once instead of waiting for them to run out.
 */
describe('cluster member stopping after a fence', () => {
  let db: Postgres;
  let mosq: Mosquitto;
  let influx: InfluxDB;

  beforeAll(async () => {
    [db, mosq, influx] = await Promise.all([startPostgres(), startMosquitto(), startInfluxDB()]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all([db?.close(), mosq?.stop(), influx?.close()]);
  });

  it('releases every lease PostgreSQL still records as its own, though it processes none', async () => {
    const g = await startGateway(
      testConfig({
        storage: { postgres: db.url },
        // A long TTL: a lease left behind would still run for seconds when the test looks.
        cluster: { instanceId: 'gw-fenced', partitions: 4, failoverMs: 20_000 },
        mqtt: { url: mosq.url, clientId: 'facility-gateway-gw-fenced' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        logLevel: 'silent',
      }),
    );
    let stopped = false;
    try {
      const cluster = () => g.health().cluster as unknown as ClusterHealth;
      await waitFor(async () => cluster().partitions.owned.length === 4, 15_000, 'owns all');
      // Right after a renewal (every 4 s here): no tick runs between the fence and the stop.
      await waitFor(async () => (cluster().lastHeartbeatAgeMs ?? 1e9) < 300, 10_000, 'a fresh renewal');
      const life = (g as unknown as { lifecycle: { started: Array<{ c: Fenceable }> } }).lifecycle;
      const member = life.started.map((s) => s.c).find((c) => c.name === 'cluster')!;
      member.deadline = 0;
      member.fence();
      expect(cluster().partitions.owned).toEqual([]);
      stopped = true;
      await g.cleanup();
    } finally {
      if (!stopped) await g.cleanup();
    }

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const r = await client.query<{ partition: number }>(
        `select partition from cluster_partitions where owner = 'gw-fenced'`,
      );
      expect(r.rows).toEqual([]);
    } finally {
      await client.end();
    }
  }, 90_000);
});
