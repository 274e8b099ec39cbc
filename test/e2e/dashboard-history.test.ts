import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage, signIn } from '../fixtures/browser.js';
import { buildDashboard, startDemoGateway, type DemoGateway } from '../fixtures/dashboard.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { waitFor } from '../fixtures/ports.js';

/** The device view reads a metric's history from a real InfluxDB 1.6.7 through the gateway. */
let web: Awaited<ReturnType<typeof buildDashboard>>;
let influx: InfluxDB;
let demo: DemoGateway;
let browser: Browser;

beforeAll(async () => {
  web = await buildDashboard();
  influx = await startInfluxDB();
  await influx.createDb('facility');
  demo = await startDemoGateway({
    dashboardDir: web.dir,
    intervalMs: 1000,
    config: { influx: { enabled: true, api: 'v1', url: influx.url, db: 'facility', flushIntervalMs: 200 } },
  });
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
  await influx?.close();
  web?.cleanup();
});

describe('device view with history', () => {
  it('charts the stored history of each metric, with no "not available" notice', async () => {
    // Some history in InfluxDB first.
    const since = Date.now() - 3600_000;
    await waitFor(
      async () => {
        const res = await fetch(
          `${demo.url}/api/devices/demo%2Ftank-1/readings?metric=free_chlorine_mgl&from=${since}`,
          { headers: { authorization: 'Bearer demo-viewer' } },
        );
        return res.status === 200 && ((await res.json()) as { points: unknown[] }).points.length >= 5;
      },
      60_000,
      'five stored readings of tank-1',
    );
    const { context, page, pageErrors } = await newPage(browser);
    await signIn(page, demo.url, 'demo-viewer');
    await page.waitForSelector('[data-testid=who]', { timeout: 20_000 });
    const readings: string[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/readings?'))
        readings.push(`${r.status()} ${new URL(r.url()).searchParams.get('metric')}`);
    });
    await page.goto(`${demo.url}/#/device/${encodeURIComponent('demo/tank-1')}`);
    await page.locator('.chart[data-metric=free_chlorine_mgl] canvas').first().waitFor({ timeout: 20_000 });
    await waitFor(() => readings.includes('200 free_chlorine_mgl'), 20_000, 'history requested');
    // Another range asks again.
    const before = readings.length;
    await page.selectOption('.device-head select', '24h');
    await waitFor(() => readings.length > before, 20_000, 'history for 24 h requested');
    expect(await page.locator('.notice', { hasText: 'History not available' }).count()).toBe(0);
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
