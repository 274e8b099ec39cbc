import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage, signIn } from '../fixtures/browser.js';
import { buildDashboard, startDemoGateway, type DemoGateway } from '../fixtures/dashboard.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * The dashboard in real Chromium against a running gateway with the simulators (what `npm start`
 * shows): sign-in, a triggered chlorine fault seen as a critical tile and alarm, the alarm
 * acknowledged, its work order walked to closed by two people; roles; the device view's
 * thresholds; work orders raised by hand, held and completed with their form; shelving; language;
 * the phone layout; and the banner when the gateway goes away and comes back. Each test sets up
 * the alarms it needs itself.
 */
const TANK = 'demo/tank-1';
const DAY = 86_400_000;
let web: Awaited<ReturnType<typeof buildDashboard>>;
let demo: DemoGateway;
let browser: Browser;

interface Alarm {
  id: string;
  rule: string;
  device: string;
  state: string;
  acknowledgedBy: string | null;
}
interface Ticket {
  id: string;
  title: string;
  status: string;
  device: string | null;
  rule: string | null;
  onHold: boolean;
  verifiedBy: string | null;
  requester: string;
  maintenance: { schedule: string; form: string; record: Record<string, unknown> | null } | null;
  history: Array<{ action: string; actor: string }>;
}

async function api<T>(path: string, token = 'demo-engineer', init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${demo.url}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });
  expect(res.status, `${init.method ?? 'GET'} ${path}`).toBeLessThan(300);
  return (await res.json()) as T;
}

/** A fault on a demo device until its alarm is active (raised through the simulators, not faked). */
async function ensureAlarm(device: string, fault: string, rule: string): Promise<Alarm> {
  const active = async () =>
    (await api<{ alarms: Alarm[] }>(`/api/alarms?state=active&site=demo&device=${device}`)).alarms.find(
      (a) => a.rule === rule,
    );
  if (!(await active())) {
    await api(`/api/demo/devices/${device}/faults`, 'demo-engineer', {
      method: 'POST',
      body: JSON.stringify({ fault }),
    });
    await waitFor(async () => (await active()) !== undefined, 30_000, `${rule} on ${device}`);
  }
  return (await active())!;
}

/** The demo, pinging every second so that a silent stream is noticed within seconds. */
const startDemo = (port?: number, dataDir?: string) =>
  startDemoGateway({
    dashboardDir: web.dir,
    intervalMs: 1000,
    port,
    config: { http: { live: { keepAliveMs: 1000 } }, ...(dataDir ? { dataDir } : {}) },
  });

async function signedIn(
  token: string,
  opts: { locale?: string; width?: number; height?: number } = {},
): Promise<{ page: Page; errors: string[]; close(): Promise<void> }> {
  const { context, page, pageErrors } = await newPage(browser, opts);
  await signIn(page, demo.url, token);
  // Attached, not visible: a phone's header leaves out who is signed in.
  await page.waitForSelector('[data-testid=who]', { state: 'attached', timeout: 20_000 });
  return { page, errors: pageErrors, close: () => context.close() };
}

