import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ALARM_MIGRATIONS,
  AlarmService,
  alarmsSchema,
  alarmToJson,
  type AlarmEvent,
} from '../../gateway/src/alarms/index.js';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { parseRules } from '../../gateway/src/rules/schema.js';
import type { Transition } from '../../gateway/src/rules/types.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const dbs: Db[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(file = ':memory:', clock = { t: T0 }) {
  const db = openDb(file, ALARM_MIGRATIONS);
  dbs.push(db);
  let n = 0;
  const prefix = file === ':memory:' ? 'id' : `id${dbs.length}`;
  const svc = new AlarmService({
    db,
    config: alarmsSchema.parse({}),
    now: () => clock.t,
    newId: () => `${prefix}-${++n}`,
  });
  const events: AlarmEvent[] = [];
  svc.onEvent((e) => events.push(e));
  return { db, svc, events, clock };
}

function tr(p: Partial<Transition> & { at?: number }): Transition {
  const { at = 0, ...rest } = p;
  return {
    type: 'raise',
    severity: 'warning',
    value: 1,
    ts: T0 + at * MIN,
    message: 'm',
    deviceKey: `${p.site ?? 's1'}/${p.device ?? 'd1'}`,
    site: 's1',
    device: 'd1',
    kind: 'env-probe',
    ruleId: 'r1',
    ruleClass: 'key',
    critical: false,
    ...rest,
  };
}

describe('alarm lifecycle', () => {
  it('active-unacknowledged → active-acknowledged → cleared', async () => {
    const { svc, events } = setup();
    await svc.start();
    svc.apply([tr({})]);
    const [a] = svc.list({ state: 'active' });
    expect(a).toMatchObject({
      state: 'active-unacknowledged',
      severity: 'warning',
      rule: 'r1',
      device: 'd1',
    });
    svc.ack(a!.id, 'alice', 'on it');
    expect(svc.get(a!.id)).toMatchObject({
      state: 'active-acknowledged',
      acknowledgedBy: 'alice',
      ackNote: 'on it',
    });
    svc.apply([tr({ type: 'clear', at: 5 })]);
    expect(svc.get(a!.id)).toMatchObject({ state: 'cleared', clearedAt: T0 + 5 * MIN });
    expect(svc.list({ state: 'active' })).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['raise', 'ack', 'clear']);
    expect(svc.history(a!.id).map((e) => e.type)).toEqual(['raise', 'ack', 'clear']);
  });

  it('cleared before acknowledgement stays visible as cleared-unacknowledged until acked', async () => {
    const { svc } = setup();
    await svc.start();
    svc.apply([tr({}), tr({ type: 'clear', at: 1 })]);
    const [a] = svc.list({ state: 'active' });
    expect(a?.state).toBe('cleared-unacknowledged');
    svc.ack(a!.id, 'bob');
    expect(svc.get(a!.id)?.state).toBe('cleared');
    expect(svc.list({ state: 'active' })).toEqual([]);
    expect(svc.list({ state: 'all' })).toHaveLength(1);
  });

  it('severity rises on the same alarm; repeated raises never make a second one', async () => {
    const { svc, events } = setup();
    await svc.start();
    svc.apply([tr({}), tr({ at: 1 })]);
    const id = svc.list({ state: 'active' })[0]!.id;
    svc.ack(id, 'alice');
    svc.apply([tr({ type: 'escalate', severity: 'critical', at: 2 }), tr({ severity: 'critical', at: 3 })]);
    const all = svc.list({ state: 'all' });
    expect(all).toHaveLength(1);
    // A worse condition needs attention again.
    expect(all[0]).toMatchObject({ id, severity: 'critical', state: 'active-unacknowledged' });
    expect(events.map((e) => e.type)).toEqual(['raise', 'ack', 'escalate']);
  });

  it('a raise after a clear is a new alarm; acks report 404 and 409', async () => {
    const { svc } = setup();
    await svc.start();
    svc.apply([tr({}), tr({ type: 'clear', at: 1 }), tr({ at: 2 })]);
    const all = svc.list({ state: 'all' });
    expect(all.map((a) => a.state)).toEqual(['active-unacknowledged', 'cleared-unacknowledged']);
    expect(() => svc.ack('nope', 'a')).toThrow(expect.objectContaining({ status: 404 }));
    svc.ack(all[0]!.id, 'a');
    expect(() => svc.ack(all[0]!.id, 'a')).toThrow(expect.objectContaining({ status: 409 }));
  });

  it('JSON per CONTRACT.md', async () => {
    const { svc } = setup();
    await svc.start();
    svc.apply([tr({ value: 0.04 })]);
    const j = alarmToJson(svc.list({ state: 'active' })[0]!);
    expect(j).toMatchObject({
      id: 'id-1',
      device: 'd1',
      site: 's1',
      rule: 'r1',
      severity: 'warning',
      state: 'active-unacknowledged',
      value: 0.04,
      raisedAt: '2026-01-01T00:00:00.000Z',
      clearedAt: null,
      shelved: false,
      class: 'key',
    });
  });

  it('filters by site and device', async () => {
    const { svc } = setup();
    await svc.start();
    svc.apply([tr({}), tr({ device: 'd2' }), tr({ site: 's2' })]);
    expect(svc.list({ state: 'active', device: 'd2' })).toHaveLength(1);
    expect(svc.list({ state: 'all', site: 's2' })).toHaveLength(1);
    expect(svc.list({ state: 'active', site: 's1' })).toHaveLength(2);
  });
});

