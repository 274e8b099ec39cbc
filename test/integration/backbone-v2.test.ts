import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startVictoria, type Victoria } from '../fixtures/victoria.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { envReadings, expectedTemperatureSum, publishAll } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';
import type { Gateway } from '../../gateway/src/gateway.js';

/** Must-show 1, second half: the same path through the official client's v2 write API. */
describe('MQTT → gateway → VictoriaMetrics (InfluxDB v2 write API)', () => {
  let mosq: Mosquitto;
  let vm: Victoria;
  let gw: Gateway & { cleanup(): Promise<void> };

  beforeAll(async () => {
    [mosq, vm] = await Promise.all([startMosquitto(), startVictoria()]);
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-v2-test' },
        // gzip on although VictoriaMetrics is on loopback: the compressed path is the one to prove.
        influx: { api: 'v2', url: vm.url, org: 'facility', bucket: 'facility', token: 'unused', gzip: true },
      }),
    );
  });

  afterAll(async () => {
    await gw?.cleanup();
    await Promise.all([mosq?.stop(), vm?.stop()]);
  });

  it('lands 10,000 QoS 1 readings exactly once with tags, fields and timestamps', async () => {
    const base = Date.UTC(2026, 10, 22, 8, 0, 0);
    const msgs = envReadings(10_000, 100, base, 'site-v2');
    await publishAll(mosq.url, msgs);
    await waitFor(
      () => gw.outbox.stats().pendingLines === 0 && gw.pipeline!.counters.accepted === 10_000,
      60_000,
      'drained',
    );

    const found = await waitFor(
      async () => {
        const s = await vm.export('{__name__="env_probe_temperature_c",site="site-v2"}');
        const n = s.reduce((a, x) => a + x.values.length, 0);
        return n === 10_000 ? s : null;
      },
      30_000,
      '10,000 samples in VictoriaMetrics',
    );
    const series = found!;
    expect(series.length).toBe(100);
    const sum = series.reduce((a, s) => a + s.values.reduce((b, v) => b + v, 0), 0);
    expect(sum).toBeCloseTo(expectedTemperatureSum(10_000), 6);
    const probe0 = series.find((s) => s.metric.device === 'probe-0')!;
    expect(probe0.timestamps[0]).toBe(base);
    expect(probe0.values[0]).toBe(20);
    expect(probe0.metric.site).toBe('site-v2');
    const dew = await vm.export('{__name__="env_probe_dew_point_c",site="site-v2"}');
    expect(dew.reduce((a, x) => a + x.values.length, 0)).toBe(10_000);
  });
});
