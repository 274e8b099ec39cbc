import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import {
  MaintenancePlanner,
  maintenanceSchema,
  nextCron,
  nextOccurrence,
  parseCron,
  scheduleSchema,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
  type MaintenanceTarget,
} from '../../gateway/src/workorders/index.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const utc = (s: string) => Date.parse(s);
const dirs: string[] = [];
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const TARGETS: MaintenanceTarget[] = [
  { site: 'estate-a', device: 'tank-1', kind: 'chlorination', location: 'roof' },
  { site: 'estate-a', device: 'tank-2', kind: 'chlorination' },
  { site: 'dc', device: 'room-1', kind: 'env-probe' },
  { site: 'dc', device: 'room-2', kind: 'env-probe' },
  { site: 'estate-a', device: 'gm-1', kind: 'gas-meter' },
];

function setup(
  file = ':memory:',
  clock = { t: utc('2026-01-01T00:00:00Z') },
  cfg: Record<string, unknown> = {},
) {
  const db = openDb(file, WORKORDER_MIGRATIONS);
  dbs.push(db);
  const config = workordersSchema.parse(cfg);
  const service = new WorkOrderService({ db, config, now: () => clock.t });
  const planner = new MaintenancePlanner({
    service,
    db,
    config: config.maintenance,
    targets: () => TARGETS,
    now: () => clock.t,
  });
  return { db, service, planner, clock };
}

describe('cron and schedule arithmetic (UTC)', () => {
  it('parses five fields with ranges, lists and steps; rejects bad ones', () => {
    const c = parseCron('*/15 8-10 1,15 * *');
    expect([...c.minutes]).toEqual([0, 15, 30, 45]);
    expect([...c.hours]).toEqual([8, 9, 10]);
    expect([...c.days]).toEqual([1, 15]);
    expect(() => parseCron('* * *')).toThrow(/5 fields/);
    expect(() => parseCron('60 * * * *')).toThrow(/minute/);
    expect(() => parseCron('* * * 13 *')).toThrow(/month/);
    expect(() => parseCron('x * * * *')).toThrow(/cannot read/);
  });

  it('finds the next match: daily, weekdays, day of month, either day field', () => {
    const t = utc('2026-03-04T09:30:00Z'); // a Wednesday
    expect(nextCron(parseCron('0 8 * * *'), t)).toBe(utc('2026-03-05T08:00:00Z'));
    expect(nextCron(parseCron('45 9 * * *'), t)).toBe(utc('2026-03-04T09:45:00Z'));
    expect(nextCron(parseCron('0 7 * * 1'), t)).toBe(utc('2026-03-09T07:00:00Z'));
    expect(nextCron(parseCron('0 7 * * 7'), t)).toBe(utc('2026-03-08T07:00:00Z'));
    expect(nextCron(parseCron('0 0 1 */3 *'), t)).toBe(utc('2026-04-01T00:00:00Z'));
    // Day of month 10 or any Friday, whichever comes first.
    expect(nextCron(parseCron('0 6 10 * 5'), t)).toBe(utc('2026-03-06T06:00:00Z'));
    expect(nextCron(parseCron('0 0 30 2 *'), t)).toBeUndefined();
  });

  it('every N days from the anchor, monthly on day D every M months', () => {
    const every10 = scheduleSchema.parse({ id: 'd', title: 't', kinds: ['k'], every: { days: 10 } });
    expect(nextOccurrence(every10, utc('2025-12-01T00:00:00Z'))).toBe(utc('2026-01-01T08:00:00Z'));
    expect(nextOccurrence(every10, utc('2026-01-01T08:00:00Z'))).toBe(utc('2026-01-11T08:00:00Z'));
    expect(nextOccurrence(every10, utc('2026-01-05T00:00:00Z'))).toBe(utc('2026-01-11T08:00:00Z'));
    const six = scheduleSchema.parse({ id: 'm', title: 't', kinds: ['k'], every: { months: 6, day: 15 } });
    expect(nextOccurrence(six, utc('2026-01-20T00:00:00Z'))).toBe(utc('2026-07-15T08:00:00Z'));
    expect(nextOccurrence(six, utc('2026-01-10T00:00:00Z'))).toBe(utc('2026-01-15T08:00:00Z'));
    const cron = scheduleSchema.parse({ id: 'c', title: 't', kinds: ['k'], every: { cron: '30 6 * * 1' } });
    expect(nextOccurrence(cron, utc('2026-03-04T09:30:00Z'))).toBe(utc('2026-03-09T06:30:00Z'));
    expect(
      scheduleSchema.safeParse({ id: 'c', title: 't', kinds: ['k'], every: { cron: '1 2 3' } }).success,
    ).toBe(false);
  });

  it('DOMAIN.md defaults: disinfection every 10 days with its form, cleaning 6-monthly, two monthly checks', () => {
    const d = maintenanceSchema.parse({});
    expect(d.schedules.map((s) => [s.id, s.every, s.form, s.per])).toEqual([
      ['tank-disinfection', { days: 10 }, 'disinfection', 'device'],
      ['tank-cleaning', { months: 6, day: 1 }, 'none', 'device'],
      ['fire-extinguisher-check', { months: 1, day: 1 }, 'none', 'site'],
      ['backup-check', { months: 1, day: 1 }, 'none', 'site'],
    ]);
  });
});

