import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { envReadings, expectedTemperatureSum, publishAll } from '../fixtures/publisher.js';
import { waitFor } from '../fixtures/ports.js';
import type { Gateway } from '../../gateway/src/gateway.js';

/** Must-show 1 and 2 of the backbone: real Mosquitto → gateway → real InfluxDB 1.6.7 over /write. */
describe('MQTT → gateway → InfluxDB 1.6.7 (v1 API)', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };

  beforeAll(async () => {
    [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-v1-test' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
      }),
    );
  });

  afterAll(async () => {
    await gw?.cleanup();
    await Promise.all([mosq?.stop(), influx?.close()]);
  });

  async function count(measurement: string, field: string, where = ''): Promise<number> {
    const res = await influx.query(`SELECT count(${field}) FROM ${measurement} ${where}`, 'facility');
    return Number(res[0]?.values[0]?.[1] ?? 0);
  }

  it('lands 10,000 QoS 1 readings exactly once with measurement, tags, fields and timestamps', async () => {
    const base = Date.UTC(2026, 10, 22, 8, 0, 0);
    const msgs = envReadings(10_000, 100, base, 'site-a');
    await publishAll(mosq.url, msgs);
    await waitFor(
      async () => (await count('env_probe', 'temperature_c', "WHERE site='site-a'")) === 10_000,
      60_000,
      '10,000 points',
    );

    const sum = await influx.query(
      `SELECT sum(temperature_c) FROM env_probe WHERE site='site-a'`,
      'facility',
    );
    expect(Number(sum[0]!.values[0]![1])).toBeCloseTo(expectedTemperatureSum(10_000), 6);

    // Tags and one point exactly: message 0 went to probe-0 at `base`.
    const one = await influx.query(
      `SELECT temperature_c, humidity_pct, dew_point_c, site, device FROM env_probe WHERE device='probe-0' AND time = ${base}ms`,
      'facility',
    );
    const cols = one[0]!.columns;
    const row = one[0]!.values[0]!;
    expect(row[cols.indexOf('time')]).toBe(base);
    expect(row[cols.indexOf('temperature_c')]).toBe(20);
    expect(row[cols.indexOf('humidity_pct')]).toBe(40);
    expect(row[cols.indexOf('site')]).toBe('site-a');
    expect(row[cols.indexOf('device')]).toBe('probe-0');
    expect(Number(row[cols.indexOf('dew_point_c')])).toBeCloseTo(6.0, 0);

    const devices = await influx.query(`SHOW TAG VALUES FROM env_probe WITH KEY = "device"`, 'facility');
    expect(devices[0]!.values.length).toBe(100);
    const fields = await influx.query('SHOW FIELD KEYS FROM env_probe', 'facility');
    const types = Object.fromEntries(fields[0]!.values.map((v) => [v[0], v[1]]));
    expect(types).toMatchObject({ temperature_c: 'float', humidity_pct: 'float', dew_point_c: 'float' });
  });

  it('serves the history of one metric from InfluxDB over the HTTP API', async () => {
    const base = Date.UTC(2026, 10, 22, 8, 0, 0);
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const url = `/api/devices/site-a%2Fprobe-0/readings?metric=temperature_c&from=${base}&to=${new Date(base + 99_000).toISOString()}`;
    const res = await gw.app!.inject({ url, headers: auth });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { device: string; points: Array<{ ts: number; value: number }> };
    expect(body.device).toBe('site-a/probe-0');
    expect(body.points).toHaveLength(100);
    // probe-0 got messages 0, 100, 200, ... one second apart.
    expect(body.points[0]).toEqual({ ts: base, value: 20 });
    expect(body.points[1]).toEqual({ ts: base + 1000, value: 20 + (100 % 50) / 10 });
    const limited = await gw.app!.inject({ url: url + '&limit=5', headers: auth });
    expect((limited.json() as { points: unknown[] }).points).toHaveLength(5);

    const bad = await gw.app!.inject({
      url: '/api/devices/site-a%2Fprobe-0/readings?metric=temp%20c',
      headers: auth,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toMatch(/query\.metric/);
    const missing = await gw.app!.inject({
      url: '/api/devices/site-a%2Fnope/readings?metric=temperature_c',
      headers: auth,
    });
    expect(missing.statusCode).toBe(404);
    const anonymous = await gw.app!.inject({
      url: '/api/devices/site-a%2Fprobe-0/readings?metric=temperature_c',
    });
    expect(anonymous.statusCode).toBe(401);
  });

  it('books gas consumption through a register rollover and flags a meter reset', async () => {
    const base = Date.UTC(2026, 10, 22, 9, 0, 0);
    const idx = [99_999.2, 99_999.7, 0.4, 1.4, 1.4, 0.2, 0.9];
    const msgs = idx.map((v, i) => ({
      topic: 'facility/site-c/gas-meter/gm-1/telemetry',
      payload: JSON.stringify({ ts: base + i * 60_000, volume_m3: v, flow_m3h: 0.5, valve_open: true }),
    }));
    // the 3rd message again, as a QoS 1 redelivery would bring it
    msgs.push(msgs[2]!);
    await publishAll(mosq.url, msgs, { window: 1 });
    await waitFor(
      async () => (await count('gas_meter', 'volume_m3', "WHERE device='gm-1'")) === idx.length,
      30_000,
      'gas points',
    );
    const rows = await influx.query(
      `SELECT consumption_m3, index_reset, volume_m3 FROM gas_meter WHERE device='gm-1' ORDER BY time`,
      'facility',
    );
    const c = rows[0]!.values.map((v) => v[1]);
    // first reading: nothing to subtract from; then 0.5, rollover 0.7, 1.0, 0, reset (0, flagged), 0.7
    expect(c[0]).toBeNull();
    expect(c.slice(1).map((x) => Math.round(Number(x) * 1000) / 1000)).toEqual([0.5, 0.7, 1, 0, 0, 0.7]);
    expect(rows[0]!.values[5]![2]).toBe(true);
  });

  it('keeps every reading exactly once when InfluxDB is down for the middle third of a run', async () => {
    const base = Date.UTC(2026, 10, 22, 10, 0, 0);
    const msgs = envReadings(10_000, 50, base, 'site-b');
    const third = Math.floor(msgs.length / 3);
    await publishAll(mosq.url, msgs.slice(0, third));
    await waitFor(
      async () => (await count('env_probe', 'temperature_c', "WHERE site='site-b'")) === third,
      60_000,
      'first third',
    );

    await influx.stop();
    await publishAll(mosq.url, msgs.slice(third, 2 * third));
    // The gateway keeps acknowledging: the readings wait in its outbox.
    await waitFor(() => gw.outbox.stats().pendingLines >= third, 30_000, 'second third in the outbox');
    await waitFor(() => gw.health().influx?.state !== 'ok', 30_000, 'influx reported unhealthy');

    await influx.restart();
    await publishAll(mosq.url, msgs.slice(2 * third));
    await waitFor(
      async () => (await count('env_probe', 'temperature_c', "WHERE site='site-b'")) === 10_000,
      90_000,
      'all 10,000 after the outage',
    );
    const sum = await influx.query(
      `SELECT sum(temperature_c) FROM env_probe WHERE site='site-b'`,
      'facility',
    );
    expect(Number(sum[0]!.values[0]![1])).toBeCloseTo(expectedTemperatureSum(10_000), 6);
    await waitFor(() => gw.outbox.stats().pendingLines === 0, 30_000, 'outbox drained');
    await waitFor(() => gw.health().influx?.state === 'ok', 30_000, 'influx healthy again');
  });
});
