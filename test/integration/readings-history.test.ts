import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startVictoria, type Victoria } from '../fixtures/victoria.js';

/**
 * The history route over long ranges against a real InfluxDB 1.6.7: downsampled server-side into
 * about as many buckets as asked for, spread over the whole range, spikes kept in min/max; and a
 * store without InfluxQL (VictoriaMetrics) is a clear error, not an empty or bogus history.
 */
const DAY = 86_400_000;
const STEP = 5 * 60_000;
const to = Date.UTC(2026, 10, 22, 12, 0, 0);
const from = to - 7 * DAY;
/** One reading in the middle of the week far above the rest. */
const SPIKE_AT = from + 3 * DAY + 7 * STEP;

interface Answer {
  interval: number | null;
  truncated?: boolean;
  points: Array<{ ts: number; value: number | boolean | null; min?: unknown; max?: unknown }>;
}

describe('device history over long ranges', () => {
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };
  const get = async (
    path: string,
  ): Promise<{ status: number; body: Answer & { error?: { message: string } } }> => {
    const res = await gw.app!.inject({ url: path, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    return { status: res.statusCode, body: res.json() };
  };

  beforeAll(async () => {
    influx = await startInfluxDB();
    await influx.createDb('facility');
    // A week of a tank every 5 minutes: 2016 readings, the dosing pump on one reading in 100.
    const lines: string[] = [];
    for (let ts = from, i = 0; ts <= to; ts += STEP, i++) {
      const chlorine = ts === SPIKE_AT ? 9.5 : 0.4 + (i % 10) / 100;
      lines.push(
        `chlorination,site=s1,device=tank-1 free_chlorine_mgl=${chlorine},dosing_pump_on=${i % 100 === 50} ${ts}000000`,
      );
    }
    const res = await fetch(`${influx.url}/write?db=facility`, { method: 'POST', body: lines.join('\n') });
    expect(res.status).toBe(204);
    gw = await startGateway(
      testConfig({
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        devices: [{ id: 'tank-1', site: 's1', kind: 'chlorination', critical: true }],
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await gw?.cleanup();
    await influx?.close();
  });

  const url = (extra: string) =>
    `/api/devices/s1%2Ftank-1/readings?metric=free_chlorine_mgl&from=${from}&to=${to}${extra}`;

  it('returns buckets spread over the whole 7-day range, with the interval used and the spike kept', async () => {
    const { status, body } = await get(url('&points=400'));
    expect(status).toBe(200);
    expect(body.interval).toBe(Math.ceil((7 * DAY + 1) / 400));
    const pts = body.points;
    expect(pts.length).toBeGreaterThan(350);
    expect(pts.length).toBeLessThanOrEqual(401);
    // From the first bucket to the last: the whole week, not its first hours.
    expect(pts[0]!.ts).toBe(from);
    expect(pts.at(-1)!.ts).toBeGreaterThan(to - 2 * body.interval!);
    for (let i = 1; i < pts.length; i++) expect(pts[i]!.ts - pts[i - 1]!.ts).toBe(body.interval);
    // The spike is one reading among about six per bucket: the mean hides it, the max does not.
    const spike = pts.find((p) => p.ts <= SPIKE_AT && SPIKE_AT < p.ts + body.interval!)!;
    expect(spike.max).toBe(9.5);
    expect(spike.value as number).toBeLessThan(9.5);
    expect(spike.value as number).toBeGreaterThan(0.4);
    for (const p of pts) expect(p.min as number).toBeLessThanOrEqual(p.value as number);
    expect(pts.filter((p) => p.max === 9.5)).toHaveLength(1);
  });

  it('downsamples a boolean metric into whether it was ever and always true in each bucket', async () => {
    const res = await get(url('&points=20').replace('free_chlorine_mgl', 'dosing_pump_on'));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const pts = res.body.points;
    expect(pts.length).toBe(20);
    // The pump ran once every 100 readings (8.3 h); each bucket is 8.4 h long.
    expect(pts.filter((p) => p.value === true).length).toBeGreaterThanOrEqual(19);
    for (const p of pts) {
      expect(p.max).toBe(p.value);
      expect(p.min).toBe(false);
    }
  });

  it('still answers raw readings, oldest first, and says when the limit cut the range short', async () => {
    const raw = await get(url('&limit=1000'));
    expect(raw.status).toBe(200);
    expect(raw.body.interval).toBeNull();
    expect(raw.body.truncated).toBe(true);
    expect(raw.body.points).toHaveLength(1000);
    expect(raw.body.points[0]).toEqual({ ts: from, value: 0.4 });
    const all = await get(url(''));
    expect(all.body.truncated).toBe(false);
    expect(all.body.points).toHaveLength(7 * 288 + 1);
    const bad = await get(url('&points=5'));
    expect(bad.status).toBe(400);
    expect(bad.body.error!.message).toContain('query.points');
  });

  it('says plainly that a store without InfluxQL (VictoriaMetrics) has no history', async () => {
    let vm: Victoria | undefined;
    let other: (Gateway & { cleanup(): Promise<void> }) | undefined;
    try {
      vm = await startVictoria();
      other = await startGateway(
        testConfig({
          influx: { api: 'v2', url: vm.url, bucket: 'facility', org: 'facility' },
          devices: [{ id: 'tank-1', site: 's1', kind: 'chlorination', critical: true }],
        }),
      );
      for (const extra of ['', '&points=100']) {
        const res = await other.app!.inject({
          url: url(extra),
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        expect(res.statusCode).toBe(502);
        expect(res.json().error.message).toContain('serves no InfluxQL SELECT');
      }
    } finally {
      await other?.cleanup();
      await vm?.stop();
    }
  });
});
