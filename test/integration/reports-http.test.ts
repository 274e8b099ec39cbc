import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/src/gateway.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';

/**
 * The monthly report and maintenance calendar over HTTP, on the gateway running in-process with its
 * embedded broker and real SQLite stores: tickets raised and worked by hand show up in this month's
 * figures, in JSON and CSV; bad queries are 400 with the key path; no token is 401.
 */

const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
type Gw = Gateway & { cleanup(): Promise<void> };
let gw: Gw;

async function api(path: string, token: string | null, init: RequestInit = {}) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${gw.httpUrl}${path}`, { ...init, headers });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  return {
    status: res.status,
    type,
    text,
    body: type.includes('json') ? (JSON.parse(text) as Record<string, any>) : {}, // eslint-disable-line @typescript-eslint/no-explicit-any -- test reads nested JSON
  };
}

beforeAll(async () => {
  gw = await startGateway(
    testConfig({
      influx: { enabled: false },
      http: {
        tokens: [
          { name: 'erin', role: 'engineer', token: ENGINEER },
          { name: 'val', role: 'viewer', token: VIEWER },
        ],
      },
      devices: [{ id: 'tank-1', site: 'estate-a', kind: 'chlorination', critical: false }],
    }),
  );
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
});

const month = new Date().toISOString().slice(0, 7);

describe('GET /api/reports/monthly', () => {
  it('counts tickets raised and worked this month, by priority and site', async () => {
    const mk = async (site: string, priority: string) =>
      (
        await api('/api/tickets', ENGINEER, {
          method: 'POST',
          body: JSON.stringify({ title: `t ${site}`, site, priority }),
        })
      ).body.id as string;
    const a = await mk('estate-a', 'high');
    await mk('estate-a', 'medium');
    await mk('estate-b', 'medium');
    const act = (id: string, body: Record<string, unknown>) =>
      api(`/api/tickets/${id}/actions`, ENGINEER, { method: 'POST', body: JSON.stringify(body) });
    expect((await act(a, { action: 'acknowledge' })).status).toBe(200);
    await act(a, { action: 'assign', assignee: 'erin' });
    await act(a, { action: 'start' });
    expect((await act(a, { action: 'resolve' })).status).toBe(200);

    const r = await api(`/api/reports/monthly?month=${month}`, VIEWER);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ month, timeZone: 'UTC', site: null });
    expect(r.body.tickets.opened).toEqual({
      total: 3,
      byPriority: { critical: 0, high: 1, medium: 2, low: 0 },
      bySite: { 'estate-a': 2, 'estate-b': 1 },
    });
    expect(r.body.response.count).toBe(1);
    expect(r.body.resolution.count).toBe(1);
    // Responded and resolved within seconds: well inside the deadlines.
    expect(r.body.response.meanMin).toBeLessThan(5);
    expect(r.body.sla.response).toEqual({ met: 1, total: 1, rate: 1 });
    expect(r.body.alarms).toEqual({ total: 0, bySeverity: {}, byRule: {}, bySite: {} });
    expect(Object.keys(r.body).sort()).toEqual(
      [
        'alarms',
        'escalations',
        'from',
        'generatedAt',
        'month',
        'preventive',
        'readRates',
        'reopened',
        'repeats',
        'resolution',
        'response',
        'site',
        'sla',
        'tickets',
        'timeZone',
        'to',
      ].sort(),
    );

    const one = await api(`/api/reports/monthly?month=${month}&site=estate-b`, VIEWER);
    expect(one.body.tickets.opened.total).toBe(1);

    const csv = await api(`/api/reports/monthly?month=${month}&format=csv`, VIEWER);
    expect(csv.status).toBe(200);
    expect(csv.type).toContain('text/csv');
    expect(csv.text.split('\r\n')).toContain('opened,site,estate-b,1');
  });

  it('bad queries are 400 with the key path; no token is 401', async () => {
    const bad = await api('/api/reports/monthly?month=2026-13', VIEWER);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('query.month');
    const unknown = await api(`/api/reports/monthly?month=${month}&format=pdf`, VIEWER);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain('query.format');
    expect((await api(`/api/reports/monthly?month=${month}`, null)).status).toBe(401);
    expect((await api(`/api/reports/monthly?month=${month}`, ADMIN_TOKEN)).status).toBe(200);
  });
});

describe('GET /api/maintenance/calendar', () => {
  it('lists the coming disinfections of the tank, every 10 days', async () => {
    const from = new Date().toISOString();
    const to = new Date(Date.now() + 45 * 86_400_000).toISOString();
    const r = await api(`/api/maintenance/calendar?from=${from}&to=${to}`, VIEWER);
    expect(r.status).toBe(200);
    const tank = (r.body.occurrences as Record<string, unknown>[]).filter(
      (o) => o.schedule === 'tank-disinfection',
    );
    expect(tank.length).toBeGreaterThanOrEqual(4);
    expect(tank[0]).toMatchObject({
      site: 'estate-a',
      device: 'tank-1',
      ticketId: null,
      status: null,
      form: 'disinfection',
    });
    const gap = Date.parse(tank[1]!.dueAt as string) - Date.parse(tank[0]!.dueAt as string);
    expect(gap).toBe(10 * 86_400_000);
    const bad = await api(`/api/maintenance/calendar?from=${to}&to=${from}`, VIEWER);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('query.to');
  });
});
