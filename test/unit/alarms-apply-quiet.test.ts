import { afterEach, describe, expect, it } from 'vitest';
import {
  ALARM_MIGRATIONS,
  AlarmError,
  AlarmService,
  alarmsSchema,
  type AlarmEvent,
  type Shelf,
} from '../../gateway/src/alarms/index.js';
import { buildShelf, buildWindow } from '../../gateway/src/alarms/quiet-requests.js';
import type { MaintenanceWindow } from '../../gateway/src/alarms/windows.js';
import type { Transition } from '../../gateway/src/rules/types.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const dbs: Db[] = [];

afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
});

async function setup(clock = { t: T0 }) {
  const db = openDb(':memory:', ALARM_MIGRATIONS);
  dbs.push(db);
  let n = 0;
  const svc = new AlarmService({
    db,
    config: alarmsSchema.parse({}),
    now: () => clock.t,
    newId: () => `id-${++n}`,
  });
  const events: AlarmEvent[] = [];
  svc.onEvent((e) => events.push(e));
  await svc.start();
  return { svc, events, clock };
}

function raise(device: string, ts = T0): Transition {
  return {
    type: 'raise',
    severity: 'critical',
    value: true,
    ts,
    message: 'smoke',
    deviceKey: `s1/${device}`,
    site: 's1',
    device,
    kind: 'env-probe',
    ruleId: 'smoke',
    ruleClass: 'safety',
    critical: false,
  };
}

/** A shelf as another instance set it (its own id and clock). */
const remoteShelf = (over: Partial<Shelf> = {}): Shelf => ({
  ...buildShelf({ site: 's1', untilMs: T0 + 30 * MIN, user: 'bob', reason: 'works' }, T0, 'remote-1'),
  ...over,
});

const remoteWindow = (over: Partial<MaintenanceWindow> = {}): MaintenanceWindow => ({
  ...buildWindow(
    {
      site: 's1',
      schedule: { type: 'once', fromMs: T0 - MIN, toMs: T0 + 60 * MIN },
      user: 'bob',
      reason: 'cleaning',
    },
    T0,
    'remote-w',
  ),
  ...over,
});

describe('shelf and window requests (buildShelf, buildWindow)', () => {
  it('refuse what the alarm service refused, with the same messages', () => {
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(AlarmError);
        return (err as AlarmError).message;
      }
      throw new Error('accepted');
    };
    expect(bad(() => buildShelf({ untilMs: T0 + MIN, user: 'u', reason: 'r' }, T0, 'x'))).toMatch(
      /site, device or rule/,
    );
    expect(bad(() => buildShelf({ site: 's', untilMs: T0, user: 'u', reason: 'r' }, T0, 'x'))).toMatch(
      /future/,
    );
    expect(bad(() => buildShelf({ site: 's', untilMs: T0 + 1, user: 'u', reason: '' }, T0, 'x'))).toMatch(
      /reason/,
    );
    const once = (fromMs: number, toMs: number) => ({ type: 'once' as const, fromMs, toMs });
    expect(bad(() => buildWindow({ schedule: once(T0, T0 + MIN), user: 'u', reason: 'r' }, T0, 'x'))).toMatch(
      /site, device, kind or rule/,
    );
    expect(
      bad(() => buildWindow({ site: 's', schedule: once(T0, T0), user: 'u', reason: 'r' }, T0, 'x')),
    ).toMatch(/^schedule:/);
    expect(
      bad(() =>
        buildWindow({ site: 's', schedule: once(T0 - 2 * MIN, T0 - MIN), user: 'u', reason: 'r' }, T0, 'x'),
      ),
    ).toMatch(/no occurrence/);
  });
});

