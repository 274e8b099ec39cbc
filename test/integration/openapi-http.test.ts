import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routesOf, type RouteEntry } from '../../gateway/src/http/app.js';
import { ERROR_CATALOGUE, ERROR_CODES } from '../../gateway/src/http/errors.js';
import { sign } from '../../gateway/src/notifications/sign.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';

/**
 * The OpenAPI document against the running gateway (every optional route group switched on): it
 * validates as OpenAPI 3.1, lists every registered route with its method, schemas and role, and
 * documents the error catalogue. Then, table-driven, every route with a body or query answers a
 * request that breaks its schema with 400, the catalogue's code and the failing field's path.
 */

const INBOUND_SECRET = 'inbound-secret-0123456789abcdef';
let gw: Awaited<ReturnType<typeof startGateway>>;
type Doc = {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown>; description?: string }> };
};
type Operation = {
  'x-role'?: string;
  description?: string;
  security?: Record<string, string[]>[];
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
};
let doc: Doc;

beforeAll(async () => {
  gw = await startGateway(
    testConfig({
      influx: { enabled: false },
      notifications: { inbound: { enabled: true, secrets: [INBOUND_SECRET] } },
    }),
  );
  // Without a token: the document describes the API, it shows no data.
  const res = await gw.app!.inject({ method: 'GET', url: '/api/openapi.json' });
  expect(res.statusCode).toBe(200);
  doc = res.json<Doc>();
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
});

const key = (r: { method: string; url: string }) => `${r.method} ${r.url}`;
/** `/api/tickets/:id` → `/api/tickets/{id}`, as OpenAPI writes a path. */
const openapiPath = (url: string) => url.replace(/:([A-Za-z]+)/g, '{$1}');
/** The API's routes: not HEAD twins, not the document and its page, not the dashboard's files. */
const apiRoutes = (): RouteEntry[] =>
  routesOf(gw.app!).filter(
    (r) =>
      r.method !== 'HEAD' &&
      (r.url.startsWith('/api/') || r.url === '/metrics') &&
      r.url !== '/api/openapi.json' &&
      !r.url.startsWith('/api/docs'),
  );

