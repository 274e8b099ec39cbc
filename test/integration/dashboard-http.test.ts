import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/src/config/schema.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';

/** The gateway's side of the dashboard: static files with their cache rules, the SPA fallback, the session and demo routes. */
const dir = mkdtempSync(join(tmpdir(), 'fgw-webdir-'));
const INDEX = '<!doctype html><title>dash</title><div id="app"></div>';
let gw: Awaited<ReturnType<typeof startGateway>>;
let url: string;

const get = (path: string, token?: string, init: RequestInit = {}) =>
  fetch(`${url}${path}`, {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) },
  });

beforeAll(async () => {
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), INDEX);
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  gw = await startGateway(
    testConfig({
      influx: { enabled: false },
      http: {
        dashboard: { dir },
        tokens: [{ name: 'watcher', role: 'viewer', token: 'viewer-token-123' }],
      },
    }),
  );
  url = gw.httpUrl!;
});

afterAll(async () => {
  await gw?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('dashboard over HTTP', () => {
  it('serves index.html uncached and hashed assets for a year', async () => {
    const root = await get('/');
    expect(root.status).toBe(200);
    expect(root.headers.get('cache-control')).toBe('no-cache');
    expect(await root.text()).toBe(INDEX);
    const asset = await get('/assets/index-abc123.js');
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
  });

  it('answers a deep link with the dashboard, but an unknown /api path with a JSON 404', async () => {
    const deep = await get('/device/demo/tank-1');
    expect(deep.status).toBe(200);
    expect(await deep.text()).toBe(INDEX);
    const api = await get('/api/nothing-here', ADMIN_TOKEN);
    expect(api.status).toBe(404);
    expect(((await api.json()) as { error: { code: string } }).error.code).toBe('GW_ERR_NOT_FOUND');
    const post = await get('/somewhere', undefined, { method: 'POST' });
    expect(post.status).toBe(404);
  });

  it('tells a token its name and role, and refuses a bad one', async () => {
    const token = { via: 'token', mustChangePassword: false };
    expect(await (await get('/api/session', ADMIN_TOKEN)).json()).toEqual({
      name: 'admin',
      role: 'admin',
      ...token,
    });
    expect(await (await get('/api/session', 'viewer-token-123')).json()).toEqual({
      name: 'watcher',
      role: 'viewer',
      ...token,
    });
    const bad = await get('/api/session', 'wrong-token');
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('GW_ERR_UNAUTHORIZED');
    expect((await get('/api/session')).status).toBe(401);
  });

  it('answers the demo routes with 404 outside the demo, checks roles and bodies, and 502 when the simulators are gone', async () => {
    const off = await get('/api/demo/devices', ADMIN_TOKEN);
    expect(off.status).toBe(404);
    expect(((await off.json()) as { error: { code: string } }).error.code).toBe('GW_ERR_DEMO_OFF');
    const post = (token: string, body: unknown) =>
      get('/api/demo/devices/tank-1/faults', token, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('viewer-token-123', { fault: 'chlorine-loss' })).status).toBe(403);
    const bad = await post(ADMIN_TOKEN, { fault: 'Not A Fault!' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toContain('body.fault');
    // A control URL nothing listens on (port 9 on loopback is closed here).
    gw.demoControlUrl = 'http://127.0.0.1:9';
    try {
      const gone = await post(ADMIN_TOKEN, { fault: 'chlorine-loss' });
      expect(gone.status).toBe(502);
      expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('GW_ERR_DEMO_UNREACHABLE');
    } finally {
      gw.demoControlUrl = undefined;
    }
  });

  it('starts without a built dashboard: /api works, / is a plain 404', async () => {
    const other = await startGateway(
      testConfig({ influx: { enabled: false }, http: { dashboard: { dir: join(dir, 'missing') } } }),
    );
    try {
      const health = await fetch(`${other.httpUrl}/api/health`);
      expect(health.status).toBe(200);
      const root = await fetch(`${other.httpUrl}/`);
      expect(root.status).toBe(404);
      expect(((await root.json()) as { error: { code: string } }).error.code).toBe('GW_ERR_NOT_FOUND');
    } finally {
      await other.cleanup();
    }
  });

  it('rejects a bad dashboard setting with its key path', () => {
    const r = configSchema.safeParse({ http: { dashboard: { enabled: 'yes', colour: 'blue' } } });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('http.dashboard.enabled');
    expect(paths).toContain('http.dashboard');
  });
});
