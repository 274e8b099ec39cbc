import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPage, signInAndOpen } from '../fixtures/browser.js';
import { ENGINEER, startFleetDashboard, VIEWER, type FleetDashboard } from '../fixtures/fleet-dashboard.js';
import { ADMIN_TOKEN } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { WebhookReceiver } from '../fixtures/webhook-receiver.js';

/**
 * A webhook channel added in the Fleet page's form (real Chromium, on a phone): it is listed with
 * "secret set" and no secret, the next ticket reaches a real receiver signed with the secret typed
 * in the form, "send test" shows the receiver's verdict, and the secret field of the edit form is
 * empty. A viewer sees the list without any edit button.
 */
const SECRET = 'chat-room-secret-0123456789';
let fleet: FleetDashboard | undefined;
let gw: FleetDashboard['gw'];
let browser: Browser;
let receiver: WebhookReceiver;

beforeAll(async () => {
  receiver = new WebhookReceiver(SECRET, await freePort());
  await receiver.start();
  fleet = await startFleetDashboard({});
  ({ gw, browser } = fleet);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
  await receiver?.stop();
});

describe('notification channels in the dashboard', () => {
  it('a webhook added in the form on a phone gets the next ticket, signed; its secret is never shown', async () => {
    const { context, page, pageErrors } = await newPage(browser, { width: 390, height: 844 });
    try {
      await signInAndOpen(page, gw.httpUrl!, ADMIN_TOKEN, `fleet`);
      const card = page.locator('[data-testid=fleet-channels]');
      await card.locator('[data-testid=add-webhook]').click();
      const form = card.locator('[data-testid=webhook-form]');
      await form.locator('input[name=name]').fill('chat-room');
      await form.locator('input[name=url]').fill(receiver.url);
      await form.locator('input[name=secret]').fill(SECRET);
      await form.locator('[data-testid=add-header]').click();
      await form.locator('input[name=header-name-0]').fill('X-Room');
      await form.locator('input[name=header-value-0]').fill('room-token-42');
      await form.locator('[data-testid=save-webhook]').click();
      const row = card.locator('[data-webhook=chat-room]');
      await row.waitFor({ timeout: 10_000 });
      expect(await row.textContent()).toContain('secret set');
      expect(await card.textContent()).not.toContain(SECRET);

      // The next ticket goes out through it, without a restart.
      const res = await fetch(`${gw.httpUrl}/api/tickets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ENGINEER}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'Boiler room smoke detector fault', site: 'plant' }),
      });
      expect(res.status).toBe(201);
      await waitFor(() => receiver.received.some((r) => r.body.includes('Boiler room smoke')), 10_000);
      const got = receiver.received.find((r) => r.body.includes('Boiler room smoke'))!;
      expect(got.signatureValid).toBe(true);
      expect(got.headers['x-room']).toBe('room-token-42');

      // Send test: the receiver's verdict is shown.
      await row.locator('[data-testid=test-webhook]').click();
      await row.locator('[data-testid=test-verdict]').waitFor({ timeout: 10_000 });
      expect(await row.locator('[data-testid=test-verdict]').textContent()).toContain('delivered');

      // The edit form never fills a secret in.
      await row.locator('[data-testid=edit-webhook]').click();
      expect(await row.locator('input[name=secret]').inputValue()).toBe('');
      expect(await row.locator('input[name=header-value-0]').inputValue()).toBe('');
      // Nothing of the channels view, nor of the page (the top navigation in English wraps), reaches
      // past the phone's edge.
      const pageOverflow = (await page.evaluate(
        'document.documentElement.scrollWidth - window.innerWidth',
      )) as number;
      expect(pageOverflow).toBeLessThanOrEqual(0);
      const right = (await page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=fleet-channels] *')].map((e) => e.getBoundingClientRect().right))",
      )) as number;
      expect(right).toBeLessThanOrEqual(390);
      const box = (await row.locator('input[name=url]').boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('in Chinese for a viewer: the list without edit buttons', async () => {
    const { context, page, pageErrors } = await newPage(browser, {
      locale: 'zh-CN',
      width: 390,
      height: 844,
    });
    try {
      await signInAndOpen(page, gw.httpUrl!, VIEWER, `fleet`);
      const card = page.locator('[data-testid=fleet-channels]');
      await card.locator('[data-webhook=chat-room]').waitFor({ timeout: 10_000 });
      expect(await card.locator('h3').first().textContent()).toBe('通知渠道');
      expect(await card.locator('[data-testid=edit-webhook]').count()).toBe(0);
      expect(await card.locator('[data-testid=add-webhook]').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
