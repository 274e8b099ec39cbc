import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/src/gateway.js';
import { ADMIN_TOKEN, testConfig } from '../fixtures/gateway.js';

/**
 * Signing in over HTTP on the running gateway: the first admin from GATEWAY_ADMIN_PASSWORD, the
 * cookie's attributes, twenty wrong passwords (refused, then locked for the configured time, the
 * right password working again afterwards, every attempt logged without the password and counted in
 * /metrics), the lock per address, a first password that must be changed, a disabled account's
 * session ending at once, an API token exchanged for a session that ends with the token, and the
 * demo's one-time link.
 */
const ADMIN_PASSWORD = 'first-admin-password-0123';
const LOCK_S = 3;
let gw: Gateway;
const logLines: string[] = [];

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
  setCookie: string | null;
  headers: Headers;
}

async function req(
  method: string,
  path: string,
  opts: { body?: unknown; cookie?: string; token?: string; origin?: boolean } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.origin !== false) headers.origin = gw.httpUrl!;
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers,
    redirect: 'manual',
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? JSON.parse(text) : {},
    setCookie: res.headers.get('set-cookie'),
    headers: res.headers,
  };
}

const cookieOf = (a: Answer) => /^(fgw_session=[^;]+)/.exec(a.setCookie ?? '')?.[1];
const signIn = (username: string, password: string) =>
  req('POST', '/api/session', { body: { username, password } });
