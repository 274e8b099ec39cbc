import { rmSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, signIn } from '../fixtures/browser.js';
import { ADMIN_TOKEN, buildDashboard, startDemoGateway, type DemoGateway } from '../fixtures/dashboard.js';
import { waitFor } from '../fixtures/ports.js';
import { selfSignedCert } from '../fixtures/tls.js';
import type { TlsConfig } from '../../gateway/src/config/schema.js';

/**
 * The dashboard in real Chromium over HTTPS (`http.tls` with a certificate made by openssl for the
 * test) with the security headers on: it works, its answers carry HSTS and a Content Security
 * Policy without 'unsafe-inline', and the browser reports no CSP violation on any view of the
 * dashboard's router (overview, device, alarms with the shelve dialog, work orders with the new
 * ticket form, calendar and a ticket's detail, report, windows) nor on the API reference page.
 * Violations are taken from `securitypolicyviolation` events and from the console, where
 * Chromium also reports them.
 */
const TANK = 'demo/tank-1';
let web: Awaited<ReturnType<typeof buildDashboard>>;
let tls: ReturnType<typeof selfSignedCert>;
let demo: DemoGateway;
let browser: Browser;

beforeAll(async () => {
  web = await buildDashboard();
  tls = selfSignedCert();
  demo = await startDemoGateway({
    dashboardDir: web.dir,
    intervalMs: 1000,
    // The schema fills in hstsMaxAgeSec, as it does for a config file.
    config: { http: { tls: { cert: tls.cert, key: tls.key } as TlsConfig } },
  });
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
  web?.cleanup();
  if (tls) rmSync(tls.dir, { recursive: true, force: true });
});

interface Watched {
  context: BrowserContext;
  page: Page;
  /** CSP violations (event and console), page errors and other console errors, as they come. */
  violations(): Promise<string[]>;
  errors: string[];
}

/** A context that accepts the test certificate, with CSP violations and errors collected. */
async function watchedPage(): Promise<Watched> {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    locale: 'en-US',
    viewport: { width: 1280, height: 800 },
  });
  // Injected by the browser itself before any page script, so the CSP does not apply to it.
  await context.addInitScript({
    content: `window.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(
        e.effectiveDirective + ' blocked ' + (e.blockedURI || '(inline)') + ' at ' + e.sourceFile + ':' + e.lineNumber));`,
  });
  const page = await context.newPage();
  const consoleCsp: string[] = [];
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    if (/Content Security Policy|Content-Security-Policy/i.test(m.text())) consoleCsp.push(m.text());
    // A resource answered with an error status is not this test's concern (no InfluxDB: 503).
    else if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return {
    context,
    page,
    errors,
    async violations() {
      const fromEvents = (await page.evaluate('window.__csp')) as string[];
      return [...fromEvents, ...consoleCsp];
    },
  };
}

