import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alarm, AlarmEvent, AlarmEventType } from '../../gateway/src/alarms/types.js';
import { testAlarm } from '../fixtures/alarm.js';
import type { RuleClass, Severity } from '../../gateway/src/rules/types.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import {
  allowedActions,
  applyAction,
  createsTicket,
  deadlinesOf,
  priorityOf,
  TicketError,
  TicketStore,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
  type Ticket,
  type TicketEvent,
  type WorkordersConfig,
} from '../../gateway/src/workorders/index.js';

const T0 = Date.UTC(2026, 0, 1, 8);
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const dbs: Db[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(cfg: Record<string, unknown> = {}, file = ':memory:', clock = { t: T0 }) {
  const db = openDb(file, WORKORDER_MIGRATIONS);
  dbs.push(db);
  const svc = new WorkOrderService({
    db,
    config: workordersSchema.parse(cfg),
    now: () => clock.t,
    ruleInfo: (id) =>
      id === 'chlorine.free.low'
        ? { description: 'Free chlorine residual low (std: GB 5749-2022)', metric: 'free_chlorine_mgl' }
        : undefined,
    deviceInfo: () => ({ location: 'roof tank', latest: { free_chlorine_mgl: { value: 0.02, ts: T0 } } }),
  });
  const events: TicketEvent[] = [];
  svc.onChange((e) => events.push(e));
  return { db, svc, clock, events };
}

const alarm = testAlarm;
const ev = (type: AlarmEventType, a: Alarm, ts = T0): AlarmEvent => ({ type, ts, alarm: { ...a } });

function walkToResolved(svc: WorkOrderService, id: string, resolver = 'eve') {
  svc.act(id, { action: 'acknowledge', actor: resolver });
  svc.act(id, { action: 'assign', actor: resolver, assignee: resolver });
  svc.act(id, { action: 'start', actor: resolver });
  return svc.act(id, { action: 'resolve', actor: resolver, note: 'dosing pump primed' });
}

describe('policy: which alarms, what priority, which deadlines', () => {
  const cfg: WorkordersConfig = workordersSchema.parse({
    create: { classes: ['key'], minSeverity: 'critical', excludeRules: ['serverroom.smoke', 'a.rule'] },
  });
  const a = (rule: string, cls: RuleClass, severity: Severity) => ({ rule, class: cls, severity });

  it('safety class always creates a ticket; otherwise class, severity and the rule lists decide', () => {
    expect(createsTicket(cfg, a('serverroom.smoke', 'safety', 'info'))).toBe(true);
    expect(createsTicket(cfg, a('x', 'key', 'critical'))).toBe(true);
    expect(createsTicket(cfg, a('x', 'key', 'warning'))).toBe(false);
    expect(createsTicket(cfg, a('x', 'routine', 'critical'))).toBe(false);
    expect(createsTicket(cfg, a('a.rule', 'key', 'critical'))).toBe(false);
    const withRule = workordersSchema.parse({ create: { classes: [], rules: ['device.offline'] } });
    expect(createsTicket(withRule, a('device.offline', 'routine', 'info'))).toBe(true);
    const dflt = workordersSchema.parse({});
    expect(createsTicket(dflt, a('device.offline', 'routine', 'info'))).toBe(false);
    expect(createsTicket(dflt, a('water.tamper', 'routine', 'warning'))).toBe(true);
  });

  it('priority from class, severity and critical asset', () => {
    const d = workordersSchema.parse({});
    expect(priorityOf(d, { class: 'safety', severity: 'info', critical: false })).toBe('critical');
    expect(priorityOf(d, { class: 'key', severity: 'warning', critical: false })).toBe('high');
    expect(priorityOf(d, { class: 'routine', severity: 'warning', critical: false })).toBe('medium');
    expect(priorityOf(d, { class: 'routine', severity: 'info', critical: false })).toBe('low');
    expect(priorityOf(d, { class: 'routine', severity: 'warning', critical: true })).toBe('high');
    expect(priorityOf(d, { class: 'key', severity: 'warning', critical: true })).toBe('critical');
    const sev = workordersSchema.parse({ priority: { criticalSeverityBump: true } });
    expect(priorityOf(sev, { class: 'routine', severity: 'critical', critical: false })).toBe('high');
  });

  it('deadlines per DOMAIN.md service levels, configurable', () => {
    const d = workordersSchema.parse({});
    expect(deadlinesOf(d, 'medium', T0)).toEqual({
      responseDueAt: T0 + 30 * MIN,
      resolveDueAt: T0 + 4 * HOUR,
    });
    expect(deadlinesOf(d, 'high', T0)).toEqual({ responseDueAt: T0 + 30 * MIN, resolveDueAt: T0 + 3 * HOUR });
    expect(deadlinesOf(d, 'critical', T0)).toEqual({
      responseDueAt: T0 + 15 * MIN,
      resolveDueAt: T0 + 2 * HOUR,
    });
    const c = workordersSchema.parse({ sla: { critical: { respondMin: 5 } } });
    expect(deadlinesOf(c, 'critical', T0).responseDueAt).toBe(T0 + 5 * MIN);
    expect(() => workordersSchema.parse({ sla: { critical: { respondMin: -1 } } })).toThrow();
    expect(() => workordersSchema.parse({ slaa: {} })).toThrow();
  });
});

describe('state machine', () => {
  it('walks open → acknowledged → assigned → in_progress → resolved → closed with an audit trail', () => {
    const { svc, clock } = setup();
    const t = svc.create({ title: 'Leaking valve', site: 'estate', device: 'wm-1' }, 'desk');
    expect(t).toMatchObject({ id: 'WO-000001', status: 'open', priority: 'medium', requester: 'desk' });
    const steps: [string, string][] = [
      ['acknowledge', 'acknowledged'],
      ['assign', 'assigned'],
      ['start', 'in_progress'],
      ['resolve', 'resolved'],
      ['verify', 'resolved'],
      ['close', 'closed'],
    ];
    for (const [action, status] of steps) {
      clock.t += MIN;
      const actor = action === 'verify' ? 'desk' : 'eve';
      const out = svc.act(t.id, {
        action: action as 'assign',
        actor,
        assignee: action === 'assign' ? 'eve' : undefined,
        note: `${action} note`,
      });
      expect(out.status).toBe(status);
    }
    const done = svc.get(t.id)!;
    expect(done.assignee).toBe('eve');
    expect(done.verifiedBy).toBe('desk');
    expect(done.closedAt).toBe(T0 + 6 * MIN);
    expect(done.respondedAt).toBe(T0 + MIN);
    expect(done.history.map((h) => [h.action, h.actor, h.from, h.to])).toEqual([
      ['create', 'desk', null, 'open'],
      ['acknowledge', 'eve', 'open', 'acknowledged'],
      ['assign', 'eve', 'acknowledged', 'assigned'],
      ['start', 'eve', 'assigned', 'in_progress'],
      ['resolve', 'eve', 'in_progress', 'resolved'],
      ['verify', 'desk', 'resolved', 'resolved'],
      ['close', 'eve', 'resolved', 'closed'],
    ]);
    expect(done.history[3]!.note).toBe('start note');
    expect(done.history[2]!.data).toEqual({ assignee: 'eve' });
  });

  it('refuses transitions the state machine does not allow, with 409 and a clear message', () => {
    const { svc } = setup();
    const t = svc.create({ title: 'x', site: 's' }, 'desk');
    const tryAct = (action: string) => {
      try {
        svc.act(t.id, { action: action as 'start', actor: 'eve' });
        return null;
      } catch (err) {
        return err as TicketError;
      }
    };
    for (const a of ['start', 'resolve', 'verify', 'close', 'reopen']) {
      const err = tryAct(a)!;
      expect(err).toBeInstanceOf(TicketError);
      expect(err.status).toBe(409);
      expect(err.message).toContain(`cannot ${a} a ticket that is open`);
    }
    expect(tryAct('comment')).toBeNull();
    const assign = (() => {
      try {
        svc.act(t.id, { action: 'acknowledge', actor: 'eve' });
        svc.act(t.id, { action: 'assign', actor: 'eve' });
      } catch (err) {
        return err as TicketError;
      }
      return undefined;
    })();
    expect(assign?.status).toBe(400);
    expect(svc.get(t.id)!.status).toBe('acknowledged');
    // Refused actions leave no trace in the trail.
    expect(svc.get(t.id)!.history.map((h) => h.action)).toEqual(['create', 'comment', 'acknowledge']);
  });

  it('closing needs verification by someone other than the resolver', () => {
    const { svc } = setup();
    const t = svc.create({ title: 'x', site: 's' }, 'desk');
    walkToResolved(svc, t.id, 'eve');
    expect(allowedActions(svc.get(t.id)!)).toEqual(['verify', 'reopen', 'comment']);
    const close = () => svc.act(t.id, { action: 'close', actor: 'eve' });
    expect(close).toThrow(/cannot be closed before the fix is verified/);
    expect(() => svc.act(t.id, { action: 'verify', actor: 'eve' })).toThrow(
      /resolved ticket .* cannot verify/,
    );
    expect(close).toThrow(TicketError);
    svc.act(t.id, { action: 'verify', actor: 'bob' });
    expect(() => svc.act(t.id, { action: 'verify', actor: 'desk' })).toThrow(/already verified/);
    expect(close().status).toBe('closed');
  });

  it('reopens from resolved or closed: fresh deadlines, verification needed again', () => {
    const { svc, clock } = setup();
    const t = svc.create({ title: 'x', site: 's' }, 'desk');
    walkToResolved(svc, t.id);
    svc.act(t.id, { action: 'verify', actor: 'desk' });
    svc.act(t.id, { action: 'close', actor: 'eve' });
    clock.t = T0 + DAY;
    const r = svc.act(t.id, { action: 'reopen', actor: 'desk', note: 'leaking again' });
    expect(r).toMatchObject({ status: 'reopened', verifiedBy: null, closedAt: null, resolvedAt: null });
    expect(r.responseDueAt).toBe(T0 + DAY + 30 * MIN);
    expect(r.resolveDueAt).toBe(T0 + DAY + 4 * HOUR);
    expect(svc.list({ status: 'reopened' }).map((x) => x.id)).toEqual([t.id]);
    svc.act(t.id, { action: 'assign', actor: 'eve', assignee: 'bob' });
    svc.act(t.id, { action: 'start', actor: 'bob' });
    svc.act(t.id, { action: 'resolve', actor: 'bob' });
    expect(() => svc.act(t.id, { action: 'close', actor: 'eve' })).toThrow(/verified/);
  });

  it('applyAction is pure over the ticket it is given', () => {
    const { svc } = setup();
    const t: Ticket = svc.create({ title: 'x', site: 's' }, 'desk');
    const e = applyAction(
      t,
      { action: 'acknowledge', actor: 'eve' },
      T0 + 5 * MIN,
      workordersSchema.parse({}),
    );
    expect(e).toMatchObject({ from: 'open', to: 'acknowledged', actor: 'eve', ts: T0 + 5 * MIN });
    expect(t.status).toBe('acknowledged');
    expect(svc.get(t.id)!.status).toBe('open');
  });
});

describe('tickets from alarms', () => {
  it('a safety alarm makes exactly one ticket with priority, deadlines, standard and readings snapshot', () => {
    const { svc } = setup();
    const a = alarm();
    const [created] = svc.applyAlarmEvents([ev('raise', a)]);
    expect(created!.type).toBe('created');
    const t = created!.ticket;
    expect(t).toMatchObject({
      status: 'open',
      priority: 'critical',
      class: 'safety',
      site: 'estate',
      device: 'tank-1',
      rule: 'chlorine.free.low',
      alarmId: a.id,
      responseDueAt: T0 + 15 * MIN,
      resolveDueAt: T0 + 2 * HOUR,
      serviceItem: 'Free chlorine residual low (std: GB 5749-2022)',
      standard: 'std: GB 5749-2022',
      location: 'roof tank',
      escalationLevel: 0,
      repeatOf: null,
      assignee: null,
    });
    expect(t.readings).toMatchObject({ alarmValue: 0.02, metric: 'free_chlorine_mgl' });
    expect(t.readings!.latest.free_chlorine_mgl!.value).toBe(0.02);
  });

  it('a returning alarm adds to the open ticket; a cleared alarm only adds a note', () => {
    const { svc } = setup();
    const a1 = alarm();
    svc.applyAlarmEvents([ev('raise', a1)]);
    svc.applyAlarmEvents([ev('clear', { ...a1, state: 'cleared-unacknowledged' }, T0 + MIN)]);
    const a2 = alarm({ raisedAt: T0 + 2 * MIN });
    svc.applyAlarmEvents([ev('raise', a2, T0 + 2 * MIN)]);
    const all = svc.list({});
    expect(all).toHaveLength(1);
    const t = svc.get(all[0]!.id)!;
    expect(t.status).toBe('open');
    expect(t.alarmIds).toEqual([a1.id, a2.id]);
    expect(t.conditionCleared).toBe(false);
    expect(t.history.map((h) => h.action)).toEqual(['create', 'alarm-cleared', 'alarm-returned']);
    // Another device or rule is another ticket; an alarm the policy ignores is none.
    svc.applyAlarmEvents([ev('raise', alarm({ device: 'tank-2' }))]);
    svc.applyAlarmEvents([
      ev('raise', alarm({ rule: 'device.offline', class: 'routine', severity: 'info' })),
    ]);
    expect(svc.list({})).toHaveLength(2);
  });

  it('an alarm returning after resolution reopens its ticket', () => {
    const { svc, clock } = setup();
    svc.applyAlarmEvents([ev('raise', alarm())]);
    const id = svc.list({})[0]!.id;
    walkToResolved(svc, id);
    clock.t = T0 + HOUR;
    svc.applyAlarmEvents([ev('raise', alarm(), T0 + HOUR)]);
    const t = svc.get(id)!;
    expect(t.status).toBe('reopened');
    expect(t.resolveDueAt).toBe(T0 + 3 * HOUR);
    expect(svc.list({})).toHaveLength(1);
  });

  it('a transient rule with autoResolve resolves on clear; close still needs verification', () => {
    const { svc } = setup({ transient: [{ rule: 'serverroom.door.open' }] });
    const a = alarm({
      rule: 'serverroom.door.open',
      class: 'routine',
      severity: 'warning',
      device: 'room-1',
    });
    svc.applyAlarmEvents([ev('raise', a), ev('clear', a, T0 + MIN)]);
    const t = svc.list({})[0]!;
    expect(t.status).toBe('resolved');
    expect(t.resolvedBy).toBe('system');
    expect(() => svc.act(t.id, { action: 'close', actor: 'eve' })).toThrow(/verified/);
    svc.act(t.id, { action: 'verify', actor: 'eve' });
    expect(svc.act(t.id, { action: 'close', actor: 'eve' }).status).toBe('closed');
  });

  it('an incident (grouped alarms) gets one ticket listing its devices', () => {
    const { svc } = setup();
    const a1 = alarm({ device: 'room-1', rule: 'serverroom.smoke' });
    const inc = {
      id: 'inc-1',
      site: 'estate',
      rule: 'serverroom.smoke',
      class: 'safety' as const,
      openedAt: T0,
      lastAlarmAt: T0,
      alarmCount: 1,
      state: 'open' as const,
      closedAt: null,
    };
    svc.applyAlarmEvents([ev('raise', a1), { ...ev('group', a1), incident: inc }]);
    const a2 = alarm({ device: 'room-2', rule: 'serverroom.smoke' });
    svc.applyAlarmEvents([ev('raise', a2, T0 + MIN), { ...ev('group', a2, T0 + MIN), incident: inc }]);
    const list = svc.list({});
    expect(list).toHaveLength(1);
    expect(list[0]!).toMatchObject({ incidentId: 'inc-1', devices: ['room-1', 'room-2'] });
    expect(list[0]!.alarmIds).toEqual([a1.id, a2.id]);
  });

  it('links a repeat: same device and rule within 6 months of a resolved ticket', () => {
    const { svc, clock } = setup();
    svc.applyAlarmEvents([ev('raise', alarm())]);
    const first = svc.list({})[0]!.id;
    walkToResolved(svc, first);
    svc.act(first, { action: 'verify', actor: 'desk' });
    svc.act(first, { action: 'close', actor: 'desk' });
    clock.t = T0 + 100 * DAY;
    svc.applyAlarmEvents([ev('raise', alarm(), clock.t)]);
    const second = svc.list({})[0]!;
    expect(second.id).not.toBe(first);
    expect(second.repeatOf).toBe(first);
    // Another device is no repeat.
    svc.applyAlarmEvents([ev('raise', alarm({ device: 'tank-9' }), clock.t)]);
    expect(svc.list({ device: 'tank-9' })[0]!.repeatOf).toBeNull();
  });

  it('no repeat link past the window (configurable)', () => {
    const { svc, clock } = setup({ repeatWindowDays: 30 });
    svc.applyAlarmEvents([ev('raise', alarm())]);
    const first = svc.list({})[0]!.id;
    walkToResolved(svc, first);
    svc.act(first, { action: 'verify', actor: 'desk' });
    svc.act(first, { action: 'close', actor: 'desk' });
    clock.t = T0 + 31 * DAY;
    svc.applyAlarmEvents([ev('raise', alarm(), clock.t)]);
    expect(svc.list({})[0]!.repeatOf).toBeNull();
  });
});

describe('a worse alarm raises the priority and tightens the deadlines', () => {
  const routine = (over: Partial<Alarm> = {}) =>
    alarm({ rule: 'water.pressure.low', class: 'routine', severity: 'warning', device: 'wm-1', ...over });

  it('recomputes the deadlines from creation with the new priority, records it, and escalates by them', () => {
    const { svc, clock } = setup({ priority: { criticalSeverityBump: true } });
    const a = routine();
    svc.applyAlarmEvents([ev('raise', a)]);
    const id = svc.list({})[0]!.id;
    expect(svc.get(id)).toMatchObject({ priority: 'medium', resolveDueAt: T0 + 4 * HOUR });
    clock.t = T0 + 10 * MIN;
    svc.applyAlarmEvents([ev('escalate', { ...a, severity: 'critical' }, clock.t)]);
    const t = svc.get(id)!;
    // High: respond in 30 min (unchanged), resolve in 3 h from creation instead of 4.
    expect(t).toMatchObject({
      priority: 'high',
      openedPriority: 'medium',
      responseDueAt: T0 + 30 * MIN,
      resolveDueAt: T0 + 3 * HOUR,
      nextResolveCheckAt: T0 + 3 * HOUR,
    });
    expect(t.history.map((h) => h.action)).toEqual(['create', 'alarm-escalated', 'priority-raised']);
    expect(t.history.at(-1)).toMatchObject({
      actor: 'system',
      note: `priority medium → high (alarm critical): resolve by ${new Date(T0 + 3 * HOUR).toISOString()}`,
      data: { from: 'medium', to: 'high', resolveDueAt: new Date(T0 + 3 * HOUR).toISOString() },
    });
    svc.act(id, { action: 'acknowledge', actor: 'eve' });
    expect(svc.tick(T0 + 3 * HOUR - 1)).toEqual([]);
    expect(svc.tick(T0 + 3 * HOUR)[0]!.entries[0]!.data).toMatchObject({ kind: 'resolve', level: 1 });
    // The same priority again changes nothing and writes no line.
    svc.applyAlarmEvents([ev('raise', { ...a, id: 'again', severity: 'critical' }, T0 + 3 * HOUR)]);
    expect(svc.get(id)!.history.filter((h) => h.action === 'priority-raised')).toHaveLength(1);
  });

  it('never later than before, never in the past; a deadline already missed keeps its judgement', () => {
    const { svc, clock } = setup({ priority: { criticalSeverityBump: true } });
    const a = routine();
    svc.applyAlarmEvents([ev('raise', a)]);
    const id = svc.list({})[0]!.id;
    // Nobody responds: the 30-minute response deadline is missed and escalated as medium.
    svc.tick(T0 + 30 * MIN);
    // At 2.5 h a returning alarm on a critical asset makes it critical: 15 min / 2 h from creation are past.
    clock.t = T0 + 150 * MIN;
    svc.applyAlarmEvents([
      ev('raise', { ...a, id: 'a-crit', severity: 'critical', critical: true }, clock.t),
    ]);
    const t = svc.get(id)!;
    expect(t.priority).toBe('critical');
    expect(t.responseDueAt).toBe(T0 + 30 * MIN);
    expect(t.sla!.response).toEqual({ met: false, dueAt: T0 + 30 * MIN, priority: 'medium' });
    // Due now: not at 2 h (already past when the priority rose), not at 4 h (the looser deadline).
    expect(t.resolveDueAt).toBe(T0 + 150 * MIN);
    expect(t.history.at(-1)!.data).toEqual({
      from: 'medium',
      to: 'critical',
      resolveDueAt: new Date(T0 + 150 * MIN).toISOString(),
    });
    const [e] = svc.tick(T0 + 150 * MIN);
    expect(e!.entries.map((h) => (h.data as { kind: string }).kind)).toEqual(['resolve']);
    expect(svc.get(id)!.sla!.resolve).toEqual({ met: false, dueAt: T0 + 150 * MIN, priority: 'critical' });
  });
});

describe('readings snapshot history', () => {
  it('reads the hour before the alarm after the delay; a failed read is recorded, never thrown', async () => {
    const db = openDb(':memory:', WORKORDER_MIGRATIONS);
    dbs.push(db);
    const queries: { metric: string; from: number; to: number }[] = [];
    const svc = new WorkOrderService({
      db,
      config: workordersSchema.parse({ snapshot: { delayMs: 0 } }),
      now: () => T0,
      ruleInfo: () => ({ metric: 'free_chlorine_mgl' }),
      history: async (q) => {
        queries.push(q);
        if (q.device === 'tank-2') throw new Error('influx down');
        return [
          { ts: q.to - MIN, value: 0.2 },
          { ts: q.to, value: 0.02 },
        ];
      },
    });
    await svc.start();
    svc.applyAlarmEvents([ev('raise', alarm({ raisedAt: T0 - MIN }))]);
    svc.applyAlarmEvents([ev('raise', alarm({ device: 'tank-2', raisedAt: T0 }))]);
    await new Promise((r) => setTimeout(r, 50));
    expect(queries.map((q) => [q.metric, q.to - q.from])).toEqual([
      ['free_chlorine_mgl', HOUR],
      ['free_chlorine_mgl', HOUR],
    ]);
    const [second, first] = svc.list({});
    expect(svc.get(first!.id)!.readings!.history).toEqual([
      { ts: T0 - 2 * MIN, value: 0.2 },
      { ts: T0 - MIN, value: 0.02 },
    ]);
    expect(svc.get(second!.id)!.readings).toMatchObject({ historyError: 'influx down', historyTo: T0 });
    await svc.stop();
  });
});

describe('escalation with a controllable clock', () => {
  it('a missed response and a missed resolution each raise a level, again after every interval', () => {
    const { svc, clock, events } = setup({
      contacts: [{ name: 'on-call' }, { name: 'supervisor', contact: '+86 100' }, { name: 'manager' }],
    });
    svc.applyAlarmEvents([ev('raise', alarm())]);
    const id = svc.list({})[0]!.id;
    expect(svc.tick(T0 + 14 * MIN)).toEqual([]);
    // Safety: respond within 15 min.
    clock.t = T0 + 15 * MIN;
    const [e1] = svc.tick(clock.t);
    expect(e1!.type).toBe('escalated');
    expect(e1!.ticket.escalationLevel).toBe(1);
    expect(e1!.entries[0]!).toMatchObject({ action: 'escalate', actor: 'system', ts: T0 + 15 * MIN });
    expect(e1!.entries[0]!.data).toMatchObject({ kind: 'response', level: 1, contact: { name: 'on-call' } });
    // Nobody responds: after each further interval (2 h for safety) one level more.
    expect(svc.tick(T0 + 30 * MIN)).toEqual([]);
    clock.t = T0 + 60 * MIN;
    svc.act(id, { action: 'acknowledge', actor: 'eve' });
    // Acknowledged: no more response escalations, but the 2-hour resolution deadline still runs.
    expect(svc.tick(T0 + 2 * HOUR - 1)).toEqual([]);
    const [e2] = svc.tick(T0 + 2 * HOUR);
    expect(e2!.ticket.escalationLevel).toBe(2);
    expect(e2!.entries[0]!.data).toMatchObject({ kind: 'resolve', contact: { name: 'supervisor' } });
    // A tick long after: every missed interval counts, and the top of the chain keeps being called.
    const [e3] = svc.tick(T0 + 6 * HOUR + MIN);
    expect(e3!.entries.map((h) => (h.data as { level: number }).level)).toEqual([3, 4]);
    const t = svc.get(id)!;
    expect(t.escalationLevel).toBe(4);
    expect(t.breaches).toEqual({ response: 1, resolve: 3 });
    expect((t.history.at(-1)!.data as { contact: { name: string } }).contact.name).toBe('manager');
    // Resolved: the clock stops.
    clock.t = T0 + 7 * HOUR;
    svc.act(id, { action: 'assign', actor: 'eve', assignee: 'eve' });
    svc.act(id, { action: 'start', actor: 'eve' });
    svc.act(id, { action: 'resolve', actor: 'eve' });
    expect(svc.tick(T0 + 30 * DAY)).toEqual([]);
    expect(events.filter((e) => e.type === 'escalated')).toHaveLength(3);
  });

  it('a response in time never escalates; a missed routine resolution escalates at 4 h', () => {
    const { svc, clock } = setup();
    const a = alarm({ class: 'routine', severity: 'warning', rule: 'water.tamper', device: 'wm-1' });
    svc.applyAlarmEvents([ev('raise', a)]);
    const id = svc.list({})[0]!.id;
    clock.t = T0 + 29 * MIN;
    svc.act(id, { action: 'acknowledge', actor: 'eve' });
    expect(svc.tick(T0 + 4 * HOUR - 1)).toEqual([]);
    expect(svc.tick(T0 + 4 * HOUR)[0]!.ticket.breaches).toEqual({ response: 0, resolve: 1 });
  });
});

describe('lists for integrators: pages, changes since, assignee, overdue', () => {
  it('pages newest first with a total; updatedSince answers oldest change first', () => {
    const { svc, clock } = setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock.t = T0 + i * MIN;
      ids.push(svc.create({ title: `t${i}`, site: 'estate' }, 'desk').id);
    }
    const p1 = svc.page({ limit: 2 });
    expect(p1.total).toBe(5);
    expect(p1.tickets.map((t) => t.id)).toEqual([ids[4], ids[3]]);
    expect(svc.page({ limit: 2, offset: 4 }).tickets.map((t) => t.id)).toEqual([ids[0]]);
    // A change to the oldest ticket: it is the latest change now.
    clock.t = T0 + 10 * MIN;
    svc.act(ids[0]!, { action: 'comment', actor: 'eve', note: 'still leaking' });
    const since = svc.page({ updatedSince: T0 + 3 * MIN, limit: 10 });
    expect(since.tickets.map((t) => t.id)).toEqual([ids[3], ids[4], ids[0]]);
    expect(since.total).toBe(3);
    expect(svc.page({ limit: 1, withHistory: true }).tickets[0]!.history.map((h) => h.action)).toEqual([
      'create',
    ]);
    expect(svc.page({ limit: 1 }).tickets[0]!.history).toEqual([]);
  });

  it('filters by assignee and by overdue: missed response, passed resolution, a paused clock', () => {
    const { svc, clock } = setup();
    const mk = (title: string) => svc.create({ title, site: 'estate', priority: 'medium' }, 'desk').id;
    const quiet = mk('nobody responded');
    const late = mk('responded, past its resolution deadline');
    const held = mk('on hold for parts before its deadline');
    const heldLate = mk('on hold only after its deadline');
    const done = mk('resolved');
    clock.t = T0 + 10 * MIN;
    for (const id of [late, held, heldLate, done]) {
      svc.act(id, { action: 'acknowledge', actor: 'eve' });
      svc.act(id, { action: 'assign', actor: 'eve', assignee: id === done ? 'bob' : 'eve' });
    }
    svc.act(done, { action: 'start', actor: 'bob' });
    svc.act(done, { action: 'resolve', actor: 'bob' });
    svc.act(held, { action: 'hold', actor: 'eve', note: 'seal kit', reason: 'waiting_for_parts' });
    clock.t = T0 + 5 * HOUR;
    svc.act(heldLate, { action: 'hold', actor: 'eve', note: 'seal kit', reason: 'waiting_for_parts' });
    const ids = (f: Parameters<WorkOrderService['page']>[0]) =>
      svc
        .page(f)
        .tickets.map((t) => t.id)
        .sort();
    expect(ids({ assignee: 'eve' })).toEqual([late, held, heldLate].sort());
    expect(ids({ assignee: 'bob' })).toEqual([done]);
    expect(ids({ overdue: true })).toEqual([quiet, late, heldLate].sort());
    expect(ids({ overdue: false })).toEqual([held, done].sort());
    // Before any deadline, nothing is overdue.
    expect(ids({ overdue: true, now: T0 + 20 * MIN })).toEqual([]);
    expect(ids({ overdue: true, now: T0 + 40 * MIN })).toEqual([quiet]);
  });
});