const metric = async (result: string) => {
  const text = await (await fetch(`${gw.httpUrl}/metrics`)).text();
  const m = new RegExp(`^gateway_sign_in_attempts_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

beforeAll(async () => {
  const cfg = testConfig({
    influx: { enabled: false },
    logLevel: 'info',
    accounts: {
      signIn: {
        maxFailuresPerAccount: 5,
        maxFailuresPerAddress: 30,
        windowSeconds: 3600,
        lockSeconds: LOCK_S,
      },
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(
        ...chunk
          .toString()
          .split('\n')
          .filter((l) => l !== ''),
      );
      done();
    },
  });
  process.env.GATEWAY_ADMIN_PASSWORD = ADMIN_PASSWORD;
  try {
    gw = new Gateway(cfg, pino({ level: 'info' }, sink));
    await gw.start();
  } finally {
    delete process.env.GATEWAY_ADMIN_PASSWORD;
  }
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  rmSync(gw.cfg.dataDir, { recursive: true, force: true });
});

describe('signing in over HTTP', () => {
  let adminCookie: string;

  it('creates the first admin from GATEWAY_ADMIN_PASSWORD; the cookie is HttpOnly, SameSite=Strict, not Secure over HTTP', async () => {
    const a = await signIn('admin', ADMIN_PASSWORD);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({
      name: 'admin',
      role: 'admin',
      via: 'password',
      mustChangePassword: false,
    });
    expect(a.setCookie).toMatch(/^fgw_session=[A-Za-z0-9_-]{43}; /);
    expect(a.setCookie).toMatch(/; HttpOnly/);
    expect(a.setCookie).toMatch(/; SameSite=Strict/);
    expect(a.setCookie).toMatch(/; Path=\//);
    expect(a.setCookie).not.toMatch(/Secure/);
    // The id is in the cookie only, never in the answer's body.
    expect(JSON.stringify(a.body)).not.toContain(cookieOf(a)!.slice('fgw_session='.length));
    adminCookie = cookieOf(a)!;
    expect((await req('GET', '/api/session', { cookie: adminCookie })).body).toMatchObject({
      name: 'admin',
      role: 'admin',
    });
    expect(logLines.some((l) => l.includes(ADMIN_PASSWORD))).toBe(false);
  });

  it('twenty wrong passwords: refused, locked for the configured time, then the right password works; logged and counted', async () => {
    const made = await req('POST', '/api/admin/users', {
      cookie: adminCookie,
      body: {
        username: 'zhang.min',
        displayName: '张敏',
        role: 'engineer',
        language: 'zh',
        password: 'right-password-0123',
      },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const before = { wrong: await metric('wrong_password'), locked: await metric('locked') };
    const codes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const a = await signIn('zhang.min', `wrong-password-${i}`);
      expect(a.setCookie).toBeNull();
      codes.push(`${a.status} ${a.body.error!.code}`);
    }
    // Five refusals, then the account is locked: 429 with the time to wait.
    expect(codes.slice(0, 5)).toEqual(Array(5).fill('401 GW_ERR_SIGN_IN_FAILED'));
    expect(codes.slice(5)).toEqual(Array(15).fill('429 GW_ERR_SIGN_IN_LOCKED'));
    const locked = await signIn('zhang.min', 'right-password-0123');
    expect(locked.status).toBe(429);
    expect(locked.body.error!.message).toMatch(/try again in [1-3] s/);
    await new Promise((r) => setTimeout(r, LOCK_S * 1000 + 200));
    const ok = await signIn('zhang.min', 'right-password-0123');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ name: 'zhang.min', role: 'engineer', mustChangePassword: true });

    expect(await metric('wrong_password')).toBe(before.wrong + 5);
    expect(await metric('locked')).toBe(before.locked + 16);
    expect(await metric('ok')).toBeGreaterThanOrEqual(2);
    const refused = logLines.filter((l) => l.includes('zhang.min') && l.includes('sign-in refused'));
    expect(refused.length).toBe(21);
    expect(refused[0]).toContain('"address":"127.0.0.1"');
    for (const l of logLines) expect(l).not.toMatch(/wrong-password-|right-password-0123/);
  }, 60_000);

  it('a first password must be changed before anything else', async () => {
    const a = await signIn('zhang.min', 'right-password-0123');
    const cookie = cookieOf(a)!;
    const blocked = await req('GET', '/api/tickets', { cookie });
    expect(blocked.status).toBe(403);
    expect(blocked.body.error!.code).toBe('GW_ERR_PASSWORD_CHANGE_REQUIRED');
    const short = await req('POST', '/api/session/password', {
      cookie,
      body: { currentPassword: 'right-password-0123', newPassword: 'short' },
    });
    expect(short.body.error!.code).toBe('GW_ERR_PASSWORD_WEAK');
    const changed = await req('POST', '/api/session/password', {
      cookie,
      body: { currentPassword: 'right-password-0123', newPassword: 'her-own-password-89' },
    });
    expect(changed.status).toBe(204);
    expect((await req('GET', '/api/tickets', { cookie })).status).toBe(200);
    // A change with the cookie but without an Origin or Sec-Fetch-Site (not a browser's own page): refused.
    const bare = await req('POST', '/api/tickets', {
      cookie,
      origin: false,
      body: { title: 'x', site: 's' },
    });
    expect(bare.status).toBe(403);
    expect(bare.body.error!.code).toBe('GW_ERR_CROSS_SITE');
    const made = await req('POST', '/api/tickets', { cookie, body: { title: 'by her', site: 's' } });
    expect(made.status).toBe(201);
    expect(made.body.requester).toBe('zhang.min');
  });

  it('disabling an account ends its sessions at once; signing out ends the session on the server', async () => {
    const a = await signIn('zhang.min', 'her-own-password-89');
    const cookie = cookieOf(a)!;
    expect((await req('GET', '/api/session', { cookie })).status).toBe(200);
    const off = await req('POST', '/api/admin/users/zhang.min/disable', { token: ADMIN_TOKEN });
    expect(off.body).toMatchObject({ disabled: true, disabledBy: 'admin' });
    expect((await req('GET', '/api/session', { cookie })).status).toBe(401);
    expect((await signIn('zhang.min', 'her-own-password-89')).status).toBe(401);
    await req('POST', '/api/admin/users/zhang.min/enable', { token: ADMIN_TOKEN });
    const b = cookieOf(await signIn('zhang.min', 'her-own-password-89'))!;
    const out = await req('DELETE', '/api/session', { cookie: b });
    expect(out.status).toBe(204);
    expect(out.setCookie).toMatch(/^fgw_session=;/);
    expect((await req('GET', '/api/session', { cookie: b })).status).toBe(401);
    // The admin lists accounts, never a password or its hash.
    const list = await req('GET', '/api/admin/users', { cookie: adminCookie });
    expect(JSON.stringify(list.body)).not.toMatch(/scrypt|password-/);
    expect((list.body.users as { username: string }[]).map((u) => u.username)).toEqual([
      'admin',
      'zhang.min',
    ]);
  });

  it('an API token exchanged for a session: the session ends with the token', async () => {
    const made = await req('POST', '/api/admin/tokens', {
      token: ADMIN_TOKEN,
      body: { name: 'desk', role: 'viewer' },
    });
    const a = await req('POST', '/api/session', { body: { token: made.body.token } });
    expect(a.body).toMatchObject({ name: 'desk', role: 'viewer', via: 'token' });
    const cookie = cookieOf(a)!;
    expect((await req('GET', '/api/devices', { cookie })).status).toBe(200);
    await req('POST', '/api/admin/tokens/desk/revoke', { token: ADMIN_TOKEN });
    expect((await req('GET', '/api/devices', { cookie })).status).toBe(401);
  });

  it("the demo's one-time link: exchanged for a cookie and a redirect to /, once", async () => {
    const code = gw.accounts!.issueLink('admin', 60_000);
    const a = await req('GET', `/api/session/link?code=${code}`);
    expect(a.status).toBe(302);
    expect(a.headers.get('location')).toBe('/');
    const cookie = cookieOf(a)!;
    expect((await req('GET', '/api/session', { cookie })).body).toMatchObject({ name: 'admin', via: 'link' });
    const again = await req('GET', `/api/session/link?code=${code}`);
    expect(again.status).toBe(401);
    expect(again.body.error!.code).toBe('GW_ERR_SIGN_IN_FAILED');
  });

  it('a used link followed by a browser: a page in its language with a link back to the sign-in; JSON for API clients', async () => {
    const code = gw.accounts!.issueLink('admin', 60_000);
    expect((await req('GET', `/api/session/link?code=${code}`)).status).toBe(302);
    const page = async (accept: string, lang: string) => {
      const res = await fetch(`${gw.httpUrl}/api/session/link?code=${code}`, {
        headers: { accept, 'accept-language': lang },
        redirect: 'manual',
      });
      return {
        status: res.status,
        type: res.headers.get('content-type'),
        csp: res.headers.get('content-security-policy'),
        text: await res.text(),
      };
    };
    const browserAccept = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
    const zh = await page(browserAccept, 'zh-CN,zh;q=0.9,en;q=0.8');
    expect(zh.status).toBe(401);
    expect(zh.type).toMatch(/^text\/html/);
    expect(zh.text).toContain('<html lang="zh-CN">');
    expect(zh.text).toContain('此登录链接已被使用或已过期');
    expect(zh.text).toContain('<a href="/">返回登录页面</a>');
    // Nothing the Content Security Policy would refuse: no script, no style, no inline handler.
    expect(zh.text).not.toMatch(/<script|<style|style=|\son[a-z]+=/i);
    expect(zh.csp).toContain("default-src 'self'");
    const en = await page(browserAccept, 'de-DE,en;q=0.5');
    expect(en.text).toContain('<html lang="en">');
    expect(en.text).toContain('This sign-in link was used already or has expired');
    expect(en.text).toContain('<a href="/">Back to the sign-in</a>');
    // An API client (no text/html, or JSON preferred) still gets the catalogue's JSON.
    for (const accept of ['*/*', 'application/json', 'application/json, text/html;q=0.5']) {
      const api = await page(accept, 'zh-CN');
      expect(api.status).toBe(401);
      expect(api.type).toMatch(/^application\/json/);
      expect(JSON.parse(api.text).error.code).toBe('GW_ERR_SIGN_IN_FAILED');
    }
  });

  it('failures from one address lock the address, whatever the usernames', async () => {
    // The address has a few failures from the tests above already (same window, an hour long so that a
    // slow machine stays within it): the lock comes at 30 in all.
    const codes: number[] = [];
    for (let i = 0; i < 32; i++) codes.push((await signIn(`nobody-${i}`, 'guess-guess-guess')).status);
    const first = codes.indexOf(429);
    expect(first).toBeGreaterThanOrEqual(20);
    expect(first).toBeLessThanOrEqual(30);
    expect(codes.slice(0, first)).toEqual(Array(first).fill(401));
    expect(codes.slice(first)).toEqual(Array(32 - first).fill(429));
    // A real account from the same address is refused too, until the lock ends.
    expect((await signIn('admin', ADMIN_PASSWORD)).status).toBe(429);
    expect(await metric('unknown_user')).toBeGreaterThanOrEqual(first);
    await new Promise((r) => setTimeout(r, LOCK_S * 1000 + 200));
    expect((await signIn('admin', ADMIN_PASSWORD)).status).toBe(200);
  }, 60_000);
});