describe('applyShelf (a shelf from any instance)', () => {
  it('holds back active and new alarms once, however often it is applied', async () => {
    const { svc, events } = await setup();
    svc.apply([raise('d1')]);
    const s = remoteShelf();
    expect(svc.applyShelf(s).map((e) => e.type)).toEqual(['shelve']);
    expect(svc.applyShelf(s)).toEqual([]);
    expect(svc.applyShelf({ ...s })).toEqual([]);
    expect(svc.listShelves()).toHaveLength(1);
    svc.apply([raise('d2')]);
    expect(svc.list({ state: 'active' }).every((a) => a.shelved)).toBe(true);
    expect(events.filter((e) => e.type === 'shelve')).toHaveLength(1);
  });

  it('an ended copy releases the alarms once and keeps who ended it', async () => {
    const { svc, clock } = await setup();
    svc.applyShelf(remoteShelf());
    svc.apply([raise('d1')]);
    clock.t += MIN;
    const ended = remoteShelf({ endedAt: clock.t, endedBy: 'carol', endedBySubject: 'iss#c' });
    expect(svc.applyShelf(ended).map((e) => [e.type, e.user])).toEqual([['unshelve', 'carol']]);
    expect(svc.applyShelf(ended)).toEqual([]);
    expect(svc.listShelves()).toEqual([]);
    expect(svc.listShelves(false)[0]).toMatchObject({
      id: 'remote-1',
      endedBy: 'carol',
      endedBySubject: 'iss#c',
    });
    expect(svc.list({ state: 'active' })[0]!.shelved).toBe(false);
  });

  it('a shelf already over when it arrives is only recorded; one ended here by time is not reopened', async () => {
    const { svc, clock } = await setup();
    svc.applyShelf(remoteShelf({ id: 'late', untilMs: T0 - 1 }));
    expect(svc.listShelves()).toEqual([]);
    expect(svc.listShelves(false).map((s) => s.id)).toEqual(['late']);
    svc.applyShelf(remoteShelf());
    clock.t = T0 + 31 * MIN;
    svc.tick();
    // The shared row still has no end (ended by time on every instance): applying it changes nothing.
    svc.applyShelf(remoteShelf());
    expect(svc.listShelves()).toEqual([]);
    expect(svc.listShelves(false).find((s) => s.id === 'remote-1')).toMatchObject({ endedBy: 'system' });
  });
  it('a stale copy read before an end made here does not open the shelf again', async () => {
    const { svc, clock } = await setup();
    const s = remoteShelf();
    svc.applyShelf(s);
    svc.apply([raise('d1')]);
    clock.t += MIN;
    // Ended through this instance while a sync was reading the rows as they were before.
    svc.applyShelf({ ...s, endedAt: clock.t, endedBy: 'carol' });
    expect(svc.applyShelf(s)).toEqual([]);
    expect(svc.listShelves()).toEqual([]);
    expect(svc.list({ state: 'active' })[0]!.shelved).toBe(false);
  });
});

describe('applyWindow (a window from any instance)', () => {
  it('suppresses new alarms; an ended copy releases them once', async () => {
    const { svc, clock } = await setup();
    const w = remoteWindow();
    expect(svc.applyWindow(w)).toEqual([]);
    expect(svc.applyWindow(w)).toEqual([]);
    expect(svc.listWindows()).toHaveLength(1);
    svc.apply([raise('d1')]);
    expect(svc.list({ state: 'active' })[0]).toMatchObject({ suppressed: true, windowId: 'remote-w' });
    clock.t += MIN;
    const ended = { ...w, endedAt: clock.t, endedBy: 'carol' };
    expect(svc.applyWindow(ended).map((e) => [e.type, e.user])).toEqual([['unsuppress', 'carol']]);
    expect(svc.applyWindow(ended)).toEqual([]);
    expect(svc.list({ state: 'active' })[0]!.suppressed).toBe(false);
    expect(svc.listWindows(true)[0]).toMatchObject({ id: 'remote-w', endedBy: 'carol' });
  });

  it('an end stamped a little ahead of this clock still releases at once', async () => {
    const { svc, clock } = await setup();
    svc.applyWindow(remoteWindow());
    svc.apply([raise('d1')]);
    const ahead = clock.t + 2_000;
    expect(svc.applyWindow(remoteWindow({ endedAt: ahead, endedBy: 'carol' })).map((e) => e.type)).toEqual([
      'unsuppress',
    ]);
  });

  it('a window first seen ended is recorded only', async () => {
    const { svc } = await setup();
    svc.applyWindow(remoteWindow({ endedAt: T0, endedBy: 'carol' }));
    expect(svc.listWindows()).toEqual([]);
    expect(svc.listWindows(true).map((w) => w.id)).toEqual(['remote-w']);
    svc.apply([raise('d1')]);
    expect(svc.list({ state: 'active' })[0]!.suppressed).toBe(false);
  });
});