describe('storage', () => {
  it('survives a restart with its audit trail; nothing is deleted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wo-'));
    dirs.push(dir);
    const file = join(dir, 'workorders.db');
    const clock = { t: T0 };
    const one = setup({}, file, clock);
    await one.svc.start();
    one.svc.applyAlarmEvents([ev('raise', alarm())]);
    const id = one.svc.list({})[0]!.id;
    walkToResolved(one.svc, id);
    one.svc.act(id, { action: 'verify', actor: 'desk' });
    one.svc.act(id, { action: 'close', actor: 'desk' });
    one.svc.create({ title: 'by hand', site: 'estate' }, 'desk');
    await one.svc.stop();
    one.db.close();

    const two = setup({}, file, clock);
    await two.svc.start();
    expect(two.svc.health()).toMatchObject({ state: 'ok', open: 1 });
    const t = two.svc.get(id)!;
    expect(t.status).toBe('closed');
    expect(t.history.map((h) => h.action)).toEqual([
      'create',
      'acknowledge',
      'assign',
      'start',
      'resolve',
      'verify',
      'close',
    ]);
    const next = two.svc.create({ title: 'third', site: 'estate' }, 'desk');
    expect(next.id).toBe('WO-000003');
    const rows = two.db.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number };
    expect(rows.n).toBe(3);
  });

  it('a database from before the list columns gets them filled from the stored tickets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wo-mig-'));
    dirs.push(dir);
    const file = join(dir, 'workorders.db');
    const old = openDb(
      file,
      WORKORDER_MIGRATIONS.filter((m) => m.version <= 4),
    );
    const body = {
      id: 'WO-000001',
      assignee: 'eve',
      respondedAt: null,
      responseDueAt: T0 + 30 * MIN,
      resolveDueAt: T0 + 4 * HOUR,
      onHold: true,
      heldSince: T0 + HOUR,
    };
    old
      .prepare(
        `INSERT INTO tickets (id, seq, site, device, rule, status, priority, created_at, updated_at, resolved_at, body)
         VALUES ('WO-000001', 1, 'estate', NULL, NULL, 'assigned', 'medium', ?, ?, NULL, ?)`,
      )
      .run(T0, T0, JSON.stringify(body));
    old.close();
    const db = openDb(file, WORKORDER_MIGRATIONS);
    dbs.push(db);
    expect(
      db.prepare('SELECT assignee, response_due_at, resolve_due_at, paused_since FROM tickets').get(),
    ).toEqual({
      assignee: 'eve',
      response_due_at: T0 + 30 * MIN,
      resolve_due_at: T0 + 4 * HOUR,
      paused_since: T0 + HOUR,
    });
  });

  it('a change whose write fails leaves memory as the database has it, and takes no ticket number', () => {
    /** A store whose writes fail while `failing` is set, as a full disk would. */
    class FailingStore extends TicketStore {
      failing = false;
      override save(...args: Parameters<TicketStore['save']>): void {
        if (this.failing) throw new Error('SQLITE_FULL: database or disk is full');
        super.save(...args);
      }
    }
    const db = openDb(':memory:', WORKORDER_MIGRATIONS);
    dbs.push(db);
    const store = new FailingStore(db);
    const clock = { t: T0 };
    const svc = new WorkOrderService({ db, store, now: () => clock.t });
    const events: TicketEvent[] = [];
    svc.onChange((e) => events.push(e));
    const t = svc.create({ title: 'Valve', site: 'estate' }, 'desk');
    const before = svc.get(t.id)!;
    const rows = () => db.prepare('SELECT count(*) AS n FROM ticket_history').get() as { n: number };
    expect(rows().n).toBe(1);

    store.failing = true;
    clock.t = T0 + 5 * MIN;
    expect(() => svc.act(t.id, { action: 'acknowledge', actor: 'eve' })).toThrow(/SQLITE_FULL/);
    expect(svc.get(t.id)).toEqual(before);
    expect(store.get(t.id)).toEqual(before);
    // Past the response deadline: the escalation is not written, so it is not made.
    expect(() => svc.tick(T0 + HOUR)).toThrow(/SQLITE_FULL/);
    expect(svc.get(t.id)).toEqual(before);
    expect(() => svc.create({ title: 'Second', site: 'estate' }, 'desk')).toThrow(/SQLITE_FULL/);
    expect(() => svc.applyAlarmEvents([ev('raise', alarm())])).toThrow(/SQLITE_FULL/);
    expect(svc.list({})).toHaveLength(1);
    expect(events).toHaveLength(1);
    expect(rows().n).toBe(1);

    // The store recovers: the same action now applies once, and nothing was lost or doubled.
    store.failing = false;
    const acked = svc.act(t.id, { action: 'acknowledge', actor: 'eve' });
    expect(acked.history.map((h) => h.action)).toEqual(['create', 'acknowledge']);
    expect(store.get(t.id)!.history.map((h) => h.action)).toEqual(['create', 'acknowledge']);
    expect(svc.create({ title: 'Second', site: 'estate' }, 'desk').id).toBe('WO-000002');
    const [esc] = svc.tick(T0 + 5 * HOUR);
    expect(esc!.entries.map((h) => h.action)).toEqual(['escalate']);
  });
});