beforeAll(async () => {
  web = await buildDashboard();
  demo = await startDemo();
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

    // The alarm, critical, said for people, acknowledged from the Alarms view.
    await page.click('[data-nav=alarms]');
    const row = page.locator('[data-testid=active-alarms] .row.alarm[data-rule="chlorine.free.low"]');
    await row.waitFor({ timeout: 30_000 });
    await page.waitForSelector(
      '[data-testid=active-alarms] .row.alarm[data-rule="chlorine.free.low"] .pill:text-is("Critical")',
      { timeout: 30_000 },
    );
    expect(await row.locator('.alarm-msg').textContent()).toMatch(
      /^Free chlorine (low|low-low): [\d.]+ mg\/L < /,
    );
    await row.locator('button[data-action=ack]').click();
    await page.waitForSelector(
      '[data-testid=active-alarms] .row.alarm[data-rule="chlorine.free.low"][data-state=active-acknowledged]',
      { timeout: 20_000 },
    );
    const alarms = await api<{ alarms: Alarm[] }>('/api/alarms?state=active');
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
    const t = await api<Ticket>(`/api/tickets/${ticketId}`);
    expect(t.status).toBe('closed');
    expect(t.verifiedBy).toBe('demo-supervisor');
    expect(t.history.map((h) => h.action)).toEqual(
      expect.arrayContaining(['acknowledge', 'assign', 'start', 'resolve', 'verify', 'close']),
    );
    expect(eng.errors).toEqual([]);
    expect(sup.errors).toEqual([]);
    await sup.close();
  });

  it("hides actions from a viewer, draws only the device's own thresholds, and shows the monthly report", async () => {
    await ensureAlarm('tank-1', 'chlorine-loss', 'chlorine.free.low');
    const v = await signedIn('demo-viewer');
    const { page } = v;
    expect(await page.getAttribute('[data-testid=who]', 'data-role')).toBe('viewer');
    await page.waitForSelector(`.tile[data-device="${TANK}"]`, { timeout: 30_000 });
    expect(await page.locator('[data-testid=demo-panel]').count()).toBe(0);
    await page.click('[data-nav=alarms]');
    await page.locator('[data-testid=active-alarms] .row.alarm').first().waitFor({ timeout: 20_000 });
    expect(await page.locator('.row.alarm button').count()).toBe(0);
    const tickets = await api<{ tickets: Ticket[] }>('/api/tickets', 'demo-viewer');
    expect(tickets.tickets.length).toBeGreaterThan(0);
    await page.goto(`${demo.url}/#/workorders/${tickets.tickets[0]!.id}`);
    await page.locator('[data-testid=ticket-detail]').waitFor({ timeout: 20_000 });
    expect(await page.locator('[data-testid=ticket-detail] button').count()).toBe(0);
    expect(await page.locator('[data-action=new-ticket]').count()).toBe(0);

    // The device view: a chart per metric with the tank's own limits drawn, and none of the
    // server room's on its temperature; without InfluxDB no history, said plainly.
    await page.goto(`${demo.url}/#/device/${encodeURIComponent(TANK)}`);
    const drawn = (metric: string) => page.getAttribute(`.chart[data-metric=${metric}]`, 'data-drawn');
    await page.waitForSelector('.chart[data-metric=free_chlorine_mgl][data-drawn*="lowLow"]', {
      timeout: 20_000,
    });
    expect(await drawn('free_chlorine_mgl')).toBe('high:2 low:0.3 lowLow:0.05');
    expect(await drawn('ph')).toBe('high:8.5 low:6.5');
    expect(await drawn('level_pct')).toBe('low:20');
    expect(await drawn('temperature_c')).toBe('');
    await page.locator('.notice', { hasText: 'History not available' }).waitFor({ timeout: 20_000 });
    expect(await page.textContent('[data-testid=device-state]')).toBe('Critical');
    // Its alarms and work orders, asked of the gateway for this device only.
    await page
      .locator('[data-testid=device-alarms] .row.alarm[data-rule="chlorine.free.low"]')
      .first()
      .waitFor();
    const rows = await page.locator('[data-testid=device-alarms] .row.alarm .alarm-device').allTextContents();
    expect(new Set(rows)).toEqual(new Set([TANK]));

    // The monthly report of this month, with this month's figures.
    await page.click('[data-nav=report]');
    await page.locator('[data-testid=report]').waitFor({ timeout: 20_000 });
    await page.fill('input[type=month]', new Date().toISOString().slice(0, 7));
    await expect
      .poll(async () => Number(await page.locator('[data-testid=kpi-opened] .kpi-value').textContent()), {
        timeout: 20_000,
      })
      .toBeGreaterThanOrEqual(1);
    expect(await page.locator('.bars .bar').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid=read-rates] th').allTextContents()).toContain('Meter class');
    expect(v.errors).toEqual([]);
    await v.close();
  });

  it('raises a work order by hand, holds it with its clock paused, and completes a disinfection with its form', async () => {
    const eng = await signedIn('demo-engineer');
    const { page } = eng;
    await page.click('[data-nav=workorders]');
    await page.click('[data-action=new-ticket]');
    const form = page.locator('[data-testid=new-ticket]');
    await form.locator('input[name=title]').fill('Replace the door closer');
    await form.locator('input[name=site]').fill('demo');
    await form.locator('select[name=device]').selectOption('room-1');
    await form.locator('select[name=priority]').selectOption('high');
    await form.locator('[data-action=create]').click();
    const detail = page.locator('[data-testid=ticket-detail]');
    await page.waitForSelector('[data-testid=ticket-detail][data-status=open]', { timeout: 20_000 });
    const id = page.url().split('/').pop()!;
    const made = await api<Ticket>(`/api/tickets/${id}`);
    expect(made).toMatchObject({ title: 'Replace the door closer', device: 'room-1', status: 'open' });

    // On hold: its own column, its clock paused.
    await detail.locator('button[data-action=acknowledge]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-status=acknowledged]', { timeout: 20_000 });
    await page.fill('[data-testid=ticket-detail] input[name=note]', 'waiting for the part');
    await detail.locator('button[data-action=hold]').click();
    const held = page.locator(`.column[data-status=held] .card.ticket[data-ticket="${id}"]`);
    await held.waitFor({ timeout: 20_000 });
    expect(await held.getAttribute('data-hold')).toBe('yes');
    expect(await held.locator('.sla').getAttribute('data-sla')).toBe('sla-held');
    expect(await held.locator('.sla').textContent()).toContain('clock paused');
    expect((await api<Ticket>(`/api/tickets/${id}`)).onHold).toBe(true);
    await detail.locator('button[data-action=resume]').click();
    await page
      .locator(`.column[data-status=acknowledged] .card.ticket[data-ticket="${id}"]`)
      .waitFor({ timeout: 20_000 });
    expect(await page.locator(`.column[data-status=held]`).count()).toBe(0);

    // A disinfection falls due (the planner's clock moved on 11 days): its completion form.
    demo.gw.maintenance!.tick(Date.now());
    demo.gw.maintenance!.tick(Date.now() + 11 * DAY);
    const pm = (await api<{ tickets: Ticket[] }>('/api/tickets?site=demo&device=tank-2')).tickets.find(
      (x) => x.maintenance?.schedule === 'tank-disinfection',
    )!;
    expect(pm).toBeDefined();
    await page.goto(`${demo.url}/#/workorders/${pm.id}`);
    await page.waitForSelector('[data-testid=ticket-detail][data-status=open]', { timeout: 20_000 });
    for (const [action, status] of [
      ['acknowledge', 'acknowledged'],
      ['assign', 'assigned'],
      ['start', 'in_progress'],
    ] as const) {
      await detail.locator(`button[data-action=${action}]`).click();
      await page.waitForSelector(`[data-testid=ticket-detail][data-status=${status}]`, { timeout: 20_000 });
    }
    const completion = page.locator('[data-testid=completion-form][data-form=disinfection]');
    await completion.waitFor();
    // Without the amount the gateway refuses, and says why.
    await detail.locator('button[data-action=resolve]').click();
    await page.locator('[data-testid=ticket-error]', { hasText: 'form.amount' }).waitFor({ timeout: 20_000 });
    await completion.locator('input[name=disinfectedAt]').fill('2026-11-02T09:30');
    await completion.locator('input[name=amount]').fill('2.5');
    await completion.locator('select[name=unit]').selectOption('kg');
    await detail.locator('button[data-action=resolve]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-status=resolved]', { timeout: 20_000 });
    const done = await api<Ticket>(`/api/tickets/${pm.id}`);
    expect(done.maintenance!.record).toMatchObject({
      disinfectedAt: new Date('2026-11-02T09:30').toISOString(),
      amount: 2.5,
      unit: 'kg',
    });
    await page.locator('.record dd', { hasText: '2.5' }).waitFor();
    expect(eng.errors).toEqual([]);
    await eng.close();
  });

  it('shelves an alarm for a chosen time with a reason, and unshelves it', async () => {
    const alarm = await ensureAlarm('gm-flat-102', 'tamper', 'gas.tamper');
    const eng = await signedIn('demo-engineer');
    const { page } = eng;
    await page.click('[data-nav=alarms]');
    const row = page.locator(`[data-testid=active-alarms] .row.alarm[data-alarm="${alarm.id}"]`);
    await row.locator('button[data-action=shelve]').click();
    const dialog = page.locator('[data-testid=shelve-dialog]');
    // No reason, no shelf.
    await dialog.locator('[data-action=shelve-confirm]').click();
    await dialog.locator('.error').waitFor();
    await dialog.locator('select[name=duration]').selectOption('240');
    await dialog.locator('textarea[name=reason]').fill('meter being replaced');
    await dialog.locator('[data-action=shelve-confirm]').click();
    const shelf = page.locator('[data-testid=shelves] .row.shelf', { hasText: 'meter being replaced' });
    await shelf.waitFor({ timeout: 20_000 });
    const shelves = await api<{
      shelves: Array<{ id: string; until: string; reason: string; device: string }>;
    }>('/api/alarms/shelves');
    const s = shelves.shelves.find((x) => x.reason === 'meter being replaced')!;
    expect(s.device).toBe('gm-flat-102');
    const hours = (Date.parse(s.until) - Date.now()) / 3600_000;
    expect(hours).toBeGreaterThan(3.9);
    expect(hours).toBeLessThanOrEqual(4);
    await shelf.locator('button[data-action=unshelve]').click();
    await waitFor(
      async () =>
        !(await api<{ shelves: Array<{ id: string }> }>('/api/alarms/shelves')).shelves.some(
          (x) => x.id === s.id,
        ),
      20_000,
      'shelf ended',
    );
    await page.locator('[data-testid=shelves] .row.shelf', { hasText: 'meter being replaced' }).waitFor({
      state: 'detached',
      timeout: 20_000,
    });
    expect(eng.errors).toEqual([]);
    await eng.close();
  });

  it('speaks Chinese for a Chinese browser, alarms and names included, and switches language', async () => {
    await ensureAlarm('tank-1', 'chlorine-loss', 'chlorine.free.low');
    const zh = await signedIn('demo-viewer', { locale: 'zh-CN' });
    const { page } = zh;
    expect(await page.textContent('[data-nav=overview]')).toBe('总览');
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await page.textContent('[data-testid=who]')).toContain('查看者');
    expect(await page.getAttribute('input.filter', 'placeholder')).toBe('筛选：站点、设备、类型');
    await page.waitForSelector(`.tile[data-device="${TANK}"] .tile-kind:text-is("水箱加氯")`, {
      timeout: 20_000,
    });
    expect(await page.locator(`.tile[data-device="${TANK}"] .tv-name`).first().textContent()).toBe('游离氯');
    await page.click('[data-nav=alarms]');
    const msg = page.locator(
      '[data-testid=active-alarms] .row.alarm[data-rule="chlorine.free.low"] .alarm-msg',
    );
    await msg.waitFor({ timeout: 20_000 });
    expect(await msg.textContent()).toMatch(/^游离氯 (低限|超低限)：[\d.]+ mg\/L < /);
    await page.click('[data-testid=lang]');
    await page.waitForSelector('[data-nav=overview]:text-is("Overview")', { timeout: 20_000 });
    // The choice is remembered over a reload.
    await page.reload();
    await page.waitForSelector('[data-testid=who]', { timeout: 20_000 });
    expect(await page.textContent('[data-nav=overview]')).toBe('Overview');
    await page.click('[data-testid=lang]');
    await page.waitForSelector('[data-nav=alarms]:text-is("告警")', { timeout: 20_000 });
    expect(zh.errors).toEqual([]);
    await zh.close();
  });

  it('fills a phone screen with one tile per row', async () => {
    const phone = await signedIn('demo-viewer', { width: 390, height: 844 });
    const tile = phone.page.locator('.tile').first();
    await tile.waitFor({ timeout: 20_000 });
    const box = (await tile.boundingBox())!;
    expect(box.width).toBeGreaterThan(300);
    const lefts = await phone.page
      .locator('.tile')
      .evaluateAll((els) => els.map((e) => Math.round(e.getBoundingClientRect().left)));
    expect(new Set(lefts).size).toBe(1);
    await phone.close();
  });

  it('notices a stream that stays open but says nothing, says so, and opens it again', async () => {
    const v = await signedIn('demo-viewer');
    await v.page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 30_000 });
    // Every state the banner shows, as it shows it.
    await v.page.evaluate(`(() => {
      const el = document.querySelector('[data-testid=conn]');
      window.seen = [];
      new MutationObserver(() => window.seen.push(el.dataset.conn)).observe(el, { attributes: true });
    })()`);
    // The gateway runs in this process: blocking it for 5 s (5 pings) keeps the socket open and
    // silent (no readings, no pings), as a dead proxy or NAT would.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000);
    await v.page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 30_000 });
    const seen = (await v.page.evaluate('window.seen')) as string[];
    expect(seen).toContain('stale');
    expect(seen.at(-1)).toBe('live');
    expect(v.errors).toEqual([]);
    await v.close();
  });

  it('shows plainly that it is disconnected when the gateway stops, and recovers when it is back', async () => {
    const v = await signedIn('demo-viewer');
    await v.page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 30_000 });
    const port = Number(new URL(demo.url).port);
    const dataDir = demo.gw.cfg.dataDir;
    // The data stays (as on a real restart): the session in shared.db is still valid afterwards.
    await demo.stop({ keepData: true });
    await v.page.waitForSelector('[data-testid=conn][data-conn=reconnecting]', { timeout: 30_000 });
    expect(await v.page.textContent('[data-testid=conn]')).toContain('reconnecting');
    // The gateway comes back where the page expects it: the stream reconnects by itself.
    const back = Date.now();
    demo = await startDemo(port, dataDir);
    await v.page.waitForSelector('[data-testid=conn][data-conn=live]', { timeout: 30_000 });
    // Live readings flow again: a tile shows a reading taken after the restart.
    await expect
      .poll(
        () =>
          v.page
            .locator('.tile')
            .evaluateAll(
              (tiles, after) => tiles.some((t) => Number(t.getAttribute('data-ts')) > after),
              back,
            ),
        { timeout: 30_000 },
      )
      .toBe(true);
    expect(v.errors).toEqual([]);
    await v.close();
  });
});
