import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * `ticket_event` in a real InfluxDB 1.6.7: tickets raised and worked over HTTP on the running
 * gateway reach InfluxDB through the outbox, one point per change, with the KPI tags and fields.
 */

const ENGINEER = 'engineer-token-0123';
let influx: InfluxDB;
let gw: Gateway & { cleanup(): Promise<void> };

beforeAll(async () => {
  influx = await startInfluxDB();
  await influx.createDb('kpi');
  gw = await startGateway(
    testConfig({
      influx: { api: 'v1', url: influx.url, db: 'kpi' },
      http: { tokens: [{ name: 'erin', role: 'engineer', token: ENGINEER }] },
    }),
  );
}, 90_000);
afterAll(async () => {
  await gw?.cleanup();
  await influx?.close();
});

async function post(path: string, body: unknown) {
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ENGINEER}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, unknown>;
}

describe('ticket_event', () => {
  it('one point per ticket change with site, device, priority, class, event, status and the KPI fields', async () => {
    const t = await post('/api/tickets', {
      title: 'Leaking valve',
      site: 'estate-a',
      device: 'wm-1',
      priority: 'high',
    });
    const id = t.id as string;
    await post(`/api/tickets/${id}/actions`, { action: 'acknowledge' });
    await post(`/api/tickets/${id}/actions`, { action: 'hold', note: 'waiting for a gasket' });
    await post(`/api/tickets/${id}/actions`, { action: 'resume' });
    await post(`/api/tickets/${id}/actions`, { action: 'assign', assignee: 'erin' });
    await post(`/api/tickets/${id}/actions`, { action: 'start' });
    await post(`/api/tickets/${id}/actions`, { action: 'resolve' });
    await post('/api/tickets', { title: 'Roof inspection', site: 'estate-b' });

    const q = `SELECT * FROM ticket_event WHERE ticket_id = '${id}' ORDER BY time`;
    const rows = await waitFor(
      async () => {
        const s = await influx.query(q, 'kpi');
        return s[0] && s[0].values.length === 7 ? s[0] : undefined;
      },
      30_000,
      'seven ticket_event points',
    );
    if (!rows) throw new Error('no ticket_event series');
    const points = rows.values.map((v) => Object.fromEntries(rows.columns.map((c, i) => [c, v[i]])));
    expect(points.map((p) => p.action)).toEqual([
      'create',
      'acknowledge',
      'hold',
      'resume',
      'assign',
      'start',
      'resolve',
    ]);
    expect(points[0]).toMatchObject({
      site: 'estate-a',
      device: 'wm-1',
      priority: 'high',
      class: 'routine',
      event: 'created',
      status: 'open',
      escalation_level: 0,
      repeat: false,
    });
    expect(points[1]).toMatchObject({ event: 'updated', status: 'acknowledged' });
    expect(typeof points[1]!.response_min).toBe('number');
    expect(points[6]).toMatchObject({ status: 'resolved' });
    expect(typeof points[6]!.resolve_min).toBe('number');
    // Each time figure once: on the change that responded / resolved.
    expect(points.filter((p) => p.response_min !== null)).toHaveLength(1);
    expect(points.filter((p) => p.resolve_min !== null)).toHaveLength(1);

    // A ticket without a device has no device tag.
    const other = await waitFor(
      async () => (await influx.query(`SELECT * FROM ticket_event WHERE site = 'estate-b'`, 'kpi'))[0],
      30_000,
      'the second ticket',
    );
    const col = other.columns.indexOf('device');
    expect(other.values[0]![col]).toBeNull();
  }, 60_000);
});
