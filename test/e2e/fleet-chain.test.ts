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
 * The Fleet page in real Chromium against the gateway with its embedded broker: the admin swaps
 * two contacts of the escalation chain and the chain in force follows; a device that publishes
 * without being declared is adopted with one click and then shows as declared; a threshold the
 * config file pins shows its lock and no edit button, as does a pinned device. Then the chain form on a phone, in Chinese.
 * Waits are expect.poll and locators: the dashboard's CSP forbids string waitForFunction.
 */
let fleet: FleetDashboard | undefined;
let gw: FleetDashboard['gw'];
let browser: Browser;

async function api<T>(path: string, token = VIEWER): Promise<T> {
  const res = await fetch(`${gw.httpUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

type Contacts = { chain: { name: string }[]; configured: { name: string }[] };
const chainNames = async () => (await api<Contacts>('/api/fleet/contacts')).chain.map((c) => c.name);

beforeAll(async () => {
  fleet = await startFleetDashboard({
    devices: TWO_TANKS,
    fleet: { pinned: ['rules.overrides.chlorine.free.low', 'devices.estate/tank-2'] },
    workorders: {
      contacts: [
        { name: 'Li Wei', contact: '+86 138 0000 0001' },
        { name: 'Zhang San', contact: '+86 138 0000 0002' },
        { name: 'Wang Fang', contact: '+86 138 0000 0003' },
      ],
    },
  });
  ({ gw, browser } = fleet);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
});

describe('the Fleet page: escalation chain, adoption, pins', () => {
  it('the admin swaps two contacts of the chain; the chain in force follows', async () => {
    const { context, page, pageErrors } = await newPage(browser);
    try {
      await signInAndOpen(page, gw.httpUrl!, ADMIN_TOKEN, `fleet`);
      const chain = page.locator('[data-testid=chain]');
      const inForce = chain.locator('[data-testid=chain-in-force] li');
      await inForce.first().waitFor({ timeout: 20_000 });
      expect(await inForce.evaluateAll((els) => els.map((e) => e.getAttribute('data-name')))).toEqual([
        'Li Wei',
        'Zhang San',
        'Wang Fang',
      ]);
      expect(await chain.locator('[data-testid=on-call-week]').textContent()).toContain('Li Wei');

      await chain.locator('[data-testid=edit-chain]').click();
      const rows = chain.locator('[data-testid=chain-row]');
      expect(await rows.count()).toBe(3);
      // Zhang San up to level 1; a fourth contact added and removed again changes nothing.
      await rows.nth(1).locator('[data-testid=move-up]').click();
      await chain.locator('[data-testid=add-contact]').click();
      expect(await rows.count()).toBe(4);
      await rows.nth(3).locator('[data-testid=remove-contact]').click();
      expect(await rows.nth(0).locator('input[name=name]').inputValue()).toBe('Zhang San');
      await rows.nth(1).locator('input[name=contact]').fill('+86 138 0000 0009');
      await chain.locator('input[name=note]').fill('Li on leave');
      await chain.locator('[data-testid=save-chain]').click();

      await expect
        .poll(() => inForce.evaluateAll((els) => els.map((e) => e.getAttribute('data-name'))), {
          timeout: 10_000,
        })
        .toEqual(['Zhang San', 'Li Wei', 'Wang Fang']);
      expect(await chainNames()).toEqual(['Zhang San', 'Li Wei', 'Wang Fang']);
      const c = await api<{ chain: { name: string; contact?: string }[] }>('/api/fleet/contacts');
      expect(c.chain[1]).toEqual({ name: 'Li Wei', contact: '+86 138 0000 0009' });
      const h = await api<{ changes: { actor: string; note: string | null }[] }>(
        '/api/fleet/history?entity=contact',
      );
      expect(h.changes.map((x) => [x.actor, x.note])).toEqual([['admin', 'Li on leave']]);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a discovered device is adopted with one click and shows as declared', async () => {
    await publishAll(gw.mqttUrl, [
      {
        topic: 'facility/west/water-meter/wm-new/telemetry',
        payload: JSON.stringify({ ts: Date.now(), volume_m3: 1 }),
      },
    ]);
    await waitFor(
      async () =>
        (await api<{ devices: { key: string; discovered: boolean }[] }>('/api/devices')).devices.find(
          (d) => d.key === 'west/wm-new',
        )?.discovered,
      10_000,
      'the discovered meter',
    );
    const { context, page, pageErrors } = await newPage(browser);
    try {
      await signInAndOpen(page, gw.httpUrl!, ADMIN_TOKEN, `fleet`);
      const found = page.locator('[data-testid=fleet-discovered] [data-discovered="west/wm-new"]');
      await found.waitFor({ timeout: 20_000 });
      expect(await page.locator('[data-testid=fleet-devices] [data-device="west/wm-new"]').count()).toBe(0);
      await found.locator('[data-testid=adopt]').click();

      await page
        .locator('[data-testid=fleet-devices] [data-device="west/wm-new"]')
        .waitFor({ timeout: 10_000 });
      await expect.poll(() => found.count(), { timeout: 10_000 }).toBe(0);
      const dev = await api<{ discovered: boolean; kind: string }>(
        `/api/devices/${encodeURIComponent('west/wm-new')}`,
      );
      expect(dev).toMatchObject({ discovered: false, kind: 'water-meter' });
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a threshold and a device pinned in the config file are locked; those beside them can be edited', async () => {
    const { context, page, pageErrors } = await newPage(browser);
    try {
      await signInAndOpen(page, gw.httpUrl!, ENGINEER, `device/${encodeURIComponent('estate/tank-1')}`);
      const low = page.locator('[data-testid=thresholds] [data-rule="chlorine.free.low"]');
      const high = page.locator('[data-testid=thresholds] [data-rule="chlorine.free.high"]');
      await low.waitFor({ timeout: 20_000 });
      expect(await low.locator('[data-testid=pinned]').getAttribute('data-pin')).toBe(
        'rules.overrides.chlorine.free.low',
      );
      expect(await low.locator('[data-testid=edit-rule]').count()).toBe(0);
      expect(await high.locator('[data-testid=pinned]').count()).toBe(0);
      expect(await high.locator('[data-testid=edit-rule]').count()).toBe(1);

      // A pinned device on the Fleet page: locked, neither edit nor retire (the admin's page).
      const admin = await newPage(browser);
      try {
        await signInAndOpen(admin.page, gw.httpUrl!, ADMIN_TOKEN, `fleet`);
        const pinned = admin.page.locator('[data-testid=fleet-devices] [data-device="estate/tank-2"]');
        const free = admin.page.locator('[data-testid=fleet-devices] [data-device="estate/tank-1"]');
        await pinned.waitFor({ timeout: 20_000 });
        expect(await pinned.locator('[data-testid=pinned]').getAttribute('data-pin')).toBe(
          'devices.estate/tank-2',
        );
        expect(await pinned.locator('[data-testid=edit-device], [data-testid=retire]').count()).toBe(0);
        expect(await free.locator('[data-testid=edit-device]').count()).toBe(1);
        expect(admin.pageErrors).toEqual([]);
      } finally {
        await admin.context.close();
      }
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('on a phone, in Chinese: the chain form fits the screen', async () => {
    const { context, page, pageErrors } = await newPage(browser, {
      locale: 'zh-CN',
      width: 390,
      height: 844,
    });
    try {
      await signInAndOpen(page, gw.httpUrl!, ADMIN_TOKEN, `fleet`);
      const chain = page.locator('[data-testid=chain]');
      await chain.locator('[data-testid=edit-chain]').click();
      await chain.locator('[data-testid=chain-form]').waitFor();
      expect(await chain.locator('h3').first().textContent()).toContain('当前联系链');
      expect(await chain.locator('[data-testid=save-chain]').textContent()).toBe('保存联系链');
      expect(await page.locator('[data-testid=fleet-discovered] h3').textContent()).toBe('发现的设备');
      const overflow = (await page.evaluate(
        'document.documentElement.scrollWidth - window.innerWidth',
      )) as number;
      expect(overflow).toBeLessThanOrEqual(0);
      const save = (await chain.locator('[data-testid=save-chain]').boundingBox())!;
      expect(save.x + save.width).toBeLessThanOrEqual(390);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
