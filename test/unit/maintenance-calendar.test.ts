import { describe, expect, it } from 'vitest';
import { openDb } from '../../gateway/src/storage/db.js';
import {
  maintenanceCalendar,
  MaintenancePlanner,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
} from '../../gateway/src/workorders/index.js';

const DAY = 86_400_000;

describe('maintenance calendar', () => {
  it('lists raised occurrences with their ticket and status, then those to come, by due time', async () => {
    const clock = { t: Date.UTC(2026, 0, 1) };
    const db = openDb(':memory:', WORKORDER_MIGRATIONS);
    const cfg = workordersSchema.parse({});
    const svc = new WorkOrderService({ db, config: cfg, now: () => clock.t });
    const planner = new MaintenancePlanner({
      service: svc,
      db,
      config: cfg.maintenance,
      targets: () => [{ site: 'estate', device: 'tank-1', kind: 'chlorination' }],
      now: () => clock.t,
    });
    await svc.start();
    await planner.start();
    planner.tick(); // learns the next due time: no backfill
    clock.t = Date.UTC(2026, 0, 25);
    planner.tick(); // raises Jan 1, 11 and 21 (every 10 days from Jan 1, 08:00 UTC)
    const from = Date.UTC(2026, 0, 1);
    const to = Date.UTC(2026, 1, 15);
    const cal = maintenanceCalendar(svc.maintenanceDue(from, to), planner.upcoming(from, to), (id) =>
      planner.titleOf(id),
    );
    const tank = cal.filter((e) => e.schedule === 'tank-disinfection');
    expect(tank.map((e) => new Date(e.dueAt).toISOString().slice(0, 10))).toEqual([
      '2026-01-01',
      '2026-01-11',
      '2026-01-21',
      '2026-01-31',
      '2026-02-10',
    ]);
    expect(tank[0]).toMatchObject({
      site: 'estate',
      device: 'tank-1',
      status: 'open',
      form: 'disinfection',
      title: 'Disinfect the water tank',
    });
    expect(tank[0]!.ticketId).toMatch(/^WO-/);
    expect(tank[2]!.ticketId).toMatch(/^WO-/);
    expect(tank[3]).toMatchObject({ ticketId: null, status: null });
    expect(tank[4]!.dueAt - tank[3]!.dueAt).toBe(10 * DAY);
  });
});
