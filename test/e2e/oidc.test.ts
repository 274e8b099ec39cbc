import { rmSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/src/gateway.js';
import { launchBrowser, newPage } from '../fixtures/browser.js';
import { buildDashboard } from '../fixtures/dashboard.js';
import { ADMIN_TOKEN, testConfig } from '../fixtures/gateway.js';
import { startOidcProvider, type OidcProviderFixture } from '../fixtures/oidc.js';
import { freePort } from '../fixtures/ports.js';

/**
 * Single sign-on in real Chromium against a real OpenID provider (`oidc-provider`, started here on a
 * loopback port): the person signs in at the provider, lands in the dashboard with the role mapped
 * from the `groups` claim, and the account is created bound to the provider's subject. A person
 * without a mapped group is refused with a message that says why.
 */
let web: Awaited<ReturnType<typeof buildDashboard>>;
let gw: Gateway;
let idp: OidcProviderFixture;
let browser: Browser;

beforeAll(async () => {
  web = await buildDashboard();
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  idp = await startOidcProvider({
    redirectUri: `${publicUrl}/api/session/oidc/callback`,
    accounts: {
      'wang.fang': { name: 'Wang Fang', groups: ['staff', 'gw-engineers'] },
      'no.group': { name: 'No Group' },
    },
  });
  const cfg = testConfig({
    influx: { enabled: false },
    http: { port, dashboard: { enabled: true, dir: web.dir } },
    accounts: {
      oidc: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: idp.clientSecret,
        publicUrl,
        scopes: 'openid profile groups',
        roleClaim: 'groups',
        usernameClaim: 'preferred_username',
        roles: { 'gw-engineers': 'engineer', 'gw-admins': 'admin' },
        label: 'Sign in with the company account',
      },
    },
  });
  gw = new Gateway(cfg, pino({ level: 'warn' }));
  await gw.start();
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  if (gw) rmSync(gw.cfg.dataDir, { recursive: true, force: true });
  await idp?.close();
  web?.cleanup();
});

async function signInAtProvider(login: string) {
  const { context, page, pageErrors } = await newPage(browser);
  await page.goto(`${gw.httpUrl}/`);
  await page.click('[data-testid=sso]');
  // The provider's own login page, then its consent page.
  await page.waitForSelector('input[name=login]', { timeout: 20_000 });
  expect(page.url().startsWith(idp.issuer)).toBe(true);
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');
  await page.waitForSelector('button[type=submit]:has-text("Continue")', { timeout: 20_000 });
  await page.click('button[type=submit]:has-text("Continue")');
  return { context, page, pageErrors };
}

describe('single sign-on with OpenID Connect in Chromium', () => {
  it('lands in the dashboard with the role of the mapped claim; the account is bound to the subject', async () => {
    const { context, page, pageErrors } = await signInAtProvider('wang.fang');
    await page.waitForSelector('[data-testid=who][data-role=engineer]', { timeout: 30_000 });
    // Back at the dashboard's address: no code or state left in it.
    expect(page.url()).toBe(`${gw.httpUrl}/`);
    expect(await page.textContent('[data-testid=who]')).toContain('wang.fang');
    const session = (await page.evaluate("fetch('/api/session').then((r) => r.json())")) as Record<
      string,
      unknown
    >;
    expect(session).toMatchObject({ name: 'wang.fang', role: 'engineer', via: 'oidc' });
    const cookie = (await context.cookies()).find((c) => c.name === 'fgw_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

    // The audit trail names the person and, for SSO, the provider's subject.
    const ticket = (await (
      await fetch(`${gw.httpUrl}/api/tickets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'Valve check', site: 'estate' }),
      })
    ).json()) as { id: string };
    const acted = (await page.evaluate(
      `fetch('/api/tickets/${ticket.id}/actions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'comment', note: 'on my way' }) }).then((r) => r.json())`,
    )) as { history: { actor: string; note: string | null; data?: { subject?: string } }[] };
    expect(acted.history.at(-1)).toMatchObject({
      actor: 'wang.fang',
      note: 'on my way',
      data: { subject: `${idp.issuer}#wang.fang` },
    });

    // An alarm acknowledged from the dashboard's session: the subject is in the alarm's history too.
    const [raised] = gw.alarms!.apply([
      {
        type: 'raise',
        severity: 'warning',
        value: true,
        ts: Date.now(),
        message: 'door open',
        deviceKey: 'estate/door-1',
        site: 'estate',
        device: 'door-1',
        kind: 'door',
        ruleId: 'door-open',
        ruleClass: 'routine',
        critical: false,
      },
    ]);
    const alarmId = raised!.alarm.id;
    const detail = (await page.evaluate(
      `fetch('/api/alarms/${alarmId}/ack', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then(() => fetch('/api/alarms/${alarmId}')).then((r) => r.json())`,
    )) as { history: { type: string; user: string | null; userSubject: string | null }[] };
    expect(detail.history.at(-1)).toMatchObject({
      type: 'ack',
      user: 'wang.fang',
      userSubject: `${idp.issuer}#wang.fang`,
    });

    const users = (await (
      await fetch(`${gw.httpUrl}/api/admin/users`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).json()) as { users: { username: string; role: string; createdBy: string }[] };
    expect(users.users).toContainEqual(
      expect.objectContaining({ username: 'wang.fang', role: 'engineer', createdBy: 'oidc' }),
    );
    expect(pageErrors).toEqual([]);
    await context.close();
  }, 120_000);

  it('refuses a person without the claim, with a clear message', async () => {
    const { context, page } = await signInAtProvider('no.group');
    // Polled from the test, not evaluated in the page: the gateway's CSP forbids eval there.
    await expect
      .poll(() => page.locator('body').innerText(), { timeout: 30_000 })
      .toContain('GW_ERR_SSO_NO_ROLE');
    const text = await page.textContent('body');
    expect(text).toContain('has no groups value that gives a role on this gateway');
    expect(text).toContain('gw-engineers');
    // A page, not raw JSON: its own title and a link back to the sign-in.
    expect(await page.getAttribute('a[href="/"]', 'href')).toBe('/');
    expect(await page.title()).toMatch(/Sign-in failed|登录失败/);
    expect((await context.cookies()).find((c) => c.name === 'fgw_session')).toBeUndefined();
    await context.close();
  }, 120_000);
  it('a refused callback: a page in the Accept-Language for a browser, JSON for an API client', async () => {
    const callback = `${gw.httpUrl}/api/session/oidc/callback?code=x&state=y`;
    const html = await fetch(callback, {
      headers: { accept: 'text/html,*/*;q=0.8', 'accept-language': 'zh-CN,zh;q=0.9' },
      redirect: 'manual',
    });
    expect(html.status).toBe(401);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    const text = await html.text();
    expect(text).toContain('单点登录未能让您登录');
    expect(text).toContain('<a href="/">返回登录页面</a>');
    expect(text).not.toMatch(/<script|<style|style=/i);
    const json = await fetch(callback, { headers: { accept: 'application/json' }, redirect: 'manual' });
    expect(json.status).toBe(401);
    expect(((await json.json()) as { error: { code: string } }).error.code).toBe('GW_ERR_SIGN_IN_FAILED');
  });
});
