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

interface History {
  interval: number | null;
  points: Array<{ ts: number; value: number; min: number; max: number }>;
}

describe('device view with history', () => {
  it('charts the stored history of each metric, downsampled to the chart, and a custom range', async () => {
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
    // What the gateway answered for each history request of free chlorine, by its query.
    const answers: Array<{ url: URL; body: History }> = [];
    page.on('response', (r) => {
      const url = new URL(r.url());
      if (!url.pathname.endsWith('/readings') || url.searchParams.get('metric') !== 'free_chlorine_mgl')
        return;
      void r.json().then((body: History) => answers.push({ url, body }));
    });
    const chart = '.chart[data-metric=free_chlorine_mgl]';
    const pointsOnChart = async () => Number(await page.getAttribute(chart, 'data-points'));

    await page.goto(`${demo.url}/#/device/${encodeURIComponent('demo/tank-1')}`);
    await waitFor(() => answers.length > 0, 20_000, 'history requested');
    const first = answers[0]!;
    // Downsampled on the gateway to about the chart's width in pixels, with the bucket length used.
    const points = Number(first.url.searchParams.get('points'));
    expect(points).toBeGreaterThanOrEqual(50);
    expect(points).toBeLessThan(1440);
    expect(first.body.interval).toBeGreaterThanOrEqual(1000);
    expect(first.body.points.length).toBeGreaterThanOrEqual(1);
    await page.locator('[data-testid=interval]').waitFor({ timeout: 20_000 });
    // The chart holds every stored bucket, and the live readings that came since.
    await waitFor(
      async () => (await pointsOnChart()) >= first.body.points.length,
      20_000,
      'stored points on the chart',
    );
    expect(await page.locator('.notice', { hasText: 'History not available' }).count()).toBe(0);

    // A week asks again for the whole week.
    await page.selectOption('[data-testid=range]', '7d');
    await waitFor(() => answers.length > 1, 20_000, 'history for 7 days requested');
    const week = answers[1]!;
    const span = Number(week.url.searchParams.get('to')) - Number(week.url.searchParams.get('from'));
    expect(span).toBe(7 * 86_400_000);
    expect(week.body.interval).toBe(Math.ceil((span + 1) / Number(week.url.searchParams.get('points'))));

    // A custom range of a few minutes (one-second buckets, one reading each): exactly the stored
    // buckets on the chart, no live points added.
    await page.selectOption('[data-testid=range]', 'custom');
    // Since the demo started (inputs take whole minutes).
    const customFrom = Date.now() - 5 * 60_000;
    const local = (ms: number) =>
      new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
    await page.fill('[data-testid=custom-range] input[name=from]', local(customFrom));
    await page.fill('[data-testid=custom-range] input[name=to]', local(Date.now() + 60_000));
    await page.click('[data-testid=custom-range] button[type=submit]');
    await waitFor(() => answers.length > 2, 20_000, 'history for the custom range requested');
    const custom = answers[2]!;
    expect(Number(custom.url.searchParams.get('from'))).toBe(Date.parse(local(customFrom)));
    expect(custom.body.interval).toBe(1000);
    expect(custom.body.points.length).toBeGreaterThanOrEqual(3);
    await waitFor(
      async () => (await pointsOnChart()) === custom.body.points.length,
      20_000,
      'the custom range on the chart',
    );
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  it('marks a failed sensor on the chart and at its latest value, and never draws it as a value', async () => {
    const since = Date.now();
    const fault = await fetch(`${demo.url}/api/demo/devices/tank-1/faults`, {
      method: 'POST',
      headers: { authorization: 'Bearer demo-engineer', 'content-type': 'application/json' },
      body: JSON.stringify({ fault: 'sensor-fault' }),
    });
    expect(fault.status).toBeLessThan(300);
    // The simulators send the failed analyser's 0 marked bad; the gateway stores it apart.
    const raw = async () =>
      (await (
        await fetch(`${demo.url}/api/devices/demo%2Ftank-1/readings?metric=free_chlorine_mgl&from=${since}`, {
          headers: { authorization: 'Bearer demo-viewer' },
        })
      ).json()) as { points: Array<{ value: number }>; notGood: unknown[] };
    await waitFor(async () => (await raw()).notGood.length >= 2, 30_000, 'bad values stored');
    expect((await raw()).points.filter((p) => p.value === 0)).toEqual([]);

    const { context, page, pageErrors } = await newPage(browser);
    await signIn(page, demo.url, 'demo-viewer');
    await page.waitForSelector('[data-testid=who]', { timeout: 20_000 });
    await page.goto(`${demo.url}/#/device/${encodeURIComponent('demo/tank-1')}`);
    const chart = '.chart[data-metric=free_chlorine_mgl]';
    await waitFor(
      async () => Number(await page.getAttribute(chart, 'data-not-good')) > 0,
      20_000,
      'marks of values that are not good on the chart',
    );
    await page.locator('.chart-card [data-quality=bad]').first().waitFor({ timeout: 20_000 });
    expect(pageErrors).toEqual([]);
    await context.close();
    await fetch(`${demo.url}/api/demo/devices/tank-1/faults`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer demo-engineer' },
    });
  });
});
