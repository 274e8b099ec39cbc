import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * The readings snapshot of a ticket raised by an alarm holds the rule's metric over the hour
 * before the alarm, read back from a real InfluxDB 1.x after the readings were written.
 */

const VIEWER = 'viewer-token-0123';
const MIN = 60_000;

let mosq: Mosquitto;
let influx: InfluxDB;
beforeAll(async () => {
  [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
  await influx.createDb('facility');
});
afterAll(async () => {
  await Promise.all([mosq?.stop(), influx?.close()]);
});

interface Snapshot {
  alarmValue: number;
  metric: string;
  history?: { ts: string; value: number }[];
  historyFrom?: string;
  historyTo?: string;
  historyError?: string;
}

describe('work-order readings snapshot', () => {
  it('holds the last hour of the metric from InfluxDB', async () => {
    const gw: Gateway & { cleanup(): Promise<void> } = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: `gw-wo-snap-${Math.random().toString(16).slice(2)}` },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        http: { tokens: [{ name: 'vic', role: 'viewer', token: VIEWER }] },
        workorders: { snapshot: { delayMs: 1500 } },
        devices: [{ id: 'tank-7', site: 'estate-b', kind: 'chlorination', critical: false }],
      }),
    );
    try {
      const t0 = Math.floor((Date.now() - 90 * MIN) / MIN) * MIN;
      // Every 5 minutes for 80 minutes, falling from 0.6 to 0.02 at the last reading (the alarm).
      const values = Array.from({ length: 17 }, (_, i) => (i < 16 ? +(0.6 - i * 0.01).toFixed(2) : 0.02));
      await publishAll(
        mosq.url,
        values.map((v, i) => ({
          topic: 'facility/estate-b/chlorination/tank-7/telemetry',
          payload: JSON.stringify({ ts: t0 + i * 5 * MIN, free_chlorine_mgl: v }),
        })),
        { window: 1 },
      );
      const get = async () => {
        const r = await fetch(`${gw.httpUrl}/api/tickets?device=tank-7`, {
          headers: { authorization: `Bearer ${VIEWER}` },
        });
        const list = ((await r.json()) as { tickets: { id: string }[] }).tickets;
        if (list.length === 0) return undefined;
        const one = await fetch(`${gw.httpUrl}/api/tickets/${list[0]!.id}`, {
          headers: { authorization: `Bearer ${VIEWER}` },
        });
        return ((await one.json()) as { readings: Snapshot }).readings;
      };
      await waitFor(
        async () => (await get())?.history !== undefined || (await get())?.historyError !== undefined,
        20_000,
        'snapshot history',
      );
      const snap = (await get())!;
      expect(snap.historyError).toBeUndefined();
      expect(snap.alarmValue).toBe(0.02);
      expect(snap.metric).toBe('free_chlorine_mgl');
      const alarmAt = t0 + 80 * MIN;
      expect(Date.parse(snap.historyTo!)).toBe(alarmAt);
      expect(Date.parse(snap.historyFrom!)).toBe(alarmAt - 60 * MIN);
      // 20, 25, … 80 minutes: the readings of the hour up to and including the alarm's.
      expect(snap.history!.map((p) => Date.parse(p.ts))).toEqual(
        Array.from({ length: 13 }, (_, i) => alarmAt - 60 * MIN + i * 5 * MIN),
      );
      expect(snap.history!.map((p) => p.value)).toEqual(values.slice(4));
    } finally {
      await gw.cleanup();
    }
  });
});
