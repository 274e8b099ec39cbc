import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import {
  MaintenancePlanner,
  maintenanceSchema,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
  type MaintenanceTarget,
} from '../../gateway/src/workorders/index.js';

/** Moved and skipped occurrences in the planner, its live config and a restart (SQLite on disk). */
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-03-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const TARGETS: MaintenanceTarget[] = [
  { site: 'plant', device: 'tank-1', kind: 'chlorination' },
  { site: 'plant', device: 'tank-2', kind: 'chlorination' },
];
// Every 7 days at 08:00 UTC from 2026-03-02.
const weekly = {
  id: 'filter-check',
  title: 'Check the filters',
  kinds: ['chlorination'],
  every: { days: 7 },
  anchor: '2026-03-02T00:00:00Z',
};
const d0 = Date.parse('2026-03-02T08:00:00Z');

function maintenance(occurrences: unknown[] = [], schedule: Record<string, unknown> = weekly) {
  return maintenanceSchema.parse({ schedules: [schedule], occurrences });
}

function planner(file: string, config = maintenance()) {
  const db = openDb(file, WORKORDER_MIGRATIONS);
  dbs.push(db);
  const service = new WorkOrderService({ db, config: workordersSchema.parse({}), now: () => T0 });
  const p = new MaintenancePlanner({ service, db, config, targets: () => TARGETS, now: () => T0 });
  return { db, service, p };
}

const raised = (service: WorkOrderService) =>
  service
    .list({ limit: 1000 })
    .map((t) => `${t.device} ${iso(t.maintenance!.dueAt)}`)
    .sort();

