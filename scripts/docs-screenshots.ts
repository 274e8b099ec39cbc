// `npm run docs:screenshots`: the dashboard's views in real Chromium against the demo (gateway,
// simulators, InfluxDB 1.x for history), saved as docs/screenshots/*.png for the README.
import { mkdirSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { launchBrowser, newPage, signIn } from '../test/fixtures/browser.js';
import { buildDashboard, startDemoGateway } from '../test/fixtures/dashboard.js';
import { startInfluxDB } from '../test/fixtures/influxdb.js';

const OUT = 'docs/screenshots';
/** Seconds of live data before the first picture, so sparklines and charts have a shape. */
const WARMUP_S = Number(process.env.SCREENSHOT_WARMUP_S ?? 45);

/** The monthly report as CONTRACT.md shapes it; used only when the gateway has no report route yet. */
function sampleReport(month: string): unknown {
  return {
    month,
    from: `${month}-01T00:00:00.000Z`,
    to: `${month}-30T00:00:00.000Z`,
    tickets: {
      opened: { total: 42, byPriority: { critical: 3, high: 9, medium: 18, low: 12 }, bySite: { demo: 42 } },
      closed: { total: 39, byPriority: { critical: 3, high: 8, medium: 17, low: 11 }, bySite: { demo: 39 } },
    },
    response: { count: 42, meanMin: 11.4, p90Min: 24.0 },
    resolution: { count: 39, meanMin: 132.5, p90Min: 221.0 },
    sla: { response: { met: 40, total: 42, rate: 0.952 }, resolution: { met: 36, total: 39, rate: 0.923 } },
    escalations: { total: 4, byLevel: { '1': 3, '2': 1 } },
    repeats: { count: 2, rate: 0.051 },
    preventive: { due: 9, doneOnTime: 8, late: 1, open: 0, onTimeRate: 0.889 },
    alarms: {
      total: 57,
      bySeverity: { critical: 5, warning: 44, info: 8 },
      byRule: {
        'chlorine.free.low': 6,
        'room.temperature': 14,
        'gas.pressure': 11,
        'water.night-flow': 9,
        'device.offline': 17,
      },
      bySite: { demo: 57 },
    },
    readRates: [
      {
        site: 'demo',
        meterClass: 'commercial',
        period: month,
        expected: 1,
        reported: 1,
        rate: 1,
        target: 1,
        met: true,
      },
      {
        site: 'demo',
        meterClass: 'residential',
        period: month,
        expected: 5,
        reported: 5,
        rate: 1,
        target: 0.98,
        met: true,
      },
    ],
  };
}

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
    // The report route may not be on this gateway: then a sample answer of the same shape.
    await page.route('**/api/reports/monthly**', async (route) => {
      const res = await route.fetch();
      if (res.status() !== 404) return route.fulfill({ response: res });
      const month = new URL(route.request().url()).searchParams.get('month') ?? '2026-10';
      return route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify(sampleReport(month)),
      });
    });
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

    await page.goto(`${demo.url}/#/workorders`);
    const card = page.locator('.card.ticket', { hasText: 'demo/tank-1' }).first();
    await card.waitFor({ timeout: 30_000 });
    await card.click();
    const detail = page.locator('[data-testid=ticket-detail]');
    await detail.locator('button[data-action=acknowledge]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-status=acknowledged]');
    await detail.locator('button[data-action=assign]').click();
    await page.waitForSelector('[data-testid=ticket-detail][data-status=assigned]');
    await shot(page, 'workorders');

    await page.goto(`${demo.url}/#/report`);
    await page.waitForSelector('[data-testid=report], [data-testid=report-na]', { timeout: 30_000 });
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
