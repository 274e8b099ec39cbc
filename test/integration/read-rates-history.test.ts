import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { InfluxReader } from '../../gateway/src/sinks/influx/query.js';
import { readRatesFromHistory, type ReadRateInput } from '../../gateway/src/rules/read-rate.js';
import { readRateRuleSchema } from '../../gateway/src/rules/schema.js';
import { influxSchema } from '../../gateway/src/config/schema.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';

/**
 * Read rates of a month that has ended come from InfluxDB's history (the registry keeps only each
 * meter's latest reading): which meters wrote in the month, or in the quarter ending with it for
 * in-home meters. Against a real InfluxDB 1.6.7, then through the report route of a running gateway.
 */

const OCT1 = Date.UTC(2026, 9, 1);
const NOV1 = Date.UTC(2026, 10, 1);
const DB = 'facility';
let influx: InfluxDB;

beforeAll(async () => {
  influx = await startInfluxDB();
  await influx.createDb(DB);
  const lines = [
    `water_meter,device=wm-1,site=est volume_m3=1 ${Date.UTC(2026, 9, 3)}`,
    `water_meter,device=wm-2,site=est volume_m3=2 ${Date.UTC(2026, 9, 31, 23, 59)}`,
    // The first instant of November is outside October (half-open windows).
    `water_meter,device=wm-3,site=est volume_m3=3 ${NOV1}`,
    `water_meter,device=wm-3,site=est volume_m3=3 ${Date.UTC(2026, 8, 20)}`,
    // In-home gas meter: read in August, inside the 91-day window ending with October.
    `gas_meter,device=gm-1,site=est volume_m3=4 ${Date.UTC(2026, 7, 15)}`,
    // Only bad values in October (a failed register, ADR 0070): the meter was not read.
    `water_meter,device=wm-4,site=est volume_m3_bad=0,volume_m3_quality="bad",battery_pct_bad=0,battery_pct_quality="bad" ${Date.UTC(2026, 9, 10)}`,
  ];
  const res = await fetch(`${influx.url}/write?db=${DB}&precision=ms`, {
    method: 'POST',
    body: lines.join('\n'),
  });
  expect(res.status).toBe(204);
}, 60_000);
afterAll(async () => {
  await influx?.close();
});

function reader(db = DB): InfluxReader {
  return new InfluxReader(influxSchema.parse({ enabled: true, api: 'v1', url: influx.url, db }));
}

describe('read rates from history', () => {
  it('InfluxDB names exactly the devices that wrote in the window', async () => {
    expect([...(await reader().reportedDevices('water_meter', OCT1, NOV1))].sort()).toEqual([
      'est/wm-1',
      'est/wm-2',
    ]);
    expect([...(await reader().reportedDevices('gas_meter', NOV1 - 91 * 86_400_000, NOV1))]).toEqual([
      'est/gm-1',
    ]);
    // A database that does not exist yet has no history.
    expect((await reader('nosuch').reportedDevices('water_meter', OCT1, NOV1)).size).toBe(0);
  });

  it('judges each class over its period: residential monthly, in-home over the quarter', async () => {
    const rule = readRateRuleSchema.parse({
      id: 'meter.read-rate',
      kind: 'read-rate',
      kinds: ['water-meter', 'gas-meter'],
      class: 'routine',
      severity: 'warning',
    });
    const known = Date.UTC(2026, 5, 1);
    const meters: ReadRateInput[] = [
      {
        site: 'est',
        device: 'wm-1',
        kind: 'water-meter',
        meterClass: 'residential',
        lastSeen: undefined,
        knownSince: known,
      },
      {
        site: 'est',
        device: 'wm-2',
        kind: 'water-meter',
        meterClass: 'residential',
        lastSeen: undefined,
        knownSince: known,
      },
      {
        site: 'est',
        device: 'wm-3',
        kind: 'water-meter',
        meterClass: 'residential',
        lastSeen: undefined,
        knownSince: known,
      },
      {
        site: 'est',
        device: 'gm-1',
        kind: 'gas-meter',
        meterClass: 'in-home',
        lastSeen: undefined,
        knownSince: known,
      },
      // Known only after October: not expected to have been read in it.
      {
        site: 'est',
        device: 'wm-9',
        kind: 'water-meter',
        meterClass: 'residential',
        lastSeen: undefined,
        knownSince: NOV1 + 1000,
      },
    ];
    const asked: string[] = [];
    const r = reader();
    const rates = await readRatesFromHistory([{ rule, meters }], OCT1, NOV1, (kind, start, end) => {
      asked.push(`${kind} ${new Date(start).toISOString()}`);
      return r.reportedDevices(kind === 'gas-meter' ? 'gas_meter' : 'water_meter', start, end);
    });
    const by = Object.fromEntries(rates.map((x) => [x.meterClass, x]));
    expect(by.residential).toMatchObject({ site: 'est', expected: 3, read: 2, target: 0.98, ok: false });
    expect(by.residential!.rate).toBeCloseTo(2 / 3, 9);
    expect(by['in-home']).toMatchObject({ expected: 1, read: 1, rate: 1, ok: true, windowDays: 91 });
    // One question per (kind, window), not one per meter.
    expect(asked.sort()).toEqual([
      'gas-meter 2026-08-02T00:00:00.000Z',
      'water-meter 2026-10-01T00:00:00.000Z',
    ]);
  });
});

describe('the report of an ended month over HTTP', () => {
  let gw: Gateway & { cleanup(): Promise<void> };
  beforeAll(async () => {
    gw = await startGateway(
      testConfig({
        influx: { enabled: true, api: 'v1', url: influx.url, db: DB },
        devices: [
          { id: 'wm-1', site: 'est', kind: 'water-meter', meterClass: 'residential', critical: false },
          { id: 'wm-2', site: 'est', kind: 'water-meter', meterClass: 'residential', critical: false },
        ],
      }),
    );
  }, 60_000);
  afterAll(async () => {
    await gw?.cleanup();
  });

  it('lists the read rates InfluxDB shows for the month, in JSON and CSV', async () => {
    const get = (q: string) =>
      fetch(`${gw.httpUrl}/api/reports/monthly?month=2026-10${q}`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
    const res = await get('');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { readRates: unknown[] };
    expect(body.readRates).toEqual([
      {
        site: 'est',
        meterClass: 'residential',
        period: 'month',
        expected: 2,
        reported: 2,
        rate: 1,
        target: 0.98,
        met: true,
      },
    ]);
    const csv = await (await get('&format=csv')).text();
    expect(csv).toContain('est,residential,month,2,2,1,0.98,true');
  });
});
