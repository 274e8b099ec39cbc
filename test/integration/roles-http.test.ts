import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/src/gateway.js';
import { routesOf, type RouteEntry } from '../../gateway/src/http/app.js';
import type { GatewayConfig } from '../../gateway/src/config/schema.js';
import { startSimulation, type Simulation } from '../../simulators/index.js';
import { ADMIN_TOKEN, testConfig } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';
import { webhookSchema } from '../../gateway/src/notifications/index.js';

/**
 * Roles on the running gateway (embedded broker, real SQLite stores, the simulators' control for the
 * demo routes, a webhook receiver that refuses events so some are dead): every mutating route of the
 * app's own route table against no token / viewer / engineer / admin, each allowed role with a valid
 * request that must succeed; and tokens created, used, listed, revoked and expired over the admin API,
 * surviving a restart.
 */

const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
/** Configured by its sha256 only: the config holds no secret. */
const HASHED = 'hashed-viewer-token-0123456789';
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
type Role = 'viewer' | 'engineer' | 'admin';

/** Routes open without a token: CONTRACT.md's and the OpenAPI document with its reference page. */
const OPEN = new Set(['GET /api/health', 'GET /metrics', 'GET /api/openapi.json']);
/** Open too, because they are how a person gets a session: signing in, the demo's one-time link. */
const SIGN_IN = new Set(['POST /api/session', 'GET /api/session/link', 'GET /api/session/providers']);
/** Changes to the caller's own session only (sign out, own password): any signed-in role. */
const OWN_SESSION = new Set(['DELETE /api/session', 'POST /api/session/password']);
const isDocsPage = (url: string) => url === '/api/docs' || url.startsWith('/api/docs/');
/** A one-off maintenance window from now for an hour. */
const windowSchedule = () => ({
  type: 'once',
  from: new Date().toISOString(),
  to: new Date(Date.now() + 3_600_000).toISOString(),
});
const RANK: Record<Role, number> = { viewer: 0, engineer: 1, admin: 2 };
const TOKEN: Record<Role, string> = { viewer: VIEWER, engineer: ENGINEER, admin: ADMIN_TOKEN };

const REFUSER_SECRET = 'refusing-receiver-secret-0123';
let cfg: GatewayConfig;
let configPath: string;
let gw: Gateway;
let sim: Simulation;
let refuser: WebhookReceiver;

async function start(): Promise<Gateway> {
  const g = new Gateway(cfg, pino({ level: cfg.logLevel }), { configPath });
  await g.start();
  // The demo routes reach the simulators' control, as under `npm start`.
  g.demoControlUrl = sim.controlUrl;
  return g;
}

/** Safety alarms from readings with no chlorine residual, published to the gateway's own broker; their ids. */
async function raiseAlarms(count: number, prefix = 'a'): Promise<string[]> {
  const now = Date.now();
  const devices = Array.from({ length: count }, (_, i) => `tank-${prefix}${i + 1}`);
  await publishAll(
    gw.mqttUrl,
    devices.map((d) => ({
      topic: `facility/estate/chlorination/${d}/telemetry`,
      payload: JSON.stringify({ ts: now, free_chlorine_mgl: 0.02 }),
    })),
  );
  const active = async () =>
    (
      (await call('GET', '/api/alarms?state=active', VIEWER)).body.alarms as { id: string; device: string }[]
    ).filter((a) => devices.includes(a.device));
  await waitFor(async () => (await active()).length === count, 20_000, 'alarms raised');
  return (await active()).map((a) => a.id);
}

/** A bearer token, or a session cookie (sent as the dashboard sends it: with its own Origin). */
type Cred = string | { cookie: string };

