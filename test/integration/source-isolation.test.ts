import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { envReadings, publishAll } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import type { Source, SourceContext } from '../../gateway/src/core/source.js';
import type { ComponentHealth } from '../../gateway/src/core/types.js';
import { SOURCES } from '../../gateway/src/sources/registry.js';

/** A configured source whose start() always throws, as a field bus with a bad port would. */
class ThrowingSource implements Source {
  readonly name = 'broken-plc';
  starts = 0;
  stops = 0;
  async start(): Promise<void> {
    this.starts++;
    throw new Error('connect ECONNREFUSED 127.0.0.1:502 (test source)');
  }
  async stop(): Promise<void> {
    this.stops++;
  }
  health(): ComponentHealth {
    return { state: 'ok' };
  }
}

/** Starts, then reports a run-time failure once; its second run stays up. */
class CrashingSource implements Source {
  readonly name = 'crashing-bus';
  starts = 0;
  private running = false;
  async start(ctx: SourceContext): Promise<void> {
    this.starts++;
    this.running = true;
    if (this.starts === 1) setTimeout(() => ctx.fail?.(new Error('serial port vanished (test source)')), 200);
  }
  async stop(): Promise<void> {
    this.running = false;
  }
  health(): ComponentHealth {
    return { state: this.running ? 'ok' : 'stopped', starts: this.starts };
  }
}

/** Issue 16, must-show 2: a source that throws does not stop the gateway or the other sources. */
describe('a failing source next to MQTT → InfluxDB', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };
  const throwing = new ThrowingSource();
  const crashing = new CrashingSource();

  beforeAll(async () => {
    [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-isolation-test' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
      }),
      // The test hook: the static registry plus two test-only adapters, registered like any other.
      { sources: { ...SOURCES, broken: async () => [throwing], crashing: async () => [crashing] } },
    );
  });

  afterAll(async () => {
    await gw?.cleanup();
    await Promise.all([mosq?.stop(), influx?.close()]);
  });

  async function health(): Promise<{ status: string; components: Record<string, ComponentHealth> }> {
    const res = await fetch(`${gw.httpUrl}/api/health`);
    return (await res.json()) as { status: string; components: Record<string, ComponentHealth> };
  }

  it('started, reports the broken source as down with the reason and the next retry', async () => {
    const h = await health();
    expect(h.status).toBe('degraded');
    expect(h.components['broken-plc']).toMatchObject({
      state: 'down',
      detail: 'start failed: connect ECONNREFUSED 127.0.0.1:502 (test source)',
    });
    expect(Date.parse(h.components['broken-plc']!.nextRetryAt as string)).toBeGreaterThan(Date.now() - 1000);
    expect(h.components.mqtt?.state).toBe('ok');
  });

  it('keeps serving MQTT readings into InfluxDB', async () => {
    const msgs = envReadings(500, 10, Date.UTC(2026, 10, 22, 8, 0, 0), 'iso-site');
    await publishAll(mosq.url, msgs);
    await waitFor(
      async () => {
        const res = await influx.query(
          `SELECT count(temperature_c) FROM env_probe WHERE site='iso-site'`,
          'facility',
        );
        return Number(res[0]?.values[0]?.[1] ?? 0) === 500;
      },
      30_000,
      '500 points',
    );
  });

  it('retries the broken source with backoff, cleaning up after each failed start', async () => {
    await waitFor(() => throwing.starts >= 2, 10_000, 'a second start attempt');
    expect(throwing.stops).toBeGreaterThanOrEqual(1);
    expect((await health()).components['broken-plc']?.state).toBe('down');
  });

  it('restarts a source that fails at run time, and it serves again', async () => {
    await waitFor(() => crashing.starts >= 2, 10_000, 'restart after the run-time failure');
    await waitFor(
      async () => (await health()).components['crashing-bus']?.state === 'ok',
      10_000,
      'crashing source up again',
    );
    expect((await health()).components['crashing-bus']).toMatchObject({
      state: 'ok',
      starts: 2,
      restarts: 1,
    });
  });
});