describe('shelving', () => {
  it('records what happens meanwhile, flagged shelved, and announces active alarms when it ends', async () => {
    const { svc, events, clock } = setup();
    await svc.start();
    svc.apply([tr({ ruleId: 'other' })]);
    const shelf = svc.shelve({ device: 'd1', untilMs: T0 + 60 * MIN, user: 'eve', reason: 'maintenance' });
    expect(events.at(-1)).toMatchObject({
      type: 'shelve',
      user: 'eve',
      alarm: { rule: 'other', shelved: true },
    });
    svc.apply([tr({ at: 10 }), tr({ device: 'd2', at: 10 })]);
    const byDevice = Object.fromEntries(
      svc.list({ state: 'active' }).map((a) => [`${a.device}/${a.rule}`, a.shelved]),
    );
    expect(byDevice).toEqual({ 'd1/r1': true, 'd1/other': true, 'd2/r1': false });
    clock.t = T0 + 59 * MIN;
    expect(svc.tick()).toEqual([]);
    clock.t = T0 + 60 * MIN;
    const ev = svc.tick();
    expect(ev.map((e) => [e.type, e.alarm.rule])).toEqual(
      expect.arrayContaining([
        ['unshelve', 'other'],
        ['unshelve', 'r1'],
      ]),
    );
    expect(svc.listShelves()).toEqual([]);
    expect(svc.listShelves(false)[0]).toMatchObject({ id: shelf.id, endedBy: 'system' });
    svc.apply([tr({ ruleId: 'r3', at: 61 })]);
    expect(svc.list({ state: 'active' }).find((a) => a.rule === 'r3')?.shelved).toBe(false);
  });

  it('shelves a rule across sites, and can end early', async () => {
    const { svc } = setup();
    await svc.start();
    const s = svc.shelve({ rule: 'r1', untilMs: T0 + 60 * MIN, user: 'eve', reason: 'sensor swap' });
    svc.apply([tr({}), tr({ site: 's2' }), tr({ ruleId: 'r2' })]);
    expect(svc.list({ state: 'active' }).filter((a) => a.shelved)).toHaveLength(2);
    svc.unshelve(s.id, 'eve');
    expect(svc.list({ state: 'active' }).filter((a) => a.shelved)).toHaveLength(0);
    expect(() => svc.shelve({ untilMs: T0 + MIN, user: 'x', reason: 'y' })).toThrow(/site, device or rule/);
  });
});

