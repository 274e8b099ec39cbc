import { createServer, type Server } from 'node:http';
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { Browser } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/src/gateway.js';
import { launchBrowser, newPage, signInWithPassword } from '../fixtures/browser.js';
import { buildDashboard } from '../fixtures/dashboard.js';
import { ADMIN_TOKEN, testConfig } from '../fixtures/gateway.js';
import { freePort } from '../fixtures/ports.js';

/**
 * Personal sign-in in real Chromium against a running gateway whose every log line (pino, debug
 * level) is captured: a new account signs in with the password an admin gave it, must choose its
 * own, acts on a work order (the audit trail names the person), signs out (the session ends on the
 * server). The session id is in no request URL, no log line and no localStorage key or value. Then a
 * cross-site form post carrying the session cookie is refused, while the same action from the
 * dashboard succeeds.
 */
let web: Awaited<ReturnType<typeof buildDashboard>>;
let gw: Gateway;
let browser: Browser;
let attacker: Server;
let attackerPort: number;
const logLines: string[] = [];
const USER = 'li.wei';
const FIRST = 'given-by-admin-0123';
const OWN = 'chosen-by-li-wei-4567';

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${gw.httpUrl}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

interface Ticket {
  id: string;
  history: { action: string; actor: string; note?: string | null }[];
}

