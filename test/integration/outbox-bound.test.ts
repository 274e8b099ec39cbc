import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { envReadings, publishAll } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';
import type { Gateway } from '../../gateway/src/gateway.js';

/**
 * The disk budget: with InfluxDB down and the outbox at its bound, the gateway stops reading from
 * the broker (which keeps the messages), says so in health and metrics, and resumes by itself.
 */
describe('outbox at its disk bound (policy stop-acking)', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };

  beforeAll(async () => {
    [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
    await influx.stop();
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-bound' },
        influx: { api: 'v1', url: influx.url, db: 'facility', retry: { minMs: 100, maxMs: 300 } },
        outbox: { maxBytes: 1024 * 1024 },
      }),
    );
  });
  afterAll(async () => {
    await gw?.cleanup();
    await Promise.all([mosq?.stop(), influx?.close()]);
  });

  it('stops acknowledging at the bound, reports it, and delivers everything once InfluxDB is back', async () => {
    const n = 20_000; // about 2 MB of line protocol: twice the bound
    await publishAll(mosq.url, envReadings(n, 200, Date.now() - 3600_000, 'site-full'));
    await waitFor(() => gw.outbox.isFull(), 30_000, 'outbox full');
    await new Promise((r) => setTimeout(r, 500));
    const accepted = gw.pipeline!.counters.accepted;
    expect(accepted).toBeLessThan(n);
    expect(gw.health().outbox).toMatchObject({ state: 'degraded' });
    const metrics = await gw.app!.inject({ url: '/metrics' });
    expect(metrics.body).toMatch(/^gateway_outbox_full 1$/m);
    // Still holding: nothing more is taken while full.
    await new Promise((r) => setTimeout(r, 500));
    expect(gw.pipeline!.counters.accepted - accepted).toBeLessThan(2000);

    await influx.restart();
    await waitFor(
      async () => {
        const res = await influx.query(
          `SELECT count(temperature_c) FROM env_probe WHERE site='site-full'`,
          'facility',
        );
        return Number(res[0]?.values[0]?.[1] ?? 0) === n;
      },
      90_000,
      `all ${n} readings in InfluxDB`,
    );
    expect(gw.outbox.isFull()).toBe(false);
  });
});
