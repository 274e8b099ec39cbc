import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage, signIn } from '../fixtures/browser.js';
import { buildDashboard, startDemoGateway, type DemoGateway } from '../fixtures/dashboard.js';
import { waitFor } from '../fixtures/ports.js';

/**
 * The maintenance-windows view in real Chromium against a running gateway: an engineer sets a
 * window over a tank's cleaning through the form, sees it listed as active, and ends it early; the
 * gateway's API agrees at each step, and a viewer sees the list without the form or the end button.
 */
let web: Awaited<ReturnType<typeof buildDashboard>>;
let demo: DemoGateway;
let browser: Browser;

interface WindowJson {
  id: string;
  site: string | null;
  device: string | null;
  reason: string;
  createdBy: string;
  endedAt: string | null;
  endedBy: string | null;
  active: boolean;
}

const windows = async (all = true): Promise<WindowJson[]> => {
  const res = await fetch(`${demo.url}/api/windows${all ? '?all=true' : ''}`, {
    headers: { authorization: 'Bearer demo-engineer' },
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { windows: WindowJson[] }).windows;
};

beforeAll(async () => {
  web = await buildDashboard();
  demo = await startDemoGateway({ dashboardDir: web.dir, intervalMs: 5000 });
  browser = await launchBrowser();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await demo?.stop();
  web?.cleanup();
});

describe('maintenance windows view', () => {
  it('creates a window in the form, lists it as active, and ends it early', async () => {
    const REASON = 'tank-1 cleaning (browser test)';
    const { context, page, pageErrors } = await newPage(browser);
    await signIn(page, demo.url, 'demo-engineer');
    await page.waitForSelector('[data-testid=who]', { timeout: 20_000 });
    await page.click('a[data-nav=windows]');
    await page.waitForSelector('[data-testid=new-window]', { timeout: 20_000 });

    // `datetime-local` takes the browser's local time: from a minute ago to two hours ahead.
    const [from, to] = await page.evaluate(() => {
      const local = (ms: number) => {
        const d = new Date(ms);
        const p = (n: number) => String(n).padStart(2, '0');
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
      };
      return [local(Date.now() - 60_000), local(Date.now() + 2 * 3600_000)];
    });
    const form = page.locator('[data-testid=new-window]');
    await form.locator('input[name=site]').fill('demo');
    await form.locator('input[name=device]').fill('tank-1');
    await form.locator('select[name=type]').selectOption('once');
    await form.locator('input[name=from]').fill(from);
    await form.locator('input[name=to]').fill(to);
    await form.locator('input[name=reason]').fill(REASON);
    await form.locator('[data-action=create-window]').click();

    // Listed, as active, with its reason and scope; the API holds the same window, set by the engineer.
    const row = page.locator('.row.window', { hasText: REASON });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.getAttribute('data-active')).toBe('true');
    expect(await row.textContent()).toContain('demo · tank-1');
    const id = await row.getAttribute('data-window');
    const created = (await windows()).find((w) => w.id === id);
    expect(created).toMatchObject({
      site: 'demo',
      device: 'tank-1',
      reason: REASON,
      active: true,
      endedAt: null,
    });
    expect(await row.textContent()).toContain(created!.createdBy);

    // Ended early: it leaves the list of windows in force, and shows as ended with who ended it.
    await row.locator('[data-action=end-window]').click();
    await waitFor(async () => (await row.count()) === 0, 10_000, 'the ended window gone from the list');
    const ended = (await windows()).find((w) => w.id === id)!;
    expect(ended.endedAt).not.toBeNull();
    expect(ended.endedBy).toBe(created!.createdBy);
    expect((await windows(false)).some((w) => w.id === id)).toBe(false);
    await page.locator('section.windows input[type=checkbox]').check();
    const endedRow = page.locator(`.row.window[data-window="${id}"]`);
    await endedRow.waitFor({ timeout: 10_000 });
    expect(await endedRow.locator('[data-action=end-window]').count()).toBe(0);
    expect(await endedRow.textContent()).toContain(ended.endedBy!);
    expect(pageErrors).toEqual([]);
    await context.close();
  }, 60_000);

  it('shows a viewer the windows without the form or the end button', async () => {
    const { context, page, pageErrors } = await newPage(browser);
    await signIn(page, demo.url, 'demo-viewer');
    await page.waitForSelector('[data-testid=who]', { timeout: 20_000 });
    await page.goto(`${demo.url}/#/windows`);
    await page.waitForSelector('[data-testid=windows]', { timeout: 20_000 });
    await page.locator('section.windows input[type=checkbox]').check();
    await page.locator('.row.window').first().waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-testid=new-window]').count()).toBe(0);
    expect(await page.locator('[data-action=end-window]').count()).toBe(0);
    expect(pageErrors).toEqual([]);
    await context.close();
  }, 60_000);
});