describe('grouping into incidents', () => {
  const raises = (n: number, p: Partial<Transition> = {}, startAt = 0, step = 1) =>
    Array.from({ length: n }, (_, i) => tr({ device: `d${i}`, at: startAt + i * step, ...p }));

  it('key class: 5 alarms of one rule across a site within 30 min make one incident, later ones join', async () => {
    const { svc, events } = setup();
    await svc.start();
    svc.apply(raises(4));
    expect(events.filter((e) => e.type === 'group')).toHaveLength(0);
    svc.apply([tr({ device: 'd4', at: 4 })]);
    const group = events.filter((e) => e.type === 'group');
    expect(group).toHaveLength(5);
    const incidentId = group[0]!.incident!.id;
    expect(new Set(group.map((e) => e.alarm.incidentId))).toEqual(new Set([incidentId]));
    svc.apply([tr({ device: 'd5', at: 20 })]);
    expect(svc.listIncidents()).toEqual([
      expect.objectContaining({ id: incidentId, alarmCount: 6, state: 'open' }),
    ]);
    expect(svc.list({ state: 'active' }).every((a) => a.incidentId === incidentId)).toBe(true);
  });

  it('alarms spread over more than 30 minutes do not group', async () => {
    const { svc } = setup();
    await svc.start();
    svc.apply(raises(8, {}, 0, 10));
    expect(svc.listIncidents()).toEqual([]);
  });

  it('counts are lower when a critical asset is involved, and 1 for safety', async () => {
    const a = setup();
    await a.svc.start();
    a.svc.apply(raises(3, { critical: true }));
    expect(a.svc.listIncidents()).toHaveLength(1);

    const b = setup();
    await b.svc.start();
    b.svc.apply(raises(9, { ruleClass: 'routine' }));
    expect(b.svc.listIncidents()).toHaveLength(0);
    b.svc.apply([tr({ device: 'x', ruleClass: 'routine', at: 9 })]);
    expect(b.svc.listIncidents()).toEqual([expect.objectContaining({ alarmCount: 10 })]);

    const c = setup();
    await c.svc.start();
    c.svc.apply([tr({ ruleClass: 'safety', severity: 'critical' })]);
    expect(c.svc.listIncidents()).toEqual([expect.objectContaining({ alarmCount: 1, class: 'safety' })]);
  });

  it('an incident closes once its alarms cleared and the window passed', async () => {
    const { svc, clock } = setup();
    await svc.start();
    svc.apply(raises(5));
    svc.apply(raises(5).map((t) => ({ ...t, type: 'clear' as const, ts: t.ts + 10 * MIN })));
    clock.t = T0 + 20 * MIN;
    svc.tick();
    expect(svc.listIncidents()[0]?.state).toBe('open');
    clock.t = T0 + 40 * MIN;
    svc.tick();
    expect(svc.listIncidents()[0]).toMatchObject({ state: 'closed', closedAt: T0 + 40 * MIN });
  });
});