beforeAll(async () => {
  web = await buildDashboard();
  const cfg = testConfig({
    influx: { enabled: false },
    logLevel: 'debug',
    http: { dashboard: { enabled: true, dir: web.dir } },
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
  gw = new Gateway(cfg, pino({ level: 'debug' }, sink));
  await gw.start();
  browser = await launchBrowser();
  // Another origin on the same host (another port): what a malicious page elsewhere would be.
  attackerPort = await freePort();
  attacker = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const target = u.searchParams.get('target') ?? '';
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><form method="POST" action="${target}" enctype="text/plain">
      <input name='{"action":"comment","note":"forged","x":"' value='"}'></form>
      <script>document.forms[0].submit()</script>`);
  });
  await new Promise<void>((r) => attacker.listen(attackerPort, '127.0.0.1', r));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => attacker?.close(r));
  await gw?.stop();
  rmSync(gw.cfg.dataDir, { recursive: true, force: true });
  web?.cleanup();
});

describe('signing in with a personal account in Chromium', () => {
  let ticketId: string;
  let sessionId: string;

  it('signs in with a password, changes it, acts on a ticket, signs out: the session id is in no URL, log line or localStorage', async () => {
    expect(
      (
        await api('/api/admin/users', {
          method: 'POST',
          body: JSON.stringify({ username: USER, displayName: '李伟', role: 'engineer', password: FIRST }),
        })
      ).status,
    ).toBe(201);
    const made = await api('/api/tickets', {
      method: 'POST',
      body: JSON.stringify({ title: 'Pump 2 noisy', site: 'estate' }),
    });
    ticketId = (made.body as Ticket).id;

    const { context, page, pageErrors } = await newPage(browser);
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));

    await signInWithPassword(page, gw.httpUrl!, USER, FIRST);
    // The admin's password must be replaced before anything else.
    await page.waitForSelector('form[data-testid=change-password]', { timeout: 20_000 });
    await page.fill('input[name=current]', FIRST);
    await page.fill('input[name=new]', OWN);
    await page.fill('input[name=again]', OWN);
    await page.click('form[data-testid=change-password] button[type=submit]');
    await page.waitForSelector('[data-testid=who][data-role=engineer]', { timeout: 20_000 });
    await page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 20_000 });

    const cookie = (await context.cookies()).find((c) => c.name === 'fgw_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', secure: false, path: '/' });
    sessionId = cookie!.value;
    expect(sessionId).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // No script can read it.
    expect(await page.evaluate('document.cookie')).not.toContain(sessionId);

    // Act on the ticket from its page.
    await page.goto(`${gw.httpUrl}/#/workorders/${ticketId}`);
    await page.waitForSelector('[data-testid=ticket-detail] button[data-action=comment]', {
      timeout: 20_000,
    });
    await page.fill('[data-testid=ticket-detail] [name=note]', 'bearing checked');
    await page.click('[data-testid=ticket-detail] button[data-action=comment]');
    const acted = async () =>
      ((await api(`/api/tickets/${ticketId}`)).body as Ticket).history.find(
        (h) => h.note === 'bearing checked',
      );
    await expect.poll(acted, { timeout: 20_000 }).toBeDefined();
    // The audit trail names the person who acted.
    expect((await acted())!.actor).toBe(USER);

    const storage = (await page.evaluate(
      'Object.entries(localStorage).map(([k, v]) => `${k}=${v}`)',
    )) as string[];

    await page.click('[data-testid=signout]');
    await page.waitForSelector('form[data-testid=signin]', { timeout: 20_000 });
    // Ended on the server: the old cookie opens nothing any more.
    const after = await fetch(`${gw.httpUrl}/api/session`, {
      headers: { cookie: `fgw_session=${sessionId}` },
    });
    expect(after.status).toBe(401);
    expect((await context.cookies()).find((c) => c.name === 'fgw_session')).toBeUndefined();

    // The three places a session id or password must never be.
    expect(urls.length).toBeGreaterThan(5);
    expect(urls.filter((u) => u.includes(sessionId) || /token=|session=|code=/.test(u))).toEqual([]);
    expect(urls.some((u) => u.endsWith('/api/live'))).toBe(true);
    expect(logLines.length).toBeGreaterThan(5);
    expect(logLines.some((l) => l.includes('"signed in"') && l.includes(USER))).toBe(true);
    for (const secret of [sessionId, FIRST, OWN])
      expect(
        logLines.filter((l) => l.includes(secret)),
        secret,
      ).toEqual([]);
    expect(storage.filter((e) => e.includes(sessionId) || /token|session/i.test(e))).toEqual([]);
    expect(pageErrors).toEqual([]);
    await context.close();
  }, 120_000);

  it('refuses a cross-site form post that carries the session cookie; the dashboard does the same action', async () => {
    const { context, page } = await newPage(browser);
    await signInWithPassword(page, gw.httpUrl!, USER, OWN);
    await page.waitForSelector('[data-testid=who][data-role=engineer]', { timeout: 20_000 });
    const target = `${gw.httpUrl}/api/tickets/${ticketId}/actions`;

    // Same site (127.0.0.1), other origin (port): SameSite lets the cookie through, the origin check does not.
    const answers: { status: number; body: string; cookie: boolean }[] = [];
    page.on('response', async (r) => {
      if (r.url() === target && r.request().method() === 'POST')
        answers.push({
          status: r.status(),
          body: await r.text().catch(() => ''),
          // The page may close before the listener runs: a missing header list reads as no cookie.
          cookie:
            (
              await r
                .request()
                .allHeaders()
                .catch(() => ({}) as Record<string, string>)
            ).cookie?.includes('fgw_session=') ?? false,
        });
    });
    await page.goto(`http://127.0.0.1:${attackerPort}/?target=${encodeURIComponent(target)}`);
    await expect.poll(() => answers.length, { timeout: 20_000 }).toBe(1);
    expect(answers[0]!.cookie).toBe(true);
    expect(answers[0]!.status).toBe(403);
    expect(answers[0]!.body).toContain('GW_ERR_CROSS_SITE');

    // Another site altogether (localhost vs 127.0.0.1): SameSite=Strict keeps the cookie at home.
    await page.goto(`http://localhost:${attackerPort}/?target=${encodeURIComponent(target)}`);
    await expect.poll(() => answers.length, { timeout: 20_000 }).toBe(2);
    expect(answers[1]!.cookie).toBe(false);
    expect(answers[1]!.status).toBe(401);

    const history = ((await api(`/api/tickets/${ticketId}`)).body as Ticket).history;
    expect(history.filter((h) => h.note?.includes('forged'))).toEqual([]);

    // The same action from the dashboard, same browser, same cookie: done.
    await page.goto(`${gw.httpUrl}/#/workorders/${ticketId}`);
    await page.waitForSelector('[data-testid=ticket-detail] button[data-action=comment]', {
      timeout: 20_000,
    });
    await page.fill('[data-testid=ticket-detail] [name=note]', 'from the dashboard');
    await page.click('[data-testid=ticket-detail] button[data-action=comment]');
    await expect
      .poll(
        async () =>
          ((await api(`/api/tickets/${ticketId}`)).body as Ticket).history.find(
            (h) => h.note === 'from the dashboard',
          )?.actor,
        { timeout: 20_000 },
      )
      .toBe(USER);
    await context.close();
  }, 120_000);

  it('opens the dashboard from a one-time sign-in link (as the demo prints), and the code leaves the address', async () => {
    const code = gw.accounts!.issueLink(USER, 60_000);
    const { context, page } = await newPage(browser);
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(`${gw.httpUrl}/api/session/link?code=${code}`);
    await page.waitForSelector('[data-testid=who][data-role=engineer]', { timeout: 20_000 });
    expect(page.url()).not.toContain(code);
    // The one request that carried the code is the link itself; nothing after it.
    expect(urls.filter((u) => u.includes(code))).toHaveLength(1);
    expect(await page.evaluate('history.length')).toBe(2);
    await context.close();
  }, 60_000);
});
