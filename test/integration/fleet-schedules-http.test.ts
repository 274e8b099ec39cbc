import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';

/**
 * Maintenance schedules from the API against a running gateway (docs/fleet.md): an engineer
 * creates a schedule, moves one occurrence and skips others with a reason; the planner (run with
 * a clock three weeks ahead) raises exactly the work orders that follow, without a restart.
 */
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const ENGINEER = 'engineer-token-0123';
const VIEWER = 'viewer-token-0123';
let gw: Awaited<ReturnType<typeof startGateway>>;

async function call(method: string, path: string, token: string, body?: unknown) {
  const res = await fetch(`${gw.httpUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

const issuePaths = (json: Record<string, unknown>) =>
  ((json.error as { issues?: { path: string }[] }).issues ?? []).map((i) => i.path);
const iso = (ms: number) => new Date(ms).toISOString();

// The first occurrence: 09:00 UTC the day after tomorrow (never passed while the test runs).
const d0 = Math.floor(Date.now() / DAY) * DAY + 2 * DAY + 9 * HOUR;
const schedule = {
  id: 'filter-check',
  title: 'Check the chlorinator filters',
  kinds: ['chlorination'],
  every: { days: 7 },
  hour: 9,
  anchor: iso(d0 - 9 * HOUR),
  windowHours: 48,
};

beforeAll(async () => {
  gw = await startGateway(
    testConfig({
      influx: { enabled: false },
      http: {
        tokens: [
          { name: 'erin', role: 'engineer', token: ENGINEER },
          { name: 'vera', role: 'viewer', token: VIEWER },
        ],
      },
      devices: [
        { site: 'plant', id: 'tank-1', kind: 'chlorination', critical: false },
        { site: 'plant', id: 'tank-2', kind: 'chlorination', critical: false },
      ],
      // Only the schedules made here: the default ones would add their own work orders.
      workorders: { maintenance: { schedules: [] } },
    }),
  );
}, 60_000);
afterAll(async () => {
  await gw?.cleanup();
});

type Ticket = {
  site: string;
  device: string | null;
  maintenance: { schedule: string; dueAt: string } | null;
};

describe('maintenance schedules at runtime', () => {
  it('creates a schedule, moves one occurrence, skips others with a reason: the work orders follow', async () => {
    expect((await call('PUT', '/api/fleet/schedules', VIEWER, schedule)).status).toBe(403);
    const put = await call('PUT', '/api/fleet/schedules', ENGINEER, { ...schedule, note: 'new filters' });
    expect(put.status).toBe(200);

    const list = await call('GET', '/api/fleet/schedules?count=4', VIEWER);
    expect(list.status).toBe(200);
    const mine = (
      list.json.schedules as { schedule: { id: string }; origin: string; next: { dueAt: string }[] }[]
    ).find((s) => s.schedule.id === 'filter-check')!;
    expect(mine.origin).toBe('database');
    expect(mine.next.map((n) => n.dueAt)).toEqual([0, 7, 14, 21].map((k) => iso(d0 + k * DAY)));

    // The planner starts the new series at its next occurrence.
    gw.maintenance!.tick(Date.now());

    // The second occurrence a day and three hours later, for every tank.
    const movedTo = d0 + 8 * DAY + 3 * HOUR;
    expect(
      (
        await call('POST', '/api/fleet/schedules/filter-check/move', VIEWER, {
          dueAt: iso(d0 + 7 * DAY),
          to: iso(movedTo),
        })
      ).status,
    ).toBe(403);
    const move = await call('POST', '/api/fleet/schedules/filter-check/move', ENGINEER, {
      dueAt: iso(d0 + 7 * DAY),
      to: iso(movedTo),
      note: 'contractor comes on the Thursday',
    });
    expect(move.status).toBe(200);
    // The third one skipped everywhere, the first one for tank-2 only.
    const skip = await call('POST', '/api/fleet/schedules/filter-check/skip', ENGINEER, {
      dueAt: iso(d0 + 14 * DAY),
      reason: 'plant shut down for the holiday',
    });
    expect(skip.status).toBe(200);
    const skipOne = await call('POST', '/api/fleet/schedules/filter-check/skip', ENGINEER, {
      dueAt: iso(d0),
      site: 'plant',
      device: 'tank-2',
      reason: 'tank-2 drained for repair',
    });
    expect(skipOne.status).toBe(200);

    // The calendar shows the moved occurrence at its new time and no skipped one.
    const cal = await call(
      'GET',
      `/api/maintenance/calendar?from=${iso(d0 - DAY)}&to=${iso(d0 + 16 * DAY)}`,
      VIEWER,
    );
    const planned = (cal.json.occurrences as { schedule: string; device: string; dueAt: string }[])
      .filter((o) => o.schedule === 'filter-check')
      .map((o) => `${o.device} ${o.dueAt}`)
      .sort();
    expect(planned).toEqual([`tank-1 ${iso(d0)}`, `tank-1 ${iso(movedTo)}`, `tank-2 ${iso(movedTo)}`].sort());

    // Three weeks on: the work orders raised are exactly those that follow.
    gw.maintenance!.tick(d0 + 21 * DAY + HOUR);
    const tickets = (await call('GET', '/api/tickets?limit=1000', VIEWER)).json.tickets as Ticket[];
    const raised = tickets
      .filter((t) => t.maintenance?.schedule === 'filter-check')
      .map((t) => `${t.device} ${t.maintenance!.dueAt}`)
      .sort();
    expect(raised).toEqual(
      [
        `tank-1 ${iso(d0)}`,
        `tank-1 ${iso(movedTo)}`,
        `tank-1 ${iso(d0 + 21 * DAY)}`,
        `tank-2 ${iso(movedTo)}`,
        `tank-2 ${iso(d0 + 21 * DAY)}`,
      ].sort(),
    );
    // Raised once: another tick raises nothing more.
    expect(gw.maintenance!.tick(d0 + 21 * DAY + 2 * HOUR)).toBe(0);

    // The skips are kept and shown with their reason and who set them; the history audits them.
    const after = (await call('GET', '/api/fleet/schedules', VIEWER)).json.schedules as {
      schedule: { id: string };
      occurrences: { dueAt: string; skip?: string; moveTo?: string; device?: string; by: string }[];
    }[];
    const occ = after.find((s) => s.schedule.id === 'filter-check')!.occurrences;
    expect(occ.map((o) => [o.dueAt, o.skip ?? null, o.moveTo ?? null, o.device ?? null, o.by])).toEqual([
      [iso(d0), 'tank-2 drained for repair', null, 'tank-2', 'erin'],
      [iso(d0 + 7 * DAY), null, iso(movedTo), null, 'erin'],
      [iso(d0 + 14 * DAY), 'plant shut down for the holiday', null, null, 'erin'],
    ]);
    const h = await call('GET', '/api/fleet/history?entity=pm-occurrence', VIEWER);
    const changes = h.json.changes as { actor: string; key: string; note: string | null; before: unknown }[];
    expect(changes).toHaveLength(3);
    expect(changes.every((c) => c.actor === 'erin' && c.before === null)).toBe(true);
    expect(changes.map((c) => c.note)).toContain('plant shut down for the holiday');
  });

  it('refuses bad input with the field path, and a viewer', async () => {
    const bad = async (method: string, path: string, body: unknown, field: string) => {
      const r = await call(method, path, ENGINEER, body);
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      expect(issuePaths(r.json)).toContain(field);
    };
    await bad('PUT', '/api/fleet/schedules', { ...schedule, id: 'tank-wash', hour: 25 }, 'body.hour');
    await bad(
      'PUT',
      '/api/fleet/schedules',
      { ...schedule, id: 'tank-wash', timeZone: 'Mars/Olympus' },
      'body.timeZone',
    );
    await bad(
      'PUT',
      '/api/fleet/schedules',
      { ...schedule, id: 'tank-wash', every: { cron: '61 * * * *' } },
      'body.every.cron',
    );
    await bad('POST', '/api/fleet/schedules/filter-check/skip', { dueAt: iso(d0 + 28 * DAY) }, 'body.reason');
    await bad(
      'POST',
      '/api/fleet/schedules/filter-check/skip',
      { dueAt: iso(d0 + 28 * DAY), reason: '  ' },
      'body.reason',
    );
    // Not a time the series has, and a time that has passed.
    await bad(
      'POST',
      '/api/fleet/schedules/filter-check/move',
      { dueAt: iso(d0 + 28 * DAY + HOUR), to: iso(d0 + 29 * DAY) },
      'body.dueAt',
    );
    await bad(
      'POST',
      '/api/fleet/schedules/filter-check/move',
      { dueAt: iso(d0 + 28 * DAY), to: iso(Date.now() - DAY) },
      'body.moveTo',
    );
    const unknown = await call('POST', '/api/fleet/schedules/no-such/skip', ENGINEER, {
      dueAt: iso(d0),
      reason: 'x',
    });
    expect(unknown.status).toBe(400);
    expect(issuePaths(unknown.json)).toContain('body.schedule');
    expect((await call('POST', '/api/fleet/schedules/filter-check/retire', VIEWER, {})).status).toBe(403);
    expect(
      (
        await call('POST', '/api/fleet/schedules/filter-check/skip', VIEWER, {
          dueAt: iso(d0 + 28 * DAY),
          reason: 'x',
        })
      ).status,
    ).toBe(403);
  });

  it('retires a schedule (kept, no more work orders) and restores it from the history', async () => {
    const retire = await call('POST', '/api/fleet/schedules/filter-check/retire', ENGINEER, {
      note: 'filters replaced',
    });
    expect(retire.status).toBe(200);
    const listed = (await call('GET', '/api/fleet/schedules', VIEWER)).json.schedules as {
      schedule: { id: string };
      retired: boolean;
      next: unknown[];
    }[];
    const s = listed.find((x) => x.schedule.id === 'filter-check')!;
    expect([s.retired, s.next]).toEqual([true, []]);
    expect(gw.maintenance!.tick(d0 + 60 * DAY)).toBe(0);
    const id = (retire.json.change as { id: number }).id;
    // Schedules are the engineer's: an engineer may put one back.
    expect((await call('POST', `/api/fleet/history/${id}/restore`, ENGINEER)).status).toBe(200);
    const back = (await call('GET', '/api/fleet/schedules', ADMIN_TOKEN)).json.schedules as {
      schedule: { id: string };
      retired: boolean;
    }[];
    expect(back.find((x) => x.schedule.id === 'filter-check')!.retired).toBe(false);
  });
});
