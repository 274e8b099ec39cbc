import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { spawnGateway, type GatewayProcess } from '../fixtures/gateway.js';
import { envReadings, expectedTemperatureSum, publishAll } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';

/** Must-show 3: SIGKILL mid-run loses nothing the broker handed over. */
describe('gateway killed with SIGKILL mid-run', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let dataDir: string;
  let gw: GatewayProcess | undefined;

  beforeAll(async () => {
    [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
    dataDir = mkdtempSync(join(tmpdir(), 'fgw-crash-'));
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all([mosq?.stop(), influx?.close()]);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const config = () => ({
    dataDir,
    mqtt: { url: mosq.url, clientId: 'gw-crash-test', keepaliveSec: 5 },
    influx: { api: 'v1', url: influx.url, db: 'facility', flushIntervalMs: 100 },
  });

  async function count(): Promise<number> {
    const res = await influx.query(`SELECT count(temperature_c) FROM env_probe`, 'facility').catch(() => []);
    return Number(res[0]?.values[0]?.[1] ?? 0);
  }

  async function accepted(g: GatewayProcess): Promise<number> {
    const text = await (await fetch(`${g.url}/metrics`)).text();
    const m = /^gateway_messages_accepted_total (\d+)/m.exec(text);
    return m ? Number(m[1]) : 0;
  }

  it('has every reading in InfluxDB after a crash and a restart', async () => {
    const msgs = envReadings(10_000, 100, Date.UTC(2026, 10, 22, 6, 0, 0), 'site-k');
    gw = await spawnGateway(config());
    const first = gw;
    await waitFor(
      async () =>
        (
          (await fetch(`${first.url}/api/health`).then((r) => r.json())) as {
            components: { mqtt: { state: string } };
          }
        ).components.mqtt.state === 'ok',
      20_000,
      'subscribed',
    );

    // Publish in paced slices so the crash lands in the middle of the stream.
    const publishing = (async () => {
      for (let i = 0; i < msgs.length; i += 250) {
        await publishAll(mosq.url, msgs.slice(i, i + 250));
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    await waitFor(async () => (await accepted(first)) >= 3000, 60_000, 'a third accepted');
    await first.kill();
    const atKill = await count();
    expect(atKill).toBeLessThan(10_000);

    await publishing; // the rest is queued by Mosquitto for the gateway's persistent session
    gw = await spawnGateway(config());
    await waitFor(async () => (await count()) === 10_000, 90_000, 'all 10,000 after the restart');
    const sum = await influx.query(`SELECT sum(temperature_c) FROM env_probe`, 'facility');
    expect(Number(sum[0]!.values[0]![1])).toBeCloseTo(expectedTemperatureSum(10_000), 6);
    expect(await gw.stop()).toBe(0);
    gw = undefined;
  });
});
