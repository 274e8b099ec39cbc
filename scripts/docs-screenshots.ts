// `npm run docs:screenshots`: the dashboard's views in real Chromium against the demo (gateway,
// simulators, InfluxDB 1.x for history), saved as docs/screenshots/*.png for docs/dashboard.md.
import { mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { launchBrowser, newPage, signIn } from '../test/fixtures/browser.js';
import { buildDashboard, startDemoGateway } from '../test/fixtures/dashboard.js';
import { startInfluxDB } from '../test/fixtures/influxdb.js';

const OUT = 'docs/screenshots';
/** Seconds of live data before the first picture, so sparklines and charts have a shape. */
const WARMUP_S = Number(process.env.SCREENSHOT_WARMUP_S ?? 45);

async function shot(page: Page, name: string): Promise<void> {
  await page.waitForTimeout(1500);
  await page.screenshot({ path: `${OUT}/${name}.png` });
  console.log(`${OUT}/${name}.png`);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const web = await buildDashboard();
  const influx = await startInfluxDB();
  await influx.createDb('facility');
  const demo = await startDemoGateway({
    dashboardDir: web.dir,
    intervalMs: 2000,
    config: { influx: { enabled: true, api: 'v1', url: influx.url, db: 'facility', flushIntervalMs: 500 } },
  });
  const browser = await launchBrowser();
  try {
    const { page } = await newPage(browser, { width: 1440, height: 900 });
    await signIn(page, demo.url, 'demo-engineer');
    await page.waitForSelector('.tile', { timeout: 60_000 });
    console.log(`collecting ${WARMUP_S} s of live data`);
    await page.waitForTimeout(WARMUP_S * 1000);
    await page.selectOption('[data-testid=demo-panel] select[aria-label=device]', 'tank-1');
    await page.selectOption('[data-testid=demo-panel] select[aria-label=fault]', 'chlorine-loss');
    await page.click('[data-testid=demo-panel] button:has-text("Trigger fault")');
    await page.selectOption('[data-testid=demo-panel] select[aria-label=device]', 'gm-flat-102');
    await page.selectOption('[data-testid=demo-panel] select[aria-label=fault]', 'tamper');
    await page.click('[data-testid=demo-panel] button:has-text("Trigger fault")');
    await page.waitForSelector('.tile[data-device="demo/tank-1"][data-state=critical]', { timeout: 60_000 });
    await page.waitForTimeout(4000);
    await shot(page, 'overview');

    await page.goto(`${demo.url}/#/device/${encodeURIComponent('demo/tank-1')}`);
    await page.waitForSelector('.chart canvas', { timeout: 30_000 });
    await shot(page, 'device');

    await page.goto(`${demo.url}/#/alarms`);
    await page.waitForSelector('[data-testid=active-alarms] .row.alarm', { timeout: 30_000 });
    await page.locator('[data-testid=active-alarms] .row.alarm button[data-action=ack]').first().click();
    await shot(page, 'alarms');

    // The board with some of everything: the meter's ticket on hold (its clock paused), the next
    // tank disinfections raised (the planner's clock moved on), the tank's alarm ticket open beside it.
    await page.goto(`${demo.url}/#/workorders`);
    const detail = page.locator('[data-testid=ticket-detail]');
    const meter = page.locator('.card.ticket', { hasText: 'demo/gm-flat-102' }).first();
    await meter.waitFor({ timeout: 30_000 });
    await meter.click();
    await detail.locator('button[data-action=acknowledge]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-status=acknowledged]');
    await page.fill('[data-testid=ticket-detail] input[name=note]', 'waiting for the meter fitter');
    await detail.locator('button[data-action=hold]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-hold=yes]');
    demo.gw.maintenance!.tick(Date.now());
    demo.gw.maintenance!.tick(Date.now() + 11 * 86_400_000);
    const card = page.locator('.card.ticket', { hasText: 'demo/tank-1' }).first();
    await card.waitFor({ timeout: 30_000 });
    await card.click();
    await detail.locator('button[data-action=acknowledge]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-status=acknowledged]');
    await detail.locator('button[data-action=assign]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-status=assigned]');
    await shot(page, 'workorders');

    // The report opens on last month; the demo's tickets and alarms are in this one.
    await page.goto(`${demo.url}/#/report`);
    await page.waitForSelector('[data-testid=report]', { timeout: 30_000 });
    await page.fill('input[type=month]', new Date().toISOString().slice(0, 7));
    // No focus ring on the month field in the picture.
    await page.locator('input[type=month]').blur();
    await page.waitForSelector('[data-testid=read-rates] th');
    await page.waitForTimeout(1000);
    await shot(page, 'report');

    await page.goto(`${demo.url}/#/overview`);
    await page.click('[data-testid=lang]');
    await page.waitForSelector('[data-nav=overview]:text-is("总览")');
    await shot(page, 'overview-zh');
    // Leave the stored language as it was for the next run.
    await page.click('[data-testid=lang]');

    const phone = await newPage(browser, { width: 390, height: 844 });
    await signIn(phone.page, demo.url, 'demo-engineer');
    await phone.page.waitForSelector('.tile[data-device="demo/tank-1"]', { timeout: 30_000 });
    await shot(phone.page, 'overview-phone');
  } finally {
    await browser.close();
    await demo.stop();
    await influx.close();
    web.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