describe('moved and skipped occurrences', () => {
  it('a skip raises nothing, a move raises once at its new time, across a restart; the most specific applies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fgw-pm-'));
    dirs.push(dir);
    const file = join(dir, 'workorders.db');
    const movedTo = d0 + 7 * DAY + 30 * HOUR;
    const config = maintenance([
      { schedule: 'filter-check', dueAt: iso(d0), skip: 'drained', site: 'plant', device: 'tank-2' },
      { schedule: 'filter-check', dueAt: iso(d0 + 7 * DAY), moveTo: iso(movedTo) },
      // tank-1 keeps the week-3 occurrence although every other asset skips it.
      { schedule: 'filter-check', dueAt: iso(d0 + 14 * DAY), skip: 'holiday' },
      {
        schedule: 'filter-check',
        dueAt: iso(d0 + 14 * DAY),
        moveTo: iso(d0 + 15 * DAY),
        site: 'plant',
        device: 'tank-1',
      },
    ]);
    const a = planner(file, config);
    await a.service.start();
    await a.p.start();
    a.p.tick(T0);
    // The calendar: moved at its new time, skipped ones left out.
    expect(
      a.p
        .upcoming(T0, d0 + 16 * DAY)
        .map((u) => `${u.device} ${iso(u.dueAt)}`)
        .sort(),
    ).toEqual(
      [
        `tank-1 ${iso(d0)}`,
        `tank-1 ${iso(movedTo)}`,
        `tank-2 ${iso(movedTo)}`,
        `tank-1 ${iso(d0 + 15 * DAY)}`,
      ].sort(),
    );
    expect(a.p.tick(d0 + 8 * DAY + 7 * HOUR)).toBe(3); // tank-1 week 1, both moved
    a.db.close();

    // A restart: the moved occurrence is not raised again.
    const b = planner(file, config);
    await b.service.start();
    await b.p.start();
    expect(b.p.tick(d0 + 16 * DAY)).toBe(1); // tank-1's moved week 3 only
    expect(raised(b.service)).toEqual(
      [
        `tank-1 ${iso(d0)}`,
        `tank-1 ${iso(movedTo)}`,
        `tank-2 ${iso(movedTo)}`,
        `tank-1 ${iso(d0 + 15 * DAY)}`,
      ].sort(),
    );
    expect(b.p.health()).toMatchObject({ raised: 1, skipped: 1 });
  });

  it('setConfig: a schedule retired and back, or retimed, starts again from its next occurrence', async () => {
    const { p, service } = planner(':memory:');
    await p.start();
    p.tick(T0);
    // Retired for three weeks: nothing raised, and nothing backfilled when it comes back.
    p.setConfig(maintenanceSchema.parse({ schedules: [] }));
    expect(p.tick(d0 + 20 * DAY)).toBe(0);
    p.setConfig(maintenance());
    expect(p.tick(d0 + 20 * DAY)).toBe(0);
    expect(p.tick(d0 + 21 * DAY)).toBe(2);
    // Retimed to 10:00: the next occurrence is the new series' own.
    p.setConfig(maintenance([], { ...weekly, hour: 10 }));
    expect(p.tick(d0 + 28 * DAY)).toBe(0);
    expect(p.tick(d0 + 28 * DAY + 2 * HOUR)).toBe(2);
    // A changed title keeps the series where it was.
    p.setConfig(maintenance([], { ...weekly, hour: 10, title: 'Filters' }));
    expect(p.tick(d0 + 35 * DAY + 2 * HOUR)).toBe(2);
    expect(raised(service)).toHaveLength(6);
  });

  it('a new asset or a fresh series does not raise moves made before it was tracked', async () => {
    const targets: MaintenanceTarget[] = [TARGETS[0]!];
    const db = openDb(':memory:', WORKORDER_MIGRATIONS);
    dbs.push(db);
    const service = new WorkOrderService({ db, config: workordersSchema.parse({}), now: () => T0 });
    const config = maintenance([
      { schedule: 'filter-check', dueAt: iso(d0 + 7 * DAY), moveTo: iso(d0 + 8 * DAY) },
      // Written into the file later, for an occurrence before tank-3 was tracked.
      { schedule: 'filter-check', dueAt: iso(d0 + 70 * DAY), moveTo: iso(d0 + 400 * DAY) },
    ]);
    const p = new MaintenancePlanner({ service, db, config, targets: () => targets, now: () => T0 });
    await p.start();
    p.tick(T0);
    expect(p.tick(d0 + 8 * DAY)).toBe(2); // tank-1 week 1 and its moved week 2
    // A tank added more than a year later: nothing of the old move, at once or later.
    targets.push({ site: 'plant', device: 'tank-3', kind: 'chlorination' });
    const later = d0 + 380 * DAY;
    expect(
      p
        .upcoming(later, later + 30 * DAY, later)
        .filter((u) => u.device === 'tank-3' && u.dueAt === d0 + 400 * DAY),
    ).toEqual([]);
    const before = raised(service).length;
    p.tick(later);
    p.tick(d0 + 401 * DAY);
    const tank3 = raised(service)
      .slice(before)
      .concat(raised(service))
      .filter((r) => r.startsWith('tank-3'));
    expect(tank3.filter((r) => Date.parse(r.split(' ')[1]!) < later)).toEqual([]);
    expect(tank3).not.toContain(`tank-3 ${iso(d0 + 400 * DAY)}`);
    // A restart keeps that: the moves stay done for tank-3.
    const b = new MaintenancePlanner({ service, db, config, targets: () => targets, now: () => T0 });
    await b.start();
    b.setConfig(config);
    expect(b.tick(d0 + 401 * DAY)).toBe(0);
    // The retimed series starts afresh: old moves are not raised for it either.
    const n = raised(service).length;
    b.setConfig(maintenance(config.occurrences, { ...weekly, hour: 10 }));
    b.tick(d0 + 402 * DAY);
    expect(raised(service).length).toBe(n);
  });

  it('the file schema refuses an exception without a reason, of an unknown schedule, or twice the same', () => {
    const bad = (o: unknown[]) =>
      maintenanceSchema
        .safeParse({ schedules: [weekly], occurrences: o })
        .error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(bad([{ schedule: 'filter-check', dueAt: iso(d0), skip: ' ' }])).toEqual([
      'occurrences.0.skip: give the reason',
    ]);
    expect(bad([{ schedule: 'filter-check', dueAt: iso(d0) }])).toEqual([
      'occurrences.0.skip: give exactly one of skip (a reason) or moveTo',
    ]);
    expect(bad([{ schedule: 'nope', dueAt: iso(d0), skip: 'x' }])).toEqual([
      'occurrences.0.schedule: no schedule nope',
    ]);
    const twice = { schedule: 'filter-check', dueAt: iso(d0), skip: 'x' };
    expect(bad([twice, { ...twice, dueAt: '2026-03-02T16:00:00+08:00' }])?.[0]).toMatch(
      /^occurrences\.1\.dueAt: duplicate/,
    );
  });
});