async function call(method: string, path: string, token: Cred | null, body?: unknown) {
  const headers: Record<string, string> = {};
  if (typeof token === 'string') headers.authorization = `Bearer ${token}`;
  else if (token) {
    headers.cookie = token.cookie;
    headers.origin = gw.httpUrl!;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  // Not every answer is JSON (`/api/config/export` is YAML): then only the status counts.
  const json = res.headers.get('content-type')?.includes('json') ?? false;
  return { status: res.status, body: text && json ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

beforeAll(async () => {
  // Refuses every event (400): each ticket event is parked as dead, which the admin retry route needs.
  refuser = new WebhookReceiver(REFUSER_SECRET, await freePort());
  refuser.defaultStatus = 400;
  await refuser.start();
  const overrides = {
    influx: { enabled: false },
    notifications: {
      inbound: { enabled: true, secrets: ['inbound-secret-0123456789abcdef'] },
      webhooks: [webhookSchema.parse({ name: 'refuser', url: refuser.url, secret: REFUSER_SECRET })],
    },
    http: {
      tokens: [
        { name: 'erin', role: 'engineer', token: ENGINEER },
        { name: 'val', role: 'viewer', token: VIEWER },
        { name: 'wall', role: 'viewer', tokenSha256: sha256(HASHED).toUpperCase() },
      ],
    },
  } satisfies Parameters<typeof testConfig>[0];
  cfg = testConfig(overrides);
  // The config file `POST /api/admin/reload` reads again: the same settings.
  configPath = join(cfg.dataDir, 'gateway.yaml');
  writeFileSync(
    configPath,
    stringify({ ...overrides, dataDir: cfg.dataDir, http: { ...overrides.http, adminToken: ADMIN_TOKEN } }),
  );
  sim = await startSimulation({
    brokerUrl: null,
    scenario: { name: 'demo', sites: [{ id: 'estate', devices: [{ id: 'tank-d', kind: 'chlorination' }] }] },
    controlPort: 0,
    logger: pino({ level: 'warn' }),
  });
  gw = await start();
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await sim?.stop();
  await refuser?.stop();
  rmSync(cfg.dataDir, { recursive: true, force: true });
});

describe('role matrix over the route table', () => {
  const key = (r: { method: string; url: string }) => `${r.method} ${r.url}`;
  const apiRoutes = (): RouteEntry[] =>
    routesOf(gw.app!).filter(
      (r) => r.method !== 'HEAD' && (r.url.startsWith('/api') || r.url === '/metrics'),
    );
  /** The role a route declares in its config (`config: { role }`), read from the app's route table. */
  const needOf = (r: RouteEntry): Role => r.role as Role;
  /** Mutating routes behind a credential, less those on the caller's own session. */
  const mutatingRoutes = () =>
    apiRoutes().filter(
      (r) => r.method !== 'GET' && r.role !== 'signed' && !SIGN_IN.has(key(r)) && !OWN_SESSION.has(key(r)),
    );

  it('every route declares its role; none opens more than the contract allows', () => {
    const routes = apiRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(20);
    expect(routes.filter((r) => r.role === undefined).map(key)).toEqual([]);
    // Open: the contract's routes and the API's own description, nothing else; never a mutating route.
    expect(
      routes
        .filter((r) => r.role === 'public' && !OPEN.has(key(r)) && !SIGN_IN.has(key(r)) && !isDocsPage(r.url))
        .map(key),
    ).toEqual([]);
    for (const k of SIGN_IN) expect(routes.filter((r) => r.role === 'public').map(key)).toContain(k);
    // Signing out and changing one's own password: every signed-in role, nothing else.
    for (const k of OWN_SESSION) expect(routes.find((r) => key(r) === k)?.role, k).toBe('viewer');
    for (const k of OPEN) expect(routes.filter((r) => r.role === 'public').map(key)).toContain(k);
    // A signature instead of a token: only the inbound webhook.
    expect(routes.filter((r) => r.role === 'signed').map(key)).toEqual(['POST /api/webhooks/inbound']);
    // The admin API is admin-only, whatever a route's author declared elsewhere.
    expect(routes.filter((r) => r.url.startsWith('/api/admin/') && r.role !== 'admin').map(key)).toEqual([]);
    // Viewers read: every route that changes something needs engineer or admin (CONTRACT.md).
    expect(mutatingRoutes().length).toBeGreaterThanOrEqual(8);
    expect(
      mutatingRoutes()
        .filter((r) => r.role !== 'engineer' && r.role !== 'admin')
        .map(key),
    ).toEqual([]);
  });

  /** A session cookie per role: an account of that role created by the admin, signed in over HTTP. */
  const cookies = {} as Record<Role, { cookie: string }>;
  const sessionOf = async (role: Role): Promise<{ cookie: string }> => {
    if (cookies[role]) return cookies[role];
    const password = `pw-for-${role}-0123`;
    const made = await call('POST', '/api/admin/users', ADMIN_TOKEN, {
      username: `matrix-${role}`,
      displayName: `Matrix ${role}`,
      role,
      password,
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const res = await fetch(`${gw.httpUrl}/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: gw.httpUrl! },
      body: JSON.stringify({ username: `matrix-${role}`, password }),
    });
    expect(res.status).toBe(200);
    // A first password set by an admin must be changed before anything else: done here over HTTP.
    const cookie = /^(fgw_session=[^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
    const changed = await call(
      'POST',
      '/api/session/password',
      { cookie },
      {
        currentPassword: password,
        newPassword: `${password}-changed`,
      },
    );
    expect(changed.status).toBe(204);
    cookies[role] = { cookie };
    return cookies[role];
  };

  it.each(['bearer', 'cookie'] as const)(
    'no credential 401, a weaker role 403, every role strong enough succeeds (2xx) with a valid request (%s)',
    async (mode) => {
      const cred = async (role: Role): Promise<Cred> => (mode === 'bearer' ? TOKEN[role] : sessionOf(role));
      const alarmIds = await raiseAlarms(2, mode === 'bearer' ? 'a' : 'c');
      const ticket = await call('POST', '/api/tickets', ENGINEER, { title: 'matrix', site: 'estate' });
      let n = mode === 'bearer' ? 0 : 1000;
      /** A fresh account to act on (never one of the matrix's own). */
      const someone = async () => {
        const username = `u-${++n}`;
        const made = await call('POST', '/api/admin/users', ADMIN_TOKEN, {
          username,
          displayName: 'X',
          role: 'viewer',
        });
        expect(made.status).toBe(201);
        return username;
      };
      /** A fresh maintenance schedule whose first occurrence is 2030-01-01 08:00 UTC. */
      const matrixSchedule = async () => {
        const id = `matrix-pm-${++n}`;
        const body = {
          id,
          title: 'by the matrix',
          kinds: ['chlorination'],
          every: { days: 10 },
          anchor: '2030-01-01T00:00:00Z',
        };
        expect((await call('PUT', '/api/fleet/schedules', ADMIN_TOKEN, body)).status).toBe(200);
        return id;
      };
      /** A valid request for each mutating route, made anew for each role that may call it. */
      const valid: Record<string, () => Promise<{ path: string; body?: unknown }>> = {
        'POST /api/alarms/:id/ack': async () => ({
          path: `/api/alarms/${alarmIds.shift()!}/ack`,
          body: { note: 'seen' },
        }),
        'POST /api/alarms/shelve': async () => ({
          path: '/api/alarms/shelve',
          body: { device: 'tank-a1', durationMin: 10, reason: 'valve exchange' },
        }),
        'DELETE /api/alarms/shelves/:id': async () => {
          const shelf = await call('POST', '/api/alarms/shelve', ADMIN_TOKEN, {
            rule: 'water.leak',
            durationMin: 5,
            reason: 'test',
          });
          return { path: `/api/alarms/shelves/${String(shelf.body.id)}` };
        },
        'POST /api/windows': async () => ({
          path: '/api/windows',
          body: { kind: 'chlorination', schedule: windowSchedule(), reason: 'tank cleaning' },
        }),
        'POST /api/windows/:id/end': async () => {
          const w = await call('POST', '/api/windows', ADMIN_TOKEN, {
            device: 'tank-a1',
            schedule: windowSchedule(),
            reason: 'test',
          });
          return { path: `/api/windows/${String(w.body.id)}/end` };
        },
        'POST /api/tickets': async () => ({
          path: '/api/tickets',
          body: { title: 'by hand', site: 'estate' },
        }),
        'POST /api/tickets/:id/actions': async () => ({
          path: `/api/tickets/${String(ticket.body.id)}/actions`,
          body: { action: 'comment', note: 'checked' },
        }),
        'POST /api/admin/reload': async () => ({ path: '/api/admin/reload' }),
        'POST /api/admin/users': async () => ({
          path: '/api/admin/users',
          body: { username: `u-${++n}`, displayName: 'New person', role: 'viewer', language: 'zh' },
        }),
        'POST /api/admin/users/:username/disable': async () => ({
          path: `/api/admin/users/${await someone()}/disable`,
        }),
        'POST /api/admin/users/:username/enable': async () => ({
          path: `/api/admin/users/${await someone()}/enable`,
        }),
        'POST /api/admin/users/:username/reset-password': async () => ({
          path: `/api/admin/users/${await someone()}/reset-password`,
          body: {},
        }),
        'POST /api/admin/tokens': async () => ({
          path: '/api/admin/tokens',
          body: { name: `matrix-${++n}`, role: 'viewer' },
        }),
        'POST /api/admin/tokens/:name/revoke': async () => {
          const name = `matrix-${++n}`;
          expect(
            (await call('POST', '/api/admin/tokens', ADMIN_TOKEN, { name, role: 'viewer' })).status,
          ).toBe(201);
          return { path: `/api/admin/tokens/${name}/revoke` };
        },
        'POST /api/admin/notifications/:seq/retry': async () => {
          const dead = await waitFor(
            () => gw.notifications!.queue.list('dead', 'webhook:refuser', 1)[0],
            20_000,
            'a dead event',
          );
          return { path: `/api/admin/notifications/${dead!.seq}/retry` };
        },
        'POST /api/demo/devices/:id/faults': async () => ({
          path: '/api/demo/devices/tank-d/faults',
          body: { fault: 'chlorine-loss', forMs: 60_000 },
        }),
        'PUT /api/fleet/overrides': async () => ({
          path: '/api/fleet/overrides',
          body: {
            scope: 'device',
            target: 'estate/tank-d',
            rule: 'chlorine.free.low',
            set: { low: { value: 0.3 + ++n / 100 } },
          },
        }),
        'DELETE /api/fleet/overrides': async () => {
          const o = {
            scope: 'site',
            target: `site-${++n}`,
            rule: 'chlorine.free.high',
            set: { enabled: false },
          };
          expect((await call('PUT', '/api/fleet/overrides', ADMIN_TOKEN, o)).status).toBe(200);
          return {
            path: `/api/fleet/overrides?key=${encodeURIComponent(`site:${o.target}:chlorine.free.high`)}`,
          };
        },
        'POST /api/fleet/history/:id/restore': async () => {
          const o = {
            scope: 'kind',
            target: `kind-${++n}`,
            rule: 'chlorine.free.high',
            set: { enabled: false },
          };
          const r = await call('PUT', '/api/fleet/overrides', ADMIN_TOKEN, o);
          return { path: `/api/fleet/history/${String((r.body.change as { id: number }).id)}/restore` };
        },
        'PUT /api/fleet/devices': async () => ({
          path: '/api/fleet/devices',
          body: { site: 'estate', id: `meter-${++n}`, kind: 'water-meter', name: 'by the matrix' },
        }),
        'POST /api/fleet/devices/:site/:id/retire': async () => {
          const id = `meter-${++n}`;
          await call('PUT', '/api/fleet/devices', ADMIN_TOKEN, { site: 'estate', id, kind: 'water-meter' });
          return { path: `/api/fleet/devices/estate/${id}/retire`, body: {} };
        },
        'POST /api/fleet/devices/:site/:id/move': async () => {
          const id = `meter-${++n}`;
          await call('PUT', '/api/fleet/devices', ADMIN_TOKEN, { site: 'estate', id, kind: 'water-meter' });
          return { path: `/api/fleet/devices/estate/${id}/move`, body: { site: 'annex' } };
        },
        'POST /api/fleet/devices/:site/:id/adopt': async () => {
          const id = `found-${++n}`;
          await publishAll(gw.mqttUrl, [
            {
              topic: `facility/estate/water-meter/${id}/telemetry`,
              payload: JSON.stringify({ ts: Date.now(), volume_m3: 1 }),
            },
          ]);
          await waitFor(
            async () =>
              (await call('GET', `/api/devices/${encodeURIComponent(`estate/${id}`)}`, VIEWER)).status ===
              200,
            10_000,
            'a discovered device',
          );
          return { path: `/api/fleet/devices/estate/${id}/adopt` };
        },
        'POST /api/fleet/devices/import': async () => ({
          path: '/api/fleet/devices/import',
          body: { csv: `site,id,kind\nestate,csv-${++n},water-meter\n`, dryRun: false },
        }),
        'PUT /api/fleet/contacts': async () => ({
          path: '/api/fleet/contacts',
          body: { contacts: [{ name: `night desk ${++n}` }, { name: 'shift supervisor' }] },
        }),
        'PUT /api/fleet/on-call': async () => ({
          path: '/api/fleet/on-call',
          body: { week: '2030-W10', contact: { name: `on call ${++n}` } },
        }),
        'PUT /api/fleet/schedules': async () => ({
          path: '/api/fleet/schedules',
          body: { id: `matrix-${++n}`, title: 'by the matrix', kinds: ['chlorination'], every: { days: 10 } },
        }),
        'POST /api/fleet/schedules/:id/retire': async () => {
          const id = await matrixSchedule();
          return { path: `/api/fleet/schedules/${id}/retire`, body: {} };
        },
        'POST /api/fleet/schedules/:id/move': async () => ({
          path: `/api/fleet/schedules/${await matrixSchedule()}/move`,
          body: { dueAt: '2030-01-01T08:00:00Z', to: '2030-01-02T08:00:00Z' },
        }),
        'POST /api/fleet/schedules/:id/skip': async () => ({
          path: `/api/fleet/schedules/${await matrixSchedule()}/skip`,
          body: { dueAt: '2030-01-01T08:00:00Z', reason: 'by the matrix' },
        }),
        'DELETE /api/fleet/schedules/:id/occurrences': async () => {
          const id = await matrixSchedule();
          const skip = { dueAt: '2030-01-01T08:00:00Z', reason: 'by the matrix' };
          expect((await call('POST', `/api/fleet/schedules/${id}/skip`, ADMIN_TOKEN, skip)).status).toBe(200);
          return { path: `/api/fleet/schedules/${id}/occurrences?dueAt=2030-01-01T08:00:00Z` };
        },
        // Channels that take no event (contactsOnly) and reach the refusing receiver.
        'PUT /api/fleet/channels/webhooks': async () => ({
          path: '/api/fleet/channels/webhooks',
          body: { name: `hook-${++n}`, url: refuser.url, secret: REFUSER_SECRET, contactsOnly: true },
        }),
        'DELETE /api/fleet/channels/webhooks/:name': async () => {
          const name = `hook-${++n}`;
          const body = { name, url: refuser.url, secret: REFUSER_SECRET, contactsOnly: true };
          expect((await call('PUT', '/api/fleet/channels/webhooks', ADMIN_TOKEN, body)).status).toBe(200);
          return { path: `/api/fleet/channels/webhooks/${name}` };
        },
        'PUT /api/fleet/channels/email': async () => ({
          path: '/api/fleet/channels/email',
          body: { enabled: false, from: `desk-${++n}@example.org` },
        }),
        'DELETE /api/fleet/channels/email': async () => {
          const body = { enabled: false, from: `desk-${++n}@example.org` };
          expect((await call('PUT', '/api/fleet/channels/email', ADMIN_TOKEN, body)).status).toBe(200);
          return { path: '/api/fleet/channels/email' };
        },
        // The refusing receiver answers 400: the verdict is "dead", the route's answer 200.
        'POST /api/fleet/channels/test': async () => ({
          path: '/api/fleet/channels/test',
          body: { channel: 'webhook:refuser' },
        }),
        'DELETE /api/demo/devices/:id/faults': async () => {
          sim.startFault('tank-d', 'ph-high', 60_000);
          return { path: '/api/demo/devices/tank-d/faults' };
        },
      };
      // A new mutating route needs a valid request here, or this fails.
      expect(Object.keys(valid).sort()).toEqual(mutatingRoutes().map(key).sort());
      const seen: string[] = [];
      for (const r of mutatingRoutes()) {
        const need = needOf(r);
        expect(['viewer', 'engineer', 'admin'], key(r)).toContain(need);
        // Refused before anything else is looked at: an id that does not exist and an empty body will do.
        const path = r.url.replace(/:[a-z]+/g, 'nosuch');
        const body = r.method === 'DELETE' ? undefined : {};
        const none = await call(r.method, path, null, body);
        expect(none.status, `${key(r)} without a credential`).toBe(401);
        if (mode === 'cookie') {
          const stale = await call(r.method, path, { cookie: 'fgw_session=not-a-session' }, body);
          expect(stale.status, `${key(r)} with an unknown session`).toBe(401);
          // The admin's own cookie, sent from another origin: refused before anything else.
          const { cookie } = await sessionOf('admin');
          const res = await fetch(`${gw.httpUrl}${path}`, {
            method: r.method,
            headers: { cookie, origin: 'http://127.0.0.1:1', 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          expect(res.status, `${key(r)} cross-origin`).toBe(403);
          expect(((await res.json()) as { error: { code: string } }).error.code).toBe('GW_ERR_CROSS_SITE');
        }
        for (const role of ['viewer', 'engineer', 'admin'] as const) {
          if (RANK[role] < RANK[need]) {
            const res = await call(r.method, path, await cred(role), body);
            expect(res.status, `${key(r)} as ${role}`).toBe(403);
            expect(res.body).toMatchObject({ error: { code: 'GW_ERR_FORBIDDEN' } });
            seen.push(`${key(r)} ${role} ${res.status}`);
            continue;
          }
          const req = await valid[key(r)]!();
          const res = await call(r.method, req.path, await cred(role), req.body);
          const label = `${key(r)} as ${role}: ${res.status} ${JSON.stringify(res.body)}`;
          expect(res.status, label).toBeGreaterThanOrEqual(200);
          expect(res.status, label).toBeLessThan(300);
          seen.push(`${key(r)} ${role} ${res.status}`);
        }
      }
      expect(seen.length).toBe(mutatingRoutes().length * 3);
    },
    120_000,
  );

  it('a signed route refuses every bearer token: only a valid signature is a credential', async () => {
    const signed = apiRoutes().filter((r) => r.role === 'signed');
    expect(signed.length).toBe(1);
    for (const { method, url: path } of signed) {
      const k = `${method} ${path}`;
      for (const token of [null, VIEWER, ENGINEER, ADMIN_TOKEN]) {
        const res = await call(method, path, token, { ticketId: 'WO-000001', action: 'comment', actor: 'x' });
        expect(res.status, `${k} with ${token ?? 'no token'}`).toBe(401);
        expect(res.body).toMatchObject({ error: { code: 'GW_ERR_WEBHOOK_SIGNATURE' } });
      }
    }
  });

  it.each(['bearer', 'cookie'] as const)(
    'read routes: viewer reads, the report is read-only, admin-only reads refuse weaker roles (%s)',
    async (mode) => {
      for (const r of apiRoutes().filter((x) => x.method === 'GET')) {
        if (r.url === '/api/live') continue; // a stream that stays open; its role check is tested in live tests
        const path =
          r.url.replace(/:[a-z]+/g, 'nosuch') + (r.url === '/api/reports/monthly' ? '?month=2026-10' : '');
        if (r.role === 'public') {
          if (OPEN.has(key(r)))
            expect([200, 503], key(r)).toContain((await fetch(`${gw.httpUrl}${path}`)).status);
          continue;
        }
        expect((await call('GET', path, null)).status, `${key(r)} without a token`).toBe(401);
        const need = needOf(r);
        for (const role of ['viewer', 'engineer', 'admin'] as const) {
          const res = await call('GET', path, mode === 'bearer' ? TOKEN[role] : await sessionOf(role));
          if (RANK[role] < RANK[need]) expect(res.status, `${key(r)} as ${role}`).toBe(403);
          else expect([401, 403], `${key(r)} as ${role}`).not.toContain(res.status);
        }
      }
      expect(apiRoutes().some((r) => r.method !== 'GET' && r.url.startsWith('/api/reports'))).toBe(false);
    },
    60_000,
  );
});

describe('token management', () => {
  it('creates a token shown once, hashed at rest, listed without secret; revoked means 401 at once', async () => {
    const created = await call('POST', '/api/admin/tokens', ADMIN_TOKEN, {
      name: 'desk-2',
      role: 'engineer',
    });
    expect(created.status).toBe(201);
    const secret = created.body.token as string;
    expect(secret).toMatch(/^fgw_[A-Za-z0-9_-]{43}$/);
    expect(created.body).toMatchObject({ name: 'desk-2', role: 'engineer', source: 'api', revoked: false });

    const ticket = await call('POST', '/api/tickets', secret, { title: 'by the new token', site: 'estate' });
    expect(ticket.status).toBe(201);
    expect(ticket.body.requester).toBe('desk-2');
    expect((await call('POST', '/api/admin/tokens', secret, { name: 'x', role: 'admin' })).status).toBe(403);

    const list = await call('GET', '/api/admin/tokens', ADMIN_TOKEN);
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(secret);
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    const names = (list.body.tokens as { name: string; source: string; lastUsed: string | null }[]).map(
      (t) => `${t.name}:${t.source}`,
    );
    // Less the tokens the role matrix made and revoked.
    expect(names.filter((x) => !x.startsWith('matrix-'))).toEqual([
      'admin:config',
      'erin:config',
      'val:config',
      'wall:config',
      'desk-2:api',
    ]);
    const mine = (list.body.tokens as { name: string; lastUsed: string | null }[]).find(
      (t) => t.name === 'desk-2',
    );
    expect(mine?.lastUsed).not.toBeNull();

    const dup = await call('POST', '/api/admin/tokens', ADMIN_TOKEN, { name: 'erin', role: 'viewer' });
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ error: { code: 'GW_ERR_TOKEN_EXISTS' } });
    const bad = await call('POST', '/api/admin/tokens', ADMIN_TOKEN, { name: 'a b', role: 'boss' });
    expect(bad.status).toBe(400);
    expect((bad.body.error as { message: string }).message).toMatch(
      /body\.name.*body\.role|body\.role.*body\.name/,
    );

    const revoked = await call('POST', '/api/admin/tokens/desk-2/revoke', ADMIN_TOKEN);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ name: 'desk-2', revoked: true });
    expect((await call('GET', '/api/tickets', secret)).status).toBe(401);
    // Config tokens are managed in the config file; revoking them over HTTP is refused and they keep working.
    const cfgTok = await call('POST', '/api/admin/tokens/erin/revoke', ADMIN_TOKEN);
    expect(cfgTok.status).toBe(409);
    expect((await call('GET', '/api/tickets', ENGINEER)).status).toBe(200);
  });

  it('an expired token is refused; tokens live across a restart, revoked ones stay revoked', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const exp = await call('POST', '/api/admin/tokens', ADMIN_TOKEN, {
      name: 'temp',
      role: 'viewer',
      expiresAt,
    });
    expect(exp.status).toBe(201);
    const tempSecret = exp.body.token as string;
    expect((await call('GET', '/api/tickets', tempSecret)).status).toBe(200);
    await waitFor(
      async () => (await call('GET', '/api/tickets', tempSecret)).status === 401,
      20_000,
      'expiry',
    );
    const past = await call('POST', '/api/admin/tokens', ADMIN_TOKEN, {
      name: 'late',
      role: 'viewer',
      expiresAt: '2020-01-01T00:00:00Z',
    });
    expect(past.status).toBe(400);

    const kept = await call('POST', '/api/admin/tokens', ADMIN_TOKEN, { name: 'kept', role: 'viewer' });
    const keptSecret = kept.body.token as string;
    await gw.stop();
    gw = await start();
    expect((await call('GET', '/api/tickets', keptSecret)).status).toBe(200);
    expect((await call('GET', '/api/tickets', tempSecret)).status).toBe(401);
    const list = (await call('GET', '/api/admin/tokens', ADMIN_TOKEN)).body.tokens as {
      name: string;
      revoked: boolean;
      expired: boolean;
    }[];
    expect(list.find((t) => t.name === 'desk-2')).toMatchObject({ revoked: true });
    expect(list.find((t) => t.name === 'temp')).toMatchObject({ revoked: false, expired: true });
    expect(list.find((t) => t.name === 'kept')).toMatchObject({ revoked: false, expired: false });
  }, 60_000);

  it('tokens.db holds hashes only: no plaintext token in any row or anywhere in its files', async () => {
    const made = await call('POST', '/api/admin/tokens', ADMIN_TOKEN, { name: 'at-rest', role: 'viewer' });
    expect(made.status).toBe(201);
    const secret = made.body.token as string;
    // A token given as a hash in the config works like any other.
    expect((await call('GET', '/api/tickets', HASHED)).status).toBe(200);
    expect((await call('POST', '/api/tickets', HASHED, { title: 'x', site: 's' })).status).toBe(403);

    const file = join(cfg.dataDir, 'tokens.db');
    const db = new Database(file, { readonly: true });
    try {
      const tables = (
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
      ).map((t) => t.name);
      expect(tables).toContain('tokens');
      let cells = 0;
      for (const table of tables) {
        for (const row of db.prepare(`SELECT * FROM "${table}"`).all() as Record<string, unknown>[]) {
          for (const v of Object.values(row)) {
            cells++;
            expect(String(v)).not.toContain(secret);
            expect(String(v)).not.toContain(secret.slice(4));
          }
        }
      }
      expect(cells).toBeGreaterThan(10);
      const rec = db.prepare('SELECT hash FROM tokens WHERE name = ?').get('at-rest') as { hash: string };
      expect(rec.hash).toBe(sha256(secret));
    } finally {
      db.close();
    }
    // The bytes on disk too, write-ahead log included: no page ever held the token.
    for (const f of [file, `${file}-wal`]) {
      if (!existsSync(f)) continue;
      const bytes = readFileSync(f);
      expect(bytes.includes(secret.slice(4)), f).toBe(false);
    }
    expect(readFileSync(file).length).toBeGreaterThan(0);
  });
});

describe('an admin token configured as a hash', () => {
  it('works, and the gateway writes no admin-token file', async () => {
    const secret = 'hashed-admin-token-0123456789';
    const c = testConfig({
      influx: { enabled: false },
      http: { adminToken: undefined, adminTokenSha256: sha256(secret) },
    });
    const g = new Gateway(c, pino({ level: c.logLevel }));
    await g.start();
    try {
      const res = await fetch(`${g.httpUrl}/api/admin/tokens`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      expect(res.status).toBe(200);
      expect(existsSync(join(c.dataDir, 'admin-token'))).toBe(false);
      expect(g.adminToken).toBeUndefined();
    } finally {
      await g.stop();
      rmSync(c.dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
