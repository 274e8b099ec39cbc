import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * The ticket list as an integrator polls it, on the running gateway: pages with a total, changes
 * since a time (oldest first), filters by assignee and overdue, and the audit trail on request.
 */

const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
/** CONTRACT.md: what a ticket as JSON has at least. */
const CONTRACT_FIELDS = [
  'id',
  'title',
  'status',
  'priority',
  'site',
  'device',
  'rule',
  'alarmId',
  'createdAt',
  'responseDueAt',
  'resolveDueAt',
  'assignee',
  'escalationLevel',
  'repeatOf',
];

type Gw = Awaited<ReturnType<typeof startGateway>>;
interface Page {
  tickets: Array<Record<string, unknown> & { id: string; updatedAt: string }>;
  total: number;
  offset: number;
  limit: number;
  nextOffset: number | null;
}

let gw: Gw;
const api = async (path: string, token = VIEWER, init: RequestInit = {}) => {
  const r = await fetch(`${gw.httpUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
const list = async (q: string) => {
  const r = await api(`/api/tickets${q}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as unknown as Page;
};
const create = async (title: string, priority: string) => {
  const r = await api('/api/tickets', ENGINEER, {
    method: 'POST',
    body: JSON.stringify({ title, site: 'estate', priority }),
  });
  expect(r.status).toBe(201);
  return r.body.id as string;
};
const act = async (id: string, body: Record<string, unknown>) => {
  const r = await api(`/api/tickets/${id}/actions`, ENGINEER, { method: 'POST', body: JSON.stringify(body) });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
};

beforeAll(async () => {
  gw = await startGateway(
    testConfig({
      influx: { enabled: false },
      http: {
        tokens: [
          { name: 'eve', role: 'engineer', token: ENGINEER },
          { name: 'val', role: 'viewer', token: VIEWER },
        ],
      },
      // Low priority responds within 30 ms here, so an unanswered low ticket is overdue at once.
      workorders: { sla: { low: { respondMin: 0.0005 } } },
    }),
  );
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
});

describe('GET /api/tickets for integrators', () => {
  it('pages with total and nextOffset; every item has the contract fields; history on request', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await create(`page ${i}`, 'medium'));
    const p1 = await list('?limit=2');
    expect(p1).toMatchObject({ total: 5, offset: 0, limit: 2, nextOffset: 2 });
    expect(p1.tickets.map((t) => t.id)).toEqual([ids[4], ids[3]]);
    const p3 = await list('?limit=2&offset=4');
    expect(p3).toMatchObject({ nextOffset: null });
    expect(p3.tickets.map((t) => t.id)).toEqual([ids[0]]);
    for (const t of p1.tickets) {
      for (const k of CONTRACT_FIELDS) expect(t, k).toHaveProperty(k);
      expect(t.history).toBeUndefined();
    }
    const full = await list('?limit=2&include=history');
    expect(full.tickets.map((t) => (t.history as { action: string }[]).map((h) => h.action))).toEqual([
      ['create'],
      ['create'],
    ]);
    const one = await api(`/api/tickets/${ids[4]}`);
    expect(one.body.history).toEqual(full.tickets[0]!.history);
  });

  it('changes since a time, oldest change first; filters by assignee and overdue', async () => {
    const start = new Date().toISOString();
    const a = await create('assigned to bob', 'medium');
    const b = await create('nobody answers', 'low');
    await act(a, { action: 'acknowledge' });
    await act(a, { action: 'assign', assignee: 'bob' });
    const since = await list(`?updatedSince=${encodeURIComponent(start)}`);
    // b's last change is its creation, a's its assignment, which came after.
    expect(since.tickets.map((t) => t.id)).toEqual([b, a]);
    expect(since.total).toBe(2);
    // Polling on from the latest change seen gives that change again (inclusive) and nothing older.
    const last = since.tickets.at(-1)!.updatedAt;
    expect((await list(`?updatedSince=${encodeURIComponent(last)}`)).tickets.map((t) => t.id)).toEqual([a]);

    expect((await list('?assignee=bob')).tickets.map((t) => t.id)).toEqual([a]);
    await waitFor(async () => (await list('?overdue=true')).total === 1, 10_000, 'low ticket overdue');
    expect((await list('?overdue=true')).tickets.map((t) => t.id)).toEqual([b]);
    expect((await list('?overdue=false')).tickets.map((t) => t.id)).not.toContain(b);
    await act(b, { action: 'acknowledge' });
    expect((await list('?overdue=true')).total).toBe(0);
  });

  it('refuses bad queries with the key path', async () => {
    for (const [q, key] of [
      ['?updatedSince=yesterday', 'query.updatedSince'],
      ['?overdue=yes', 'query.overdue'],
      ['?offset=-1', 'query.offset'],
      ['?include=everything', 'query.include'],
    ]) {
      const r = await api(`/api/tickets${q!}`);
      expect(r.status, q).toBe(400);
      expect(JSON.stringify(r.body), q).toContain(key!);
    }
  });
});
