import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { Engine, payloadOf, type SimMessage } from '../../simulators/engine/engine.js';
import { loadScenarioFile } from '../../simulators/scenario/load.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * The simulators' sensor-fault scenario (room-1's probe fails for an hour) over MQTT JSON into the
 * gateway and a real InfluxDB 1.6.7: the failed sensor's 0 °C and 0 %RH never appear as values in
 * the history, the chart data or the Grafana panels, which say where they were instead (ADR 0070).
 */
const ROOT = join(import.meta.dirname, '../..');
const MIN = 60_000;
const DB = 'facility';

interface History {
  interval: number | null;
  points: Array<{ ts: number; value: number | null; min?: number | null; max?: number | null }>;
  notGood: Array<{ ts: number; quality?: string; count?: number }>;
}

describe('a sensor fault through the simulators: bad values left out everywhere', () => {
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };
  // Within the last two hours, so Grafana's own time filter (now() - 2h) covers it too.
  const start = Math.floor((Date.now() - 115 * MIN) / MIN) * MIN;
  const end = start + 110 * MIN;
  const faultFrom = start + 30 * MIN;
  const faultTo = start + 90 * MIN;
  let room1: SimMessage[] = [];
  let bad: SimMessage[] = [];

  beforeAll(async () => {
    influx = await startInfluxDB();
    gw = await startGateway(testConfig({ influx: { api: 'v1', url: influx.url, db: DB } }));
    const engine = new Engine(loadScenarioFile(join(ROOT, 'simulators/scenarios/sensor-fault.yaml')), {
      seed: 7,
      startTime: start,
    });
    const msgs = engine.advanceTo(end).filter((m) => !m.silent);
    room1 = msgs.filter((m) => m.device === 'room-1');
    bad = room1.filter((m) => m.bad.length > 0);
    expect(bad.length).toBeGreaterThan(10);
    await publishAll(
      gw.mqttUrl,
      msgs.map((m) => ({ topic: m.topic, payload: payloadOf(m) })),
    );
    await waitFor(
      async () => {
        const s = await influx.query(
          `SELECT count("temperature_c") AS good, count("temperature_c_bad") AS bad FROM env_probe WHERE "device" = 'room-1'`,
          DB,
        );
        const row = s[0]?.values[0];
        return row?.[1] === room1.length - bad.length && row?.[2] === bad.length;
      },
      30_000,
      'every reading of room-1 in InfluxDB',
    );
  }, 90_000);

  afterAll(async () => {
    await gw?.cleanup();
    await influx?.close();
  });

  const get = async (query: string): Promise<History> => {
    const res = await gw.app!.inject({
      url: `/api/devices/site-1%2Froom-1/readings?${query}&from=${start}&to=${end}`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as History;
  };
  const inFault = (ts: number) => ts >= faultFrom && ts < faultTo;

  it('history: only good values, and where the bad ones were', async () => {
    for (const metric of ['temperature_c', 'humidity_pct']) {
      const h = await get(`metric=${metric}`);
      expect(h.points).toHaveLength(room1.length - bad.length);
      for (const p of h.points) {
        expect(inFault(p.ts), `${metric} at ${p.ts}`).toBe(false);
        expect(p.value).not.toBe(0);
      }
      expect(h.notGood.map((x) => x.ts)).toEqual(bad.map((m) => m.ts));
      expect(new Set(h.notGood.map((x) => x.quality))).toEqual(new Set(['bad']));
    }
    // No dew point from a failed sensor: none during the fault.
    const dp = await get('metric=dew_point_c');
    expect(dp.points.some((p) => inFault(p.ts))).toBe(false);
  });

  it('chart data: no bucket averages a bad value; the buckets that had them say how many', async () => {
    const h = await get('metric=temperature_c&points=22');
    const interval = h.interval!;
    for (const p of h.points) {
      expect(p.min!).toBeGreaterThan(10);
      expect(p.value!).toBeGreaterThan(10);
      // A bucket wholly inside the fault has no good value, so no point at all.
      expect(inFault(p.ts) && inFault(p.ts + interval - 1), `bucket ${p.ts}`).toBe(false);
    }
    expect(h.notGood.reduce((a, b) => a + b.count!, 0)).toBe(bad.length);
    for (const b of h.notGood) expect(b.ts + interval > faultFrom && b.ts < faultTo).toBe(true);
  });

  it('Grafana: no panel shows the failed sensor as a value; its own panel counts the bad ones', async () => {
    const d = JSON.parse(
      readFileSync(join(ROOT, 'dashboards/grafana/dashboards/env-probe.json'), 'utf8'),
    ) as {
      panels: Array<{ title: string; targets?: Array<{ query: string }> }>;
    };
    let counted = 0;
    for (const p of d.panels) {
      for (const t of p.targets ?? []) {
        const q = t.query
          .replaceAll('$timeFilter', `time >= ${start}ms AND time <= ${end}ms`)
          .replaceAll('$__interval', '1m')
          .replaceAll('$site', 'site-1')
          .replaceAll('$device', 'room-1');
        const series = await influx.query(q, DB);
        for (const s of series) {
          for (const row of s.values) {
            if (p.title.startsWith('Values not good')) {
              counted += row[s.columns.indexOf('temperature_c')] as number;
              continue;
            }
            for (const c of ['temperature_c', 'humidity_pct', 'dew_point_c']) {
              const i = s.columns.indexOf(c);
              if (i >= 0) expect(row[i], `${p.title}: ${c} at ${String(row[0])}`).not.toBe(0);
            }
            // Per-minute buckets: none inside the fault for a value panel.
            if (p.title.startsWith('Inlet temperature')) expect(inFault(row[0] as number)).toBe(false);
          }
        }
      }
    }
    expect(counted).toBe(bad.length);
  });
});