describe('schedules in a time zone', () => {
  const sched = (every: unknown, extra: Record<string, unknown> = {}) =>
    maintenanceSchema.parse({ schedules: [{ id: 's', title: 't', kinds: ['k'], every, ...extra }] })
      .schedules[0]!;

  it('days and months at a local hour, across daylight saving', () => {
    // Every 10 days at 08:00 in Shanghai (UTC+8): midnight UTC.
    const sh = sched({ days: 10 }, { timeZone: 'Asia/Shanghai' });
    expect(nextOccurrence(sh, utc('2025-12-01T00:00:00Z'))).toBe(utc('2026-01-01T00:00:00Z'));
    expect(nextOccurrence(sh, utc('2026-01-01T00:00:00Z'))).toBe(utc('2026-01-11T00:00:00Z'));
    // Daily at 08:00 in Berlin: 07:00 UTC in winter, 06:00 UTC from 29 March (summer time).
    const daily = sched({ days: 1 }, { timeZone: 'Europe/Berlin' });
    expect(nextOccurrence(daily, utc('2026-03-28T00:00:00Z'))).toBe(utc('2026-03-28T07:00:00Z'));
    expect(nextOccurrence(daily, utc('2026-03-28T07:00:00Z'))).toBe(utc('2026-03-29T06:00:00Z'));
    const monthly = sched({ months: 1, day: 1 }, { timeZone: 'Europe/Berlin', hour: 9 });
    expect(nextOccurrence(monthly, utc('2026-02-15T00:00:00Z'))).toBe(utc('2026-03-01T08:00:00Z'));
    expect(nextOccurrence(monthly, utc('2026-03-01T08:00:00Z'))).toBe(utc('2026-04-01T07:00:00Z'));
  });

  it('cron fields are local: weekday and hour in the zone, a time skipped by the clock change runs after it', () => {
    // Monday 07:00 in Shanghai is Sunday 23:00 UTC.
    const walk = sched({ cron: '0 7 * * 1' }, { timeZone: 'Asia/Shanghai' });
    expect(nextOccurrence(walk, utc('2026-03-04T09:30:00Z'))).toBe(utc('2026-03-08T23:00:00Z'));
    expect(nextCron(parseCron('0 7 * * 1'), utc('2026-03-04T09:30:00Z'), 'Asia/Shanghai')).toBe(
      utc('2026-03-08T23:00:00Z'),
    );
    // 02:30 does not exist in Berlin on 29 March 2026: that day it falls due at 03:30 CEST (01:30 UTC).
    const night = parseCron('30 2 * * *');
    expect(nextCron(night, utc('2026-03-28T12:00:00Z'), 'Europe/Berlin')).toBe(utc('2026-03-29T01:30:00Z'));
    expect(nextCron(night, utc('2026-03-29T01:30:00Z'), 'Europe/Berlin')).toBe(utc('2026-03-30T00:30:00Z'));
  });

  it('the zone of maintenance.timeZone applies to every schedule without its own; hourUtc only in UTC', () => {
    const m = maintenanceSchema.parse({ timeZone: 'Asia/Shanghai' });
    expect(m.schedules.map((s) => s.timeZone)).toEqual(Array(4).fill('Asia/Shanghai'));
    expect(nextOccurrence(m.schedules[0]!, utc('2025-12-31T00:00:00Z'))).toBe(utc('2026-01-01T00:00:00Z'));
    const r = maintenanceSchema.safeParse({
      timeZone: 'Asia/Shanghai',
      schedules: [
        { id: 'a', title: 't', kinds: ['k'], every: { days: 1 }, hourUtc: 1 },
        { id: 'b', title: 't', kinds: ['k'], every: { days: 1 }, hour: 1, hourUtc: 1, timeZone: 'UTC' },
        { id: 'c', title: 't', kinds: ['k'], every: { days: 1 }, timeZone: 'Mars/Base' },
      ],
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).sort()).toEqual([
      'schedules.0.hourUtc: the schedule runs in Asia/Shanghai: give its local hour as hour',
      'schedules.1.hourUtc: give hour or hourUtc, not both',
      'schedules.2.timeZone: must be an IANA time zone such as UTC or Asia/Shanghai',
    ]);
  });
});

