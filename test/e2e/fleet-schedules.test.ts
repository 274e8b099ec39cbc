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

/**
 * Maintenance schedules in the dashboard (real Chromium, on a 390 px phone): an engineer creates
 * a schedule on the Fleet page, skips its next occurrence with a reason and sees the reason; the
 * planner raises no work order for it. A viewer sees the schedules without the buttons; in Chinese
 * the section says so.
 */
let fleet: FleetDashboard | undefined;
let gw: FleetDashboard['gw'];
let browser: Browser;

async function api<T>(path: string, token = VIEWER): Promise<T> {
  const res = await fetch(`${gw.httpUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

type Listed = {
  schedules: {
    schedule: { id: string };
    next: { dueAt: string; skip: string | null }[];
    occurrences: { dueAt: string; skip?: string; moveTo?: string; by: string | null }[];
  }[];
};

beforeAll(async () => {
  fleet = await startFleetDashboard({
    devices: TWO_TANKS,
    // Only the schedule made here, in a zone far from the browser's (New York).
    workorders: { maintenance: { schedules: [], timeZone: 'Asia/Shanghai' } },
  });
  ({ gw, browser } = fleet);
}, 180_000);

afterAll(async () => {
  await fleet?.stop();
});

describe('maintenance schedules in the dashboard', () => {
  it('on a phone: a schedule created, its next occurrence skipped with a reason that is shown', async () => {
    const { context, page, pageErrors } = await newPage(browser, {
      width: 390,
      height: 844,
      timezoneId: 'America/New_York',
    });
    try {
      await signInAndOpen(page, gw.httpUrl!, ENGINEER, `fleet`);
      const section = page.locator('[data-testid=fleet-schedules]');
      await section.waitFor({ timeout: 20_000 });

      await section.locator('[data-testid=new-schedule]').click();
      const form = section.locator('[data-testid=schedule-form]');
      await form.locator('input[name=id]').fill('filter-check');
      await form.locator('input[name=title]').fill('Check the chlorinator filters');
      await form.locator('input[name=kinds]').fill('chlorination');
      await form.locator('input[name=everyValue]').fill('7');
      await form.locator('input[name=hour]').fill('9');
      await form.locator('[data-testid=save-schedule]').click();

      const row = section.locator('[data-schedule=filter-check]');
      await row.waitFor({ timeout: 10_000 });
      const first = row.locator('[data-testid=next-occurrences] li').first();
      const dueAt = (await first.getAttribute('data-due'))!;
      expect(Date.parse(dueAt)).toBeGreaterThan(Date.now());
      // 09:00 on the schedule's clock (Shanghai), not the browser's (21:00 or 20:00 in New York).
      expect(new Date(dueAt).toLocaleString('en-US', { timeZone: 'Asia/Shanghai', hour12: false })).toContain(
        ' 09:00',
      );
      expect(await first.locator('span').first().textContent()).toContain('09:00 AM');

      await first.locator('[data-testid=skip-occurrence]').click();
      await first.locator('input[name=reason]').fill('tanks drained for the inspection');
      await first.locator('[data-testid=save-occurrence]').click();
      // Polled from the test, not evaluated in the page: the dashboard's CSP forbids eval there.
      await expect
        .poll(() => row.locator(`li[data-due="${dueAt}"]`).getAttribute('data-skipped'), { timeout: 10_000 })
        .toBe('true');
      expect(await row.locator(`li[data-due="${dueAt}"] [data-testid=skip-reason]`).textContent()).toContain(
        'tanks drained for the inspection',
      );
      const exception = row.locator('[data-testid=schedule-exceptions] li[data-skipped=true]');
      expect(await exception.textContent()).toContain('erin');

      // Kept and audited by the gateway; no work order for the skipped occurrence.
      const listed = await api<Listed>('/api/fleet/schedules');
      const s = listed.schedules.find((x) => x.schedule.id === 'filter-check')!;
      expect(s.occurrences).toMatchObject([{ dueAt, skip: 'tanks drained for the inspection', by: 'erin' }]);
      gw.maintenance!.tick(Date.now());
      expect(gw.maintenance!.tick(Date.parse(dueAt) + 60_000)).toBe(0);

      // The second one moved two hours later: the form reads and writes the schedule's clock.
      const second = row.locator('[data-testid=next-occurrences] li').nth(1);
      const secondDue = (await second.getAttribute('data-due'))!;
      await second.locator('[data-testid=move-occurrence]').click();
      const input = second.locator('input[name=moveTo]');
      const shown = await input.inputValue();
      expect(shown.slice(11)).toBe('09:00');
      await input.fill(`${shown.slice(0, 11)}11:00`);
      await second.locator('[data-testid=save-occurrence]').click();
      await expect
        .poll(() => row.locator(`li[data-due="${secondDue}"]`).getAttribute('data-moved'), {
          timeout: 10_000,
        })
        .toBe('true');
      const moved = (await api<Listed>('/api/fleet/schedules')).schedules
        .find((x) => x.schedule.id === 'filter-check')!
        .occurrences.find((o) => o.dueAt === secondDue)!;
      expect(Date.parse(moved.moveTo!) - Date.parse(secondDue)).toBe(2 * 3_600_000);

      // Nothing of the section reaches past the phone's screen (the top bar is the overview's own).
      const past = (await page.evaluate(
        "[...document.querySelectorAll('[data-testid=fleet-schedules] *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth).length",
      )) as number;
      expect(past).toBe(0);
      const box = (await section.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a viewer, in Chinese, sees the schedules and the reason, with no buttons', async () => {
    const { context, page, pageErrors } = await newPage(browser, {
      locale: 'zh-CN',
      width: 390,
      height: 844,
    });
    try {
      await signInAndOpen(page, gw.httpUrl!, VIEWER, `fleet`);
      const section = page.locator('[data-testid=fleet-schedules]');
      await section.locator('[data-schedule=filter-check]').waitFor({ timeout: 20_000 });
      expect(await section.locator('h3').first().textContent()).toBe('维护计划');
      expect(await section.locator('[data-testid=schedule-exceptions]').textContent()).toContain('已跳过');
      expect(await section.locator('button').count()).toBe(0);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
