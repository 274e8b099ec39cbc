import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newPage, signInAndOpen } from '../fixtures/browser.js';
import {
  ENGINEER,
  startFleetDashboard,
  TWO_TANKS,
  VIEWER,
  type FleetDashboard,
} from '../fixtures/fleet-dashboard.js';
import { ADMIN_TOKEN } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';
import { publishAll } from '../fixtures/publisher.js';

/**
 * A chlorine limit changed for one tank in the dashboard (real Chromium, the gateway with its
 * embedded broker): the chart draws the new limit, a value published over MQTT between the old
 * and the new limit raises the alarm on that tank and not on the tank next to it, and restoring
 * the change from the history puts the old limit back. Then the same form on a phone, in Chinese.
 */
let fleet: FleetDashboard | undefined;
let gw: FleetDashboard['gw'];
let browser: Browser;
let lastTs = Date.now();

async function api<T>(path: string, token = VIEWER): Promise<T> {
  const res = await fetch(`${gw.httpUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

/** One reading over MQTT, waited for until the gateway has taken it (its rules have run). */
async function publish(device: string, value: number): Promise<void> {
  const ts = ++lastTs;
  await publishAll(gw.mqttUrl, [
    {
      topic: `facility/estate/chlorination/${device}/telemetry`,
      payload: JSON.stringify({ ts, free_chlorine_mgl: value }),
    },
  ]);
  await waitFor(
    async () =>
      (
        await api<{ latest: Record<string, { ts: number }> }>(
          `/api/devices/${encodeURIComponent(`estate/${device}`)}`,
        )
      ).latest.free_chlorine_mgl?.ts === ts,
    10_000,
    `the reading of ${device}`,
  );
}

const activeLow = async () =>
  (
    await api<{ alarms: { device: string; rule: string; state: string }[] }>('/api/alarms?state=active')
  ).alarms
    .filter((a) => a.rule === 'chlorine.free.low' && a.state.startsWith('active-'))
    .map((a) => a.device);

beforeAll(async () => {
  fleet = await startFleetDashboard({
    devices: TWO_TANKS,
  });
  ({ gw, browser } = fleet);
  await publish('tank-1', 0.4);
  await publish('tank-2', 0.4);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
});

describe('thresholds in the dashboard', () => {
  it('a limit raised for one tank alarms it, not its neighbour; restored from the history', async () => {
    const { context, page, pageErrors } = await newPage(browser);
    await signInAndOpen(page, gw.httpUrl!, ENGINEER, `device/${encodeURIComponent('estate/tank-1')}`);
    const chart = '.chart[data-metric=free_chlorine_mgl]';
    await page.waitForSelector(`${chart}[data-drawn*="low:0.3"]`, { timeout: 20_000 });
    const card = page.locator('[data-testid=thresholds] [data-rule="chlorine.free.low"]');
    expect(await card.locator('[data-level=low] .src').getAttribute('data-source')).toBe('default');

    await card.locator('[data-testid=edit-rule]').click();
    await card.locator('input[name="low.value"]').fill('0.5');
    await card.locator('input[name=note]').fill('tank 1 feeds the school');
    await card.locator('[data-testid=save-override]').click();

    // The chart takes the new limit at once; the card says it is this device's own.
    await page.waitForSelector(`${chart}[data-drawn*="low:0.5"]`, { timeout: 20_000 });
    expect(await page.getAttribute(chart, 'data-drawn')).toBe('high:2 low:0.5 lowLow:0.05');
    expect(await card.locator('[data-level=low]').getAttribute('data-value')).toBe('0.5');
    expect(await card.locator('[data-level=low] .src').getAttribute('data-source')).toBe('device');
    const row = page.locator(
      '[data-testid=config-history] [data-key="device:estate/tank-1:chlorine.free.low"]',
    );
    await row.first().waitFor({ timeout: 10_000 });
    expect(await row.first().textContent()).toContain('erin');

    // 0.4 lies between the old limit (0.3) and the new one (0.5).
    await publish('tank-1', 0.4);
    await publish('tank-2', 0.4);
    await waitFor(async () => (await activeLow()).includes('tank-1'), 10_000, 'the alarm on tank-1');
    expect(await activeLow()).toEqual(['tank-1']);
    await page.locator('[data-testid=device-alarms] .row.alarm').first().waitFor({ timeout: 20_000 });

    // Restore: the change that set the limit is undone, the old limit drawn again.
    await row.first().locator('[data-testid=restore]').click();
    await page.waitForSelector(`${chart}[data-drawn*="low:0.3"]`, { timeout: 20_000 });
    expect(await card.locator('[data-level=low] .src').getAttribute('data-source')).toBe('default');
    const rules = await api<{ thresholds: { rule: string; level: string; value: number }[] }>(
      '/api/rules?device=estate/tank-1',
    );
    expect(rules.thresholds.find((t) => t.rule === 'chlorine.free.low' && t.level === 'low')?.value).toBe(
      0.3,
    );
    await publish('tank-1', 0.4);
    await waitFor(async () => (await activeLow()).length === 0, 10_000, 'the alarm to clear');
    const history = await api<{ changes: { actor: string; note: string | null }[] }>(
      '/api/fleet/history?key=device:estate/tank-1:chlorine.free.low',
    );
    expect(history.changes.map((c) => c.actor)).toEqual(['erin', 'erin']);
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  it('on a phone, in Chinese: the form fits the screen; a viewer sees no edit button', async () => {
    const { context, page, pageErrors } = await newPage(browser, {
      locale: 'zh-CN',
      width: 390,
      height: 844,
    });
    await signInAndOpen(page, gw.httpUrl!, ENGINEER, `device/${encodeURIComponent('estate/tank-2')}`);
    const card = page.locator('[data-testid=thresholds] [data-rule="chlorine.free.low"]');
    await card.locator('[data-testid=edit-rule]').click();
    await card.locator('[data-testid=rule-form]').waitFor();
    expect(await page.locator('[data-testid=thresholds] h3').first().textContent()).toBe('阈值');
    expect(await card.locator('[data-testid=save-override]').textContent()).toBe('保存');
    const overflow = (await page.evaluate(
      'document.documentElement.scrollWidth - window.innerWidth',
    )) as number;
    expect(overflow).toBeLessThanOrEqual(0);
    const input = (await card.locator('input[name="low.value"]').boundingBox())!;
    expect(input.x + input.width).toBeLessThanOrEqual(390);
    expect(pageErrors).toEqual([]);
    await context.close();

    const viewer = await newPage(browser);
    await signInAndOpen(viewer.page, gw.httpUrl!, VIEWER, `device/${encodeURIComponent('estate/tank-2')}`);
    await viewer.page.locator('[data-testid=thresholds] [data-rule="chlorine.free.low"]').waitFor();
    expect(await viewer.page.locator('[data-testid=edit-rule]').count()).toBe(0);
    await viewer.context.close();
  });

  it('the fleet page on a phone, in Chinese: on-call contact set, CSV checked then imported', async () => {
    const { context, page, pageErrors } = await newPage(browser, {
      locale: 'zh-CN',
      width: 390,
      height: 844,
    });
    await signInAndOpen(page, gw.httpUrl!, ADMIN_TOKEN, `fleet`);
    const onCall = page.locator('[data-testid=on-call]');
    await onCall.waitFor({ timeout: 20_000 });
    expect(await onCall.locator('h3').textContent()).toContain('本周值班');
    await onCall.locator('input[name=onCallName]').fill('李伟');
    await onCall.locator('input[name=onCallReach]').fill('+86 138 0000 0001');
    await onCall.locator('[data-testid=save-on-call]').click();
    // Polled from the test, not evaluated in the page: the dashboard's CSP forbids eval there.
    await expect
      .poll(() => page.locator('[data-testid=on-call-now]').textContent(), { timeout: 10_000 })
      .toBe('李伟');
    const contacts = await api<{ onCall: { name: string } | null }>('/api/fleet/contacts');
    expect(contacts.onCall?.name).toBe('李伟');

    const csv = 'site,id,kind,name\nestate,tank-9,chlorination,Tank 9\nestate,tank-10,toaster,\n';
    await page.locator('[data-testid=csv-import] textarea').fill(csv);
    await page.locator('[data-testid=csv-check]').click();
    await page.locator('[data-testid=csv-result] li[data-line="3"]').waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-testid=csv-result] li').count()).toBe(1);
    expect(await page.locator('[data-testid=fleet-devices] [data-device="estate/tank-9"]').count()).toBe(0);
    await page.locator('[data-testid=csv-import-apply]').click();
    await page
      .locator('[data-testid=fleet-devices] [data-device="estate/tank-9"]')
      .waitFor({ timeout: 10_000 });
    const dev = await api<{ name: string | null }>(`/api/devices/${encodeURIComponent('estate/tank-9')}`);
    expect(dev.name).toBe('Tank 9');
    // Edited in place: the registry takes the new name and critical flag at once.
    const row = page.locator('[data-testid=fleet-devices] [data-device="estate/tank-9"]');
    await row.locator('[data-testid=edit-device]').click();
    await row.locator('input[name=name]').fill('9 号水箱');
    await row.locator('input[name=critical]').check();
    await row.locator('[data-testid=save-device]').click();
    await waitFor(
      async () =>
        (await api<{ name: string | null }>(`/api/devices/${encodeURIComponent('estate/tank-9')}`)).name ===
        '9 号水箱',
      10_000,
      'the new name in the registry',
    );
    expect(
      (await api<{ critical: boolean }>(`/api/devices/${encodeURIComponent('estate/tank-9')}`)).critical,
    ).toBe(true);
    const overflow = (await page.evaluate(
      'document.documentElement.scrollWidth - window.innerWidth',
    )) as number;
    expect(overflow).toBeLessThanOrEqual(0);
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