describe('preventive maintenance planner', () => {
  it('a simulated quarter of the default schedules, ticked hourly', async () => {
    // Starts just before the first occurrences, so the quarter Jan–Mar holds all of them.
    const { service, planner, clock } = setup(':memory:', { t: utc('2025-12-31T23:00:00Z') });
    await service.start();
    await planner.start();
    expect(planner.tick()).toBe(0);
    const end = utc('2026-03-31T23:59:00Z');
    while (clock.t < end) {
      clock.t += HOUR;
      planner.tick();
      service.tick();
    }
    const all = service.list({ limit: 10_000 });
    const count = (rule: string) => all.filter((t) => t.rule === rule).length;
    // Every 10 days from 1 Jan 08:00: 1, 11, 21, 31 Jan, 10, 20 Feb, 2, 12, 22 Mar = 9 per tank, 2 tanks.
    expect(count('pm:tank-disinfection')).toBe(18);
    // 1 Jan (6-monthly, anchor January), per tank.
    expect(count('pm:tank-cleaning')).toBe(2);
    // Monthly per site with a server room (one site), Jan, Feb, Mar.
    expect(count('pm:fire-extinguisher-check')).toBe(3);
    expect(count('pm:backup-check')).toBe(3);
    expect(all).toHaveLength(26);
    const t1 = all.filter((t) => t.rule === 'pm:tank-disinfection' && t.device === 'tank-1');
    expect(t1.map((t) => new Date(t.maintenance!.dueAt).toISOString().slice(0, 10)).sort()).toEqual([
      '2026-01-01',
      '2026-01-11',
      '2026-01-21',
      '2026-01-31',
      '2026-02-10',
      '2026-02-20',
      '2026-03-02',
      '2026-03-12',
      '2026-03-22',
    ]);
    expect(t1[0]!.location).toBe('roof');
    const backup = all.find((t) => t.rule === 'pm:backup-check')!;
    expect(backup).toMatchObject({ site: 'dc', device: null, priority: 'medium' });
    const first = service.get(t1.at(-1)!.id)!;
    expect(first.responseDueAt).toBe(first.maintenance!.dueAt + 30 * MIN);
    expect(first.resolveDueAt).toBe(first.maintenance!.dueAt + DAY);
    // Nobody acted: every occurrence whose window has ended is missed, at the end of its window, once;
    // those still within it (the last disinfection, the March 22 one, ends on the 23rd) are not yet.
    for (const brief of all) {
      const t = service.get(brief.id)!;
      const missed = t.history.filter((h) => h.action === 'escalate' && h.data?.missed === true);
      if (t.resolveDueAt > end) {
        expect(missed, t.id).toEqual([]);
        expect(t.maintenance!.missedAt).toBeNull();
        continue;
      }
      expect(
        missed.map((h) => h.ts),
        t.id,
      ).toEqual([t.resolveDueAt]);
      expect(t.maintenance!.missedAt).toBe(t.resolveDueAt);
      expect(t.sla!.resolve).toEqual({ met: false, dueAt: t.resolveDueAt, priority: 'medium' });
    }
  });

  it('an occurrence not done by the end of its window is missed: one explicit escalation, then as any ticket', async () => {
    const { service, planner, clock } = setup(
      ':memory:',
      { t: utc('2025-12-31T23:00:00Z') },
      {
        contacts: [{ name: 'on-call' }, { name: 'supervisor' }],
        maintenance: {
          schedules: [
            {
              id: 'd',
              title: 'Disinfect',
              kinds: ['chlorination'],
              every: { days: 10 },
              form: 'disinfection',
            },
          ],
        },
      },
    );
    await service.start();
    await planner.start();
    planner.tick();
    clock.t = utc('2026-01-01T08:00:00Z');
    planner.tick();
    const [a, b] = service.list({}).sort((x, y) => x.id.localeCompare(y.id));
    // Both acknowledged in time: no response escalation. Tank 2 is disinfected within the window.
    clock.t = utc('2026-01-01T08:10:00Z');
    for (const t of [a!, b!]) {
      service.act(t.id, { action: 'acknowledge', actor: 'eve' });
      service.act(t.id, { action: 'assign', actor: 'eve', assignee: 'eve' });
      service.act(t.id, { action: 'start', actor: 'eve' });
    }
    clock.t = utc('2026-01-01T15:00:00Z');
    service.act(b!.id, {
      action: 'resolve',
      actor: 'eve',
      form: { disinfectedAt: '2026-01-01T14:30:00Z', amount: 2, unit: 'kg' },
    });
    expect(service.tick(utc('2026-01-02T07:59:59Z'))).toEqual([]);
    // The window (24 h) ends at 08:00 on the 2nd: tank 1's occurrence is missed.
    const [e] = service.tick(utc('2026-01-02T08:00:00Z'));
    expect(e!.ticket.id).toBe(a!.id);
    expect(e!.entries).toHaveLength(1);
    expect(e!.entries[0]).toMatchObject({
      action: 'escalate',
      ts: utc('2026-01-02T08:00:00Z'),
      note: 'preventive maintenance d due 2026-01-01T08:00:00.000Z missed: not done by 2026-01-02T08:00:00.000Z: escalated to level 1 (on-call)',
      data: { kind: 'resolve', level: 1, missed: true },
    });
    expect(service.get(a!.id)!.maintenance!.missedAt).toBe(utc('2026-01-02T08:00:00Z'));
    // Still not done a day later: it escalates on like any other ticket, without a second "missed".
    const [again] = service.tick(utc('2026-01-02T12:00:00Z'));
    expect(again!.entries[0]!.data).toEqual({ kind: 'resolve', level: 2, contact: { name: 'supervisor' } });
    expect(service.get(b!.id)!.maintenance!.missedAt).toBeNull();
    expect(service.get(b!.id)!.escalationLevel).toBe(0);
  });

  it('tank disinfection is resolved only with its completion form (time and amount of disinfectant)', async () => {
    const { service, planner, clock } = setup(':memory:', { t: utc('2025-12-31T23:00:00Z') });
    await service.start();
    await planner.start();
    planner.tick();
    clock.t = utc('2026-01-01T08:00:00Z');
    planner.tick();
    const t = service.list({}).find((x) => x.device === 'tank-1' && x.rule === 'pm:tank-disinfection')!;
    service.act(t.id, { action: 'acknowledge', actor: 'eve' });
    service.act(t.id, { action: 'assign', actor: 'eve', assignee: 'eve' });
    service.act(t.id, { action: 'start', actor: 'eve' });
    expect(() => service.act(t.id, { action: 'resolve', actor: 'eve' })).toThrow(/disinfection form/);
    expect(() =>
      service.act(t.id, {
        action: 'resolve',
        actor: 'eve',
        form: { disinfectedAt: 'yesterday', amount: 1, unit: 'kg' },
      }),
    ).toThrow(/disinfectedAt/);
    expect(() =>
      service.act(t.id, {
        action: 'resolve',
        actor: 'eve',
        form: { disinfectedAt: '2026-01-01T09:30:00Z', amount: 0, unit: 'kg' },
      }),
    ).toThrow(/amount/);
    expect(service.get(t.id)!.status).toBe('in_progress');
    const r = service.act(t.id, {
      action: 'resolve',
      actor: 'eve',
      form: { disinfectedAt: '2026-01-01T09:30:00+08:00', amount: 1.5, unit: 'kg', disinfectant: '消毒灵' },
    });
    expect(r.status).toBe('resolved');
    expect(r.maintenance!.record).toEqual({
      form: 'disinfection',
      disinfectedAt: '2026-01-01T01:30:00.000Z',
      amount: 1.5,
      unit: 'kg',
      disinfectant: '消毒灵',
    });
    expect(r.history.at(-1)!.data).toMatchObject({ form: { amount: 1.5 } });
    // Schedules without a form resolve as usual.
    const c = service.list({}).find((x) => x.rule === 'pm:backup-check')!;
    service.act(c.id, { action: 'acknowledge', actor: 'eve' });
    service.act(c.id, { action: 'assign', actor: 'eve', assignee: 'eve' });
    service.act(c.id, { action: 'start', actor: 'eve' });
    expect(service.act(c.id, { action: 'resolve', actor: 'eve' }).status).toBe('resolved');
  });

  it('a restart neither loses nor repeats an occurrence; those missed while down are raised', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wo-pm-'));
    dirs.push(dir);
    const file = join(dir, 'workorders.db');
    const clock = { t: utc('2025-12-31T23:00:00Z') };
    const only = {
      maintenance: {
        schedules: [{ id: 'd', title: 'Disinfect', kinds: ['chlorination'], every: { days: 10 } }],
      },
    };
    const one = setup(file, clock, only);
    await one.service.start();
    await one.planner.start();
    one.planner.tick();
    clock.t = utc('2026-01-01T08:00:00Z');
    expect(one.planner.tick()).toBe(2);
    expect(one.planner.tick()).toBe(0);
    await one.planner.stop();
    await one.service.stop();
    one.db.close();

    // Down from 1 Jan to 25 Jan: the 11 and 21 Jan occurrences are raised at start, once.
    clock.t = utc('2026-01-25T00:00:00Z');
    const two = setup(file, clock, only);
    await two.service.start();
    await two.planner.start();
    expect(two.planner.tick()).toBe(4);
    expect(two.planner.tick()).toBe(0);
    const due = two.service
      .list({ device: 'tank-1' })
      .map((t) => new Date(t.maintenance!.dueAt).toISOString().slice(0, 10))
      .sort();
    expect(due).toEqual(['2026-01-01', '2026-01-11', '2026-01-21']);
    expect(two.planner.health()).toMatchObject({ state: 'ok', tracked: 2, raised: 4 });
  });
});