describe('the OpenAPI document', () => {
  it('validates as OpenAPI 3.1', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const v = new Validator();
    const res = await v.validate(doc as unknown as Parameters<Validator['validate']>[0]);
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
  });

  it("carries the gateway's version from package.json", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(doc.info.version).toBe(pkg.version);
    expect(doc.info.version).not.toBe('0.0.0');
  });

  it('lists every registered route with its method, role, security and schemas', () => {
    const routes = apiRoutes();
    expect(routes.length).toBeGreaterThanOrEqual(30);
    for (const r of routes) {
      const op = doc.paths[openapiPath(r.url)]?.[r.method.toLowerCase()];
      expect(op, `${key(r)} in the document`).toBeDefined();
      expect(r.role, `${key(r)} declares a role`).toBeDefined();
      expect(op!['x-role'], key(r)).toBe(r.role);
      expect(op!.description, key(r)).toContain(`Role: **${r.role}**`);
      const bearer = r.role !== 'public' && r.role !== 'signed';
      expect(op!.security, key(r)).toEqual(bearer ? [{ bearer: [] }, { session: [] }] : []);
      expect(r.schema, `${key(r)} has a response schema`).toContain('response');
      // A success, or a redirect for the one route that is a link (the demo's sign-in link).
      expect(
        Object.keys(op!.responses).some((s) => s.startsWith('2') || s === '302'),
        key(r),
      ).toBe(true);
      const where = new Set((op!.parameters ?? []).map((p) => p.in));
      if (r.schema.includes('querystring')) expect(where.has('query'), `${key(r)} query`).toBe(true);
      if (r.schema.includes('params')) expect(where.has('path'), `${key(r)} params`).toBe(true);
      if (r.schema.includes('body')) expect(op!.requestBody, `${key(r)} body`).toBeDefined();
    }
    // Nothing in the document that the app does not serve.
    const served = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openapiPath(r.url)}`));
    for (const [path, ops] of Object.entries(doc.paths))
      for (const m of Object.keys(ops)) expect(served, `${m} ${path}`).toContain(`${m} ${path}`);
  });

  it('documents the bearer scheme and the error catalogue', () => {
    const d = doc as unknown as { components: { securitySchemes: Record<string, unknown> } };
    expect(d.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const error = JSON.stringify(doc.components.schemas.Error);
    for (const code of ERROR_CODES) expect(error).toContain(code);
    expect(doc.components.schemas.Error?.description).toContain('| `GW_ERR_UNAVAILABLE` | 503 | true |');
    for (const name of ['Device', 'Alarm', 'Ticket', 'Health'])
      expect(doc.components.schemas).toHaveProperty(name);
  });

  it('serves the reference page without a token', async () => {
    const page = await gw.app!.inject({ method: 'GET', url: '/api/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
  });
});

/** A request that breaks one field of each route's schema, and the path the answer must name. */
interface Breaker {
  query?: string;
  body?: unknown;
  path: string;
}
const BREAKERS: Record<string, Breaker> = {
  'GET /api/devices': { query: 'state=asleep', path: 'query.state' },
  'GET /api/devices/:id/readings': { query: 'metric=1bad', path: 'query.metric' },
  'GET /api/alarms': { query: 'state=some', path: 'query.state' },
  'GET /api/alarms/shelves': { query: 'all=maybe', path: 'query.all' },
  'POST /api/alarms/shelve': { body: { device: 'tank-1', reason: 'valve' }, path: 'body.untilMs' },
  'POST /api/alarms/:id/ack': { body: { note: 5 }, path: 'body.note' },
  'GET /api/windows': { query: 'all=maybe', path: 'query.all' },
  'GET /api/reports/monthly/status': { query: 'month=2026-13', path: 'query.month' },
  'GET /api/reports/monthly/stored': { query: 'month=2026-10&format=pdf', path: 'query.format' },
  'POST /api/windows': {
    body: { site: 'estate', schedule: { type: 'rrule', rrule: 'FREQ=DAILY', durationMin: -1 }, reason: 'x' },
    path: 'body.schedule.durationMin',
  },
  'GET /api/rules': { query: 'device=', path: 'query.device' },
  'GET /api/tickets': { query: 'limit=0', path: 'query.limit' },
  'POST /api/tickets': { body: { title: '', site: 'estate' }, path: 'body.title' },
  'POST /api/tickets/:id/actions': { body: { action: 'dance' }, path: 'body.action' },
  'GET /api/reports/monthly': { query: 'month=2026-13', path: 'query.month' },
  'GET /api/maintenance/calendar': { query: 'from=yesterday', path: 'query.from' },
  'POST /api/admin/tokens': { body: { name: 'a b', role: 'viewer' }, path: 'body.name' },
  'POST /api/session': { body: { username: 'x' }, path: 'body' },
  'POST /api/session/password': { body: { currentPassword: 'x' }, path: 'body.newPassword' },
  'GET /api/session/link': { query: 'code=', path: 'query.code' },
  'POST /api/admin/users': {
    body: { username: 'Not Valid', displayName: 'x', role: 'viewer' },
    path: 'body.username',
  },
  'POST /api/admin/users/:username/reset-password': { body: { password: 5 }, path: 'body.password' },
  'GET /api/admin/notifications': { query: 'limit=5000', path: 'query.limit' },
  'POST /api/webhooks/inbound': {
    body: { ticketId: 'WO-000001', action: 'comment', note: 'x', actor: 'not valid!' },
    path: 'body.actor',
  },
  'POST /api/demo/devices/:id/faults': { body: { fault: 'NO SUCH FAULT' }, path: 'body.fault' },
  'GET /api/live': { query: 'site=a&colour=red', path: 'query.colour' },
  'GET /api/fleet/rules': { query: 'device=no-site', path: 'query.device' },
  'PUT /api/fleet/overrides': {
    body: { scope: 'planet', target: 'estate', rule: 'chlorine.free.low', set: {} },
    path: 'body.scope',
  },
  'DELETE /api/fleet/overrides': { query: 'key=', path: 'query.key' },
  'GET /api/fleet/history': { query: 'limit=0', path: 'query.limit' },
  'PUT /api/fleet/devices': { body: { site: 'north', id: 'a b', kind: 'water-meter' }, path: 'body.id' },
  'POST /api/fleet/devices/:site/:id/retire': { body: { note: 5 }, path: 'body.note' },
  'POST /api/fleet/devices/:site/:id/move': { body: { site: 'no site' }, path: 'body.site' },
  'POST /api/fleet/devices/import': { body: { csv: '' }, path: 'body.csv' },
  'PUT /api/fleet/contacts': { body: { contacts: [] }, path: 'body.contacts' },
  'PUT /api/fleet/on-call': { body: { week: '2026-49', contact: null }, path: 'body.week' },
  'GET /api/fleet/schedules': { query: 'count=0', path: 'query.count' },
  'PUT /api/fleet/schedules': {
    body: { id: 'pm', title: 'x', kinds: ['chlorination'], every: { days: 7 }, hour: 25 },
    path: 'body.hour',
  },
  'POST /api/fleet/schedules/:id/retire': { body: { note: 5 }, path: 'body.note' },
  'POST /api/fleet/schedules/:id/move': {
    body: { dueAt: 'soon', to: '2030-01-01T08:00:00Z' },
    path: 'body.dueAt',
  },
  'POST /api/fleet/schedules/:id/skip': { body: { dueAt: '2030-01-01T08:00:00Z' }, path: 'body.reason' },
  'DELETE /api/fleet/schedules/:id/occurrences': { query: 'dueAt=tomorrow', path: 'query.dueAt' },
  'PUT /api/fleet/channels/webhooks': {
    body: { name: 'a b', url: 'http://127.0.0.1:9/' },
    path: 'body.name',
  },
  'DELETE /api/fleet/channels/webhooks/:name': { query: `note=${'x'.repeat(501)}`, path: 'query.note' },
  'PUT /api/fleet/channels/email': { body: { enabled: 'yes' }, path: 'body.enabled' },
  'DELETE /api/fleet/channels/email': { query: `note=${'x'.repeat(501)}`, path: 'query.note' },
  'POST /api/fleet/channels/test': { body: { channel: 'sms' }, path: 'body.channel' },
};

describe('a request that breaks a schema', () => {
  it('every route with a body or query has a breaking request in the table', () => {
    const withInput = apiRoutes()
      .filter((r) => r.schema.includes('body') || r.schema.includes('querystring'))
      .map(key);
    expect(withInput.length).toBeGreaterThanOrEqual(15);
    expect(withInput.filter((k) => !(k in BREAKERS))).toEqual([]);
    expect(Object.keys(BREAKERS).filter((k) => !withInput.includes(k))).toEqual([]);
  });

  it('answers 400 with GW_ERR_BAD_REQUEST and the failing field path, route by route', async () => {
    let checked = 0;
    for (const r of apiRoutes()) {
      const b = BREAKERS[key(r)];
      if (!b) continue;
      const url = r.url.replace(/:[a-z]+/g, 'nosuch') + (b.query ? `?${b.query}` : '');
      const payload = b.body === undefined ? undefined : JSON.stringify(b.body);
      const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}` };
      if (payload !== undefined) headers['content-type'] = 'application/json';
      if (r.role === 'signed') {
        // The signature is the credential: a correctly signed request reaches the schema check.
        const ts = String(Math.floor(Date.now() / 1000));
        headers['x-gateway-timestamp'] = ts;
        headers['x-gateway-signature'] = sign(INBOUND_SECRET, ts, payload ?? '');
        headers['idempotency-key'] = `openapi-${checked}`;
        delete headers.authorization;
      }
      const res = await gw.app!.inject({ method: r.method as 'GET', url, headers, payload });
      const label = `${key(r)}: ${res.body}`;
      expect(res.statusCode, label).toBe(400);
      const err = res.json<{
        error: { code: string; message: string; retryable: boolean; issues: { path: string }[] };
      }>().error;
      expect(err.code, label).toBe('GW_ERR_BAD_REQUEST');
      expect(err.retryable, label).toBe(ERROR_CATALOGUE.GW_ERR_BAD_REQUEST.retryable);
      expect(err.message.startsWith(`${b.path}: `) || err.message.includes(`; ${b.path}: `), label).toBe(
        true,
      );
      expect(
        err.issues.map((i) => i.path),
        label,
      ).toContain(b.path);
      checked++;
    }
    expect(checked).toBe(Object.keys(BREAKERS).length);
  });

  it('an unknown key is named in the message', async () => {
    const res = await gw.app!.inject({
      method: 'POST',
      url: '/api/tickets',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      payload: { title: 't', site: 's', colour: 'red' },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ error: { message: string } }>().error.message).toBe('body.colour: unknown key');
  });
});
