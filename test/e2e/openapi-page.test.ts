import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, newPage } from '../fixtures/browser.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';

/**
 * The API reference page (`/api/docs`, @fastify/swagger-ui) in real Chromium against a running
 * gateway: it loads the generated document without a token, shows the operations with their roles,
 * and fetches nothing from outside the gateway.
 */
let gw: Awaited<ReturnType<typeof startGateway>>;
let browser: Browser;

beforeAll(async () => {
  gw = await startGateway(testConfig({ influx: { enabled: false } }));
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await gw?.cleanup();
});

describe('the API reference page', () => {
  it('renders the operations of the OpenAPI document, role included', async () => {
    const { context, page, pageErrors } = await newPage(browser);
    const base = String(gw.httpUrl);
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base) && !r.url().startsWith('data:')) outside.push(r.url());
    });
    try {
      await page.goto(`${base}/api/docs/`);
      // swagger-ui renders one block per operation, with its method and path.
      const op = page.locator('.opblock', { hasText: '/api/tickets/{id}/actions' }).first();
      await op.waitFor({ timeout: 20_000 });
      expect(await op.locator('.opblock-summary-method').innerText()).toBe('POST');
      expect(await page.locator('.info .title').innerText()).toContain('Facility gateway HTTP API');
      await op.locator('.opblock-summary').click();
      await page.getByText('Role: engineer', { exact: false }).first().waitFor({ timeout: 10_000 });
      expect(await page.locator('.opblock').count()).toBeGreaterThanOrEqual(30);
      expect(pageErrors).toEqual([]);
      expect(outside).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
