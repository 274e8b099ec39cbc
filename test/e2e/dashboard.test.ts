import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage, signIn } from '../fixtures/browser.js';
import { buildDashboard, startDemoGateway, type DemoGateway } from '../fixtures/dashboard.js';

/**
 * The dashboard in real Chromium against a running gateway with the simulators (what `npm start`
 * shows): sign-in, a triggered chlorine fault seen as a critical tile and alarm, the alarm
 * acknowledged, its work order walked to closed by two people, roles, language, and the banner
 * when the gateway goes away.
 */
const TANK = 'demo/tank-1';
let web: Awaited<ReturnType<typeof buildDashboard>>;
let demo: DemoGateway;
let browser: Browser;

async function api<T>(path: string, token = 'demo-engineer'): Promise<T> {
  const res = await fetch(`${demo.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

async function signedIn(
  token: string,
  locale?: string,
): Promise<{ page: Page; errors: string[]; close(): Promise<void> }> {
  const { context, page, pageErrors } = await newPage(browser, { locale });
  await signIn(page, demo.url, token);
  await page.waitForSelector('[data-testid=who]', { timeout: 20_000 });
  return { page, errors: pageErrors, close: () => context.close() };
}

beforeAll(async () => {
  web = await buildDashboard();
  demo = await startDemoGateway({ dashboardDir: web.dir, intervalMs: 1000 });
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
  web?.cleanup();
});

describe('dashboard in Chromium', () => {
  it('refuses an unknown token and shows why', async () => {
    const { context, page } = await newPage(browser);
    await signIn(page, demo.url, 'not-a-token');
    const err = page.locator('[data-testid=signin-error]');
    await err.waitFor({ timeout: 20_000 });
    expect(await err.textContent()).toContain('Token refused');
    expect(await page.locator('[data-testid=who]').count()).toBe(0);
    await context.close();
  });

  it('shows a triggered chlorine fault as a critical tile and alarm, acknowledges it, and walks its work order to closed', async () => {
    const eng = await signedIn('demo-engineer');
    const { page } = eng;
    expect(await page.getAttribute('[data-testid=who]', 'data-role')).toBe('engineer');
    // Live data: tiles for the demo devices, the stream connected, tank-1 normal to begin with.
    await page.waitForSelector(`.tile[data-device="${TANK}"]`, { timeout: 30_000 });
    await page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 30_000 });
    expect(await page.getAttribute(`.tile[data-device="${TANK}"]`, 'data-state')).toBe('normal');

    // The Demo panel triggers the fault through the gateway.
    await page.selectOption('[data-testid=demo-panel] select[aria-label=device]', 'tank-1');
    await page.selectOption('[data-testid=demo-panel] select[aria-label=fault]', 'chlorine-loss');
    await page.click('[data-testid=demo-panel] button:has-text("Trigger fault")');
    await page.waitForSelector(`.tile[data-device="${TANK}"][data-state=critical]`, { timeout: 30_000 });
    // Abnormal first: the critical tile leads the grid.
    expect(await page.getAttribute('.tile >> nth=0', 'data-device')).toBe(TANK);

    // The alarm, critical, acknowledged from the Alarms view.
    await page.click('[data-nav=alarms]');
    const row = page.locator('[data-testid=active-alarms] .row.alarm[data-rule="chlorine.free.low"]');
    await row.waitFor({ timeout: 30_000 });
    expect(await row.locator('.pill').first().textContent()).toBe('Critical');
    await row.locator('button[data-action=ack]').click();
    await page.waitForSelector(
      '[data-testid=active-alarms] .row.alarm[data-rule="chlorine.free.low"][data-state=active-acknowledged]',
      { timeout: 20_000 },
    );
    const alarms = await api<{
      alarms: Array<{ rule: string; device: string; acknowledgedBy: string | null }>;
    }>('/api/alarms?state=active');
    const a = alarms.alarms.find((x) => x.rule === 'chlorine.free.low' && x.device === 'tank-1');
    expect(a?.acknowledgedBy).toBe('demo-engineer');

    // Its work order: on the board, then acknowledge → assign → start → resolve.
    await page.click('[data-nav=workorders]');
    const card = page.locator('.card.ticket', { hasText: 'demo/tank-1' }).first();
    await card.waitFor({ timeout: 30_000 });
    const ticketId = await card.getAttribute('data-ticket');
    expect(ticketId).toMatch(/^WO-/);
    expect(await card.locator('.sla').count()).toBe(1);
    await card.click();
    const detail = page.locator('[data-testid=ticket-detail]');
    const step = async (action: string, status: string) => {
      await detail.locator(`button[data-action=${action}]`).click();
      await page.waitForSelector(`[data-testid=ticket-detail][data-status=${status}]`, { timeout: 20_000 });
    };
    await step('acknowledge', 'acknowledged');
    await step('assign', 'assigned');
    await step('start', 'in_progress');
    await page.fill('[data-testid=ticket-detail] input[name=note]', 'dosing line flushed, residual back');
    await step('resolve', 'resolved');
    // The one who resolved cannot verify: the gateway says so and the dashboard shows it.
    await detail.locator('button[data-action=verify]').click();
    await page.locator('[data-testid=ticket-error]').waitFor({ timeout: 20_000 });
    expect(await page.textContent('[data-testid=ticket-error]')).toContain('cannot verify');
    expect(await detail.locator('button[data-action=close]').count()).toBe(0);
    await eng.close();

    // A second person verifies and closes.
    const sup = await signedIn('demo-supervisor');
    await sup.page.goto(`${demo.url}/#/workorders/${ticketId}`);
    const d2 = sup.page.locator('[data-testid=ticket-detail]');
    await d2.locator('button[data-action=verify]').click();
    await d2.locator('button[data-action=close]').waitFor({ timeout: 20_000 });
    await d2.locator('button[data-action=close]').click();
    await sup.page.waitForSelector('[data-testid=ticket-detail][data-status=closed]', { timeout: 20_000 });
    const t = await api<{
      status: string;
      verifiedBy: string;
      history: Array<{ action: string; actor: string }>;
    }>(`/api/tickets/${ticketId}`);
    expect(t.status).toBe('closed');
    expect(t.verifiedBy).toBe('demo-supervisor');
    expect(t.history.map((h) => h.action)).toEqual(
      expect.arrayContaining(['acknowledge', 'assign', 'start', 'resolve', 'verify', 'close']),
    );
    expect(eng.errors).toEqual([]);
    expect(sup.errors).toEqual([]);
    await sup.close();
  });

  it('hides actions from a viewer', async () => {
    const v = await signedIn('demo-viewer');
    const { page } = v;
    expect(await page.getAttribute('[data-testid=who]', 'data-role')).toBe('viewer');
    await page.waitForSelector(`.tile[data-device="${TANK}"]`, { timeout: 30_000 });
    expect(await page.locator('[data-testid=demo-panel]').count()).toBe(0);
    await page.click('[data-nav=alarms]');
    await page.locator('[data-testid=active-alarms] .row.alarm').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('.row.alarm button').count()).toBe(0);
    const tickets = await api<{ tickets: Array<{ id: string }> }>('/api/tickets', 'demo-viewer');
    expect(tickets.tickets.length).toBeGreaterThan(0);
    await page.goto(`${demo.url}/#/workorders/${tickets.tickets[0]!.id}`);
    await page.locator('[data-testid=ticket-detail]').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-testid=ticket-detail] button').count()).toBe(0);
    // The device view: a chart per metric; without InfluxDB no history, said plainly.
    await page.goto(`${demo.url}/#/device/${encodeURIComponent(TANK)}`);
    await page.locator('.chart[data-metric=free_chlorine_mgl] canvas').first().waitFor({ timeout: 20_000 });
    await page.locator('.notice', { hasText: 'History not available' }).waitFor({ timeout: 20_000 });
    expect(await page.textContent('[data-testid=device-state]')).toBe('Critical');
    // The monthly report's route is not on this gateway: the view says so instead of breaking.
    await page.click('[data-nav=report]');
    await page.locator('[data-testid=report-na], [data-testid=report]').first().waitFor({ timeout: 20_000 });
    expect(v.errors).toEqual([]);
    await v.close();
  });

  it('speaks Chinese for a Chinese browser and switches language', async () => {
    const zh = await signedIn('demo-viewer', 'zh-CN');
    const { page } = zh;
    expect(await page.textContent('[data-nav=overview]')).toBe('总览');
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    await page.click('[data-testid=lang]');
    await page.waitForSelector('[data-nav=overview]:text-is("Overview")', { timeout: 20_000 });
    // The choice is remembered over a reload.
    await page.reload();
    await page.waitForSelector('[data-testid=who]', { timeout: 20_000 });
    expect(await page.textContent('[data-nav=overview]')).toBe('Overview');
    await page.click('[data-testid=lang]');
    await page.waitForSelector('[data-nav=alarms]:text-is("告警")', { timeout: 20_000 });
    await zh.close();
  });

  it('shows plainly that it is disconnected when the gateway stops', async () => {
    const v = await signedIn('demo-viewer');
    await v.page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 30_000 });
    await demo.stop();
    await v.page.waitForSelector('[data-testid=conn][data-conn=reconnecting]', { timeout: 30_000 });
    expect(await v.page.textContent('[data-testid=conn]')).toContain('reconnecting');
    await v.close();
  });
});