describe('the dashboard over HTTPS with its Content Security Policy', () => {
  it('works, sends HSTS and a CSP, and the browser reports no CSP violation on any view', async () => {
    expect(demo.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const w = await watchedPage();
    const { page } = w;
    const seen: Record<string, string[]> = {};
    const check = async (view: string) => {
      // Let charts, lists and the live stream render what they render.
      await page.waitForTimeout(1000);
      seen[view] = await w.violations();
    };
    try {
      const first = await page.goto(`${demo.url}/#/overview`);
      const h = first!.headers();
      expect(h['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      const csp = h['content-security-policy'] ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(h['x-content-type-options']).toBe('nosniff');
      await page.waitForSelector('form[data-testid=signin]', { timeout: 20_000 });
      await check('sign-in');

      // Admin: every panel (the Demo panel, report delivery) is shown.
      await signIn(page, demo.url, ADMIN_TOKEN);
      await page.waitForSelector('[data-testid=who]', { state: 'attached', timeout: 20_000 });
      await page.waitForSelector(`.tile[data-device="${TANK}"]`, { timeout: 30_000 });
      // The live stream (EventSource, connect-src) connects.
      await page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 30_000 });
      await page.waitForSelector('[data-testid=demo-panel]', { timeout: 20_000 });
      // A fault through the Demo panel, so the alarm, ticket and device views have rows to draw.
      await page.selectOption('[data-testid=demo-panel] select[aria-label=device]', 'tank-1');
      await page.selectOption('[data-testid=demo-panel] select[aria-label=fault]', 'chlorine-loss');
      await page.click('[data-testid=demo-panel] button:has-text("Trigger fault")');
      await page.waitForSelector(`.tile[data-device="${TANK}"][data-state=critical]`, { timeout: 30_000 });
      await check('overview');

      await page.click('[data-nav=alarms]');
      const row = page.locator('[data-testid=active-alarms] .row.alarm[data-rule="chlorine.free.low"]');
      await row.waitFor({ timeout: 30_000 });
      await check('alarms');
      await row.locator('button[data-action=shelve]').click();
      await page.locator('[data-testid=shelve-dialog]').waitFor({ timeout: 10_000 });
      await check('alarms: shelve dialog');
      await page.keyboard.press('Escape');

      await page.goto(`${demo.url}/#/device/${encodeURIComponent(TANK)}`);
      await page.waitForSelector('.chart[data-metric=free_chlorine_mgl][data-drawn*="lowLow"]', {
        timeout: 20_000,
      });
      // The cursor and legend uPlot moves under the pointer.
      await page.hover('.chart[data-metric=free_chlorine_mgl]');
      await check('device');

      await page.click('[data-nav=workorders]');
      const card = page.locator('.card.ticket', { hasText: TANK }).first();
      await card.waitFor({ timeout: 30_000 });
      await page.locator('[data-testid=calendar]').waitFor({ timeout: 20_000 });
      await check('workorders with the calendar');
      await page.click('[data-action=new-ticket]');
      await page.locator('[data-testid=new-ticket]').waitFor({ timeout: 10_000 });
      await check('workorders: new ticket form');
      const id = await card.getAttribute('data-ticket');
      await page.goto(`${demo.url}/#/workorders/${id}`);
      await page.locator('[data-testid=ticket-detail]').waitFor({ timeout: 20_000 });
      await check('ticket detail');

      await page.click('[data-nav=report]');
      await page
        .locator('[data-testid=report], [data-testid=report-na]')
        .first()
        .waitFor({ timeout: 20_000 });
      await page.locator('[data-testid=report-delivery]').waitFor({ timeout: 20_000 });
      await check('report');

      await page.click('[data-nav=windows]');
      await page.locator('[data-testid=windows]').waitFor({ timeout: 20_000 });
      await check('windows');

      // The API reference page (swagger-ui) under the same policy.
      await page.goto(`${demo.url}/api/docs/`);
      const op = page.locator('.opblock', { hasText: '/api/tickets/{id}/actions' }).first();
      await op.waitFor({ timeout: 20_000 });
      await op.locator('.opblock-summary').click();
      await page.getByText('Role: engineer', { exact: false }).first().waitFor({ timeout: 10_000 });
      await check('api docs');

      expect(Object.keys(seen)).toHaveLength(11);
      for (const [view, v] of Object.entries(seen)) expect(v, view).toEqual([]);
      expect(w.errors).toEqual([]);
    } finally {
      await w.context.close();
    }
  }, 180_000);

  it('a policy the dashboard does not satisfy is reported by this test (the check can fail)', async () => {
    // The same page with a stricter policy put in by the browser: style-src 'none' refuses the
    // dashboard's own stylesheet, which the collector must see.
    const w = await watchedPage();
    try {
      await w.page.route(`${demo.url}/`, async (route) => {
        const res = await route.fetch();
        const headers = {
          ...res.headers(),
          'content-security-policy': "default-src 'self'; style-src 'none'",
        };
        await route.fulfill({ response: res, headers });
      });
      await w.page.goto(`${demo.url}/#/overview`);
      await w.page.waitForSelector('form[data-testid=signin]', { timeout: 20_000 });
      await waitFor(async () => (await w.violations()).length > 0, 10_000, 'a reported violation');
      expect((await w.violations()).join('\n')).toContain('style-src');
    } finally {
      await w.context.close();
    }
  }, 60_000);
});