describe('persistence', () => {
  it('round trip on a temp SQLite file: alarms, acks, shelves, incidents and rule state survive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alarms-'));
    dirs.push(dir);
    const file = join(dir, 'alarms.db');
    const clock = { t: T0 + 10 * MIN };
    const a = setup(file, clock);
    await a.svc.start();
    a.svc.apply([
      tr({ ruleId: 'chlorine.free.low', ruleClass: 'safety' }),
      tr({ device: 'd2' }),
      tr({ device: 'd3' }),
      tr({ device: 'd3', type: 'clear', at: 1 }),
    ]);
    const ackId = a.svc.list({ state: 'active', device: 'd2' })[0]!.id;
    a.svc.ack(ackId, 'alice', 'checked');
    a.svc.shelve({ device: 'd9', untilMs: T0 + 60 * MIN, user: 'eve', reason: 'works' });
    a.svc.saveRuleState({
      version: 1,
      devices: [{ site: 's1', device: 'd1', kind: 'x', lastTs: 5, rules: {} }],
      readRate: { 'a|b': 2 },
    });
    const before = a.svc.list({ state: 'active' });
    await a.svc.stop();
    a.db.close();

    const b = setup(file, clock);
    await b.svc.start();
    expect(b.svc.list({ state: 'active' })).toEqual(before);
    expect(b.svc.get(ackId)).toMatchObject({
      state: 'active-acknowledged',
      acknowledgedBy: 'alice',
      ackNote: 'checked',
    });
    expect(b.svc.listShelves()).toHaveLength(1);
    expect(b.svc.listIncidents()).toHaveLength(1);
    expect(b.svc.loadRuleState()).toEqual({
      version: 1,
      devices: [{ site: 's1', device: 'd1', kind: 'x', lastTs: 5, rules: {} }],
      readRate: { 'a|b': 2 },
    });
    // The restored active alarm still blocks a duplicate and still clears.
    b.svc.apply([tr({ device: 'd2', at: 2 }), tr({ device: 'd2', type: 'clear', at: 3 })]);
    expect(b.svc.get(ackId)?.state).toBe('cleared');
    expect(b.svc.list({ state: 'all', device: 'd2' })).toHaveLength(1);
    // Shelving survived too: a raise on d9 is recorded as shelved.
    b.svc.apply([tr({ device: 'd9', at: 15 })]);
    expect(b.svc.list({ state: 'active', device: 'd9' })[0]?.shelved).toBe(true);
  });

  it('transitions handed over in one turn are written in one batch', async () => {
    const { svc, events, db } = setup();
    await svc.start();
    let txs = 0;
    const orig = db.transaction.bind(db);
    (db as { transaction: Db['transaction'] }).transaction = ((fn: Parameters<Db['transaction']>[0]) => {
      txs++;
      return orig(fn);
    }) as Db['transaction'];
    for (let i = 0; i < 20; i++) svc.handle([tr({ device: `d${i}` })]);
    expect(events).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(events.filter((e) => e.type === 'raise')).toHaveLength(20);
    expect(txs).toBe(1);
  });
});

describe('rule engine → alarms', () => {
  it('a door held open raises one alarm; the engine restarts mid on-delay from the database', async () => {
    const clock = { t: T0 };
    const dir = mkdtempSync(join(tmpdir(), 'alarms-'));
    dirs.push(dir);
    const file = join(dir, 'a.db');
    const facts = {
      get: () => ({ site: 's1', device: 'p1', kind: 'env-probe', critical: false, reportIntervalSec: 600 }),
    };
    const a = setup(file, clock);
    await a.svc.start();
    const e1 = new RuleEngine({ rules: parseRules(), facts, listener: a.svc.handle });
    e1.process({ site: 's1', kind: 'env-probe', device: 'p1', ts: T0, fields: { door_open: true } });
    e1.tick(T0 + 6 * MIN);
    a.svc.saveRuleState(e1.snapshotState());
    a.svc.flush();
    a.db.close();

    const b = setup(file, clock);
    await b.svc.start();
    const e2 = new RuleEngine({ rules: parseRules(), facts, listener: b.svc.handle });
    e2.restoreState(b.svc.loadRuleState()!);
    e2.tick(T0 + 11 * MIN);
    e2.process({
      site: 's1',
      kind: 'env-probe',
      device: 'p1',
      ts: T0 + 12 * MIN,
      fields: { door_open: true },
    });
    e2.tick(T0 + 13 * MIN);
    b.svc.flush();
    const alarms = b.svc.list({ state: 'all' });
    expect(alarms).toEqual([
      expect.objectContaining({
        rule: 'serverroom.door.open',
        raisedAt: T0 + 10 * MIN,
        state: 'active-unacknowledged',
      }),
    ]);
  });
});
