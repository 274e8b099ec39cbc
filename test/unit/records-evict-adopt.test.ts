import { afterEach, describe, expect, it } from 'vitest';
import { ALARM_MIGRATIONS, AlarmService, alarmsSchema } from '../../gateway/src/alarms/index.js';
import type { Transition } from '../../gateway/src/rules/types.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import {
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
} from '../../gateway/src/workorders/index.js';
import { testAlarm } from '../fixtures/alarm.js';

const T0 = Date.UTC(2026, 11, 6, 20);
const MIN = 60_000;
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
});

function raise(device: string, ts = T0): Transition {
  return {
    type: 'raise',
    severity: 'critical',
    value: 1,
    ts,
    message: 'smoke',
    deviceKey: `estate/${device}`,
    site: 'estate',
    device,
    kind: 'smoke-detector',
    ruleId: 'serverroom.smoke',
    ruleClass: 'safety',
    critical: false,
  };
}

function alarms() {
  const db = openDb(':memory:', ALARM_MIGRATIONS);
  dbs.push(db);
  let n = 0;
  return new AlarmService({ db, config: alarmsSchema.parse({}), now: () => T0, newId: () => `x${++n}` });
}

function workorders(clock = { t: T0 }) {
  const db = openDb(':memory:', WORKORDER_MIGRATIONS);
  dbs.push(db);
  return new WorkOrderService({ db, config: workordersSchema.parse({}), now: () => clock.t });
}

/**
 * The services' side of records moving with their partition (ADR 0160): what is evicted is no longer
 * acted on or answered here; what is adopted is, with the same id, state and trail.
 */
describe('alarm service: evict and adopt', () => {
  it('evicts only what the predicate selects; an evicted alarm is not answered, acked or deduplicated here', async () => {
    const svc = alarms();
    await svc.start();
    const [e1, e2] = svc.apply([raise('det-1'), raise('det-2')]).filter((e) => e.type === 'raise');
    const out = svc.evict((a) => a.device === 'det-1');
    expect(out.map((a) => a.id)).toEqual([e1!.alarm.id]);
    expect(svc.activeAlarms().map((a) => a.id)).toEqual([e2!.alarm.id]);
    expect(svc.get(e1!.alarm.id)).toBeUndefined();
    expect(svc.stored(e1!.alarm.id)).toMatchObject({ state: 'active-unacknowledged' });
    expect(() => svc.ack(e1!.alarm.id, 'li')).toThrow(
      expect.objectContaining({ code: 'GW_ERR_HOLDER_UNAVAILABLE', status: 503 }),
    );
    expect(svc.ack(e2!.alarm.id, 'li').state).toBe('active-acknowledged');
  });

  it('an adopted active alarm deduplicates the repeated raise and takes the ack', async () => {
    const svc = alarms();
    await svc.start();
    const held = testAlarm({ id: 'from-b', site: 'estate', device: 'det-1', rule: 'serverroom.smoke' });
    svc.adopt([held, testAlarm({ id: 'done', state: 'cleared' })]);
    expect(svc.apply([raise('det-1', T0 + MIN)])).toEqual([]);
    expect(svc.activeAlarms().map((a) => a.id)).toEqual(['from-b']);
    expect(svc.ack('from-b', 'li')).toMatchObject({ id: 'from-b', state: 'active-acknowledged' });
    // A final alarm is stored, not held.
    expect(svc.get('done')).toMatchObject({ state: 'cleared' });
    expect(svc.health()).toMatchObject({ open: 1 });
  });
});

describe('work-order service: evict and adopt', () => {
  it('an evicted ticket is not escalated or changed here; adopted elsewhere it keeps number, level and trail', () => {
    const clock = { t: T0 };
    const a = workorders(clock);
    void a.start();
    a.applyAlarmEvents([{ type: 'raise', ts: T0, alarm: testAlarm({ raisedAt: T0 }) }]);
    const [t] = a.list({});
    clock.t = T0 + 16 * MIN;
    expect(a.tick()).toHaveLength(1);
    const copy = a.get(t!.id)!;
    expect(a.evict(() => true).map((x) => x.id)).toEqual([t!.id]);
    expect(a.get(t!.id)).toBeUndefined();
    expect(() => a.act(t!.id, { action: 'acknowledge', actor: 'li' })).toThrow(
      expect.objectContaining({ code: 'GW_ERR_HOLDER_UNAVAILABLE' }),
    );
    // The resolution deadline (2 h) has passed: one level more, on the holder only.
    clock.t = T0 + 2 * 60 * MIN + MIN;
    expect(a.tick()).toEqual([]);

    const b = workorders(clock);
    void b.start();
    b.adopt([copy]);
    expect(b.stored(copy.id)).toEqual(copy);
    const [next] = b.tick();
    expect(next!.ticket).toMatchObject({ id: copy.id, escalationLevel: 2 });
    expect(b.get(copy.id)!.history).toHaveLength(copy.history.length + 1);
    // Taken back later (the partition returned): the older copy of the file is replaced, not added to.
    a.adopt([b.get(copy.id)!]);
    expect(a.stored(copy.id)!.history).toHaveLength(copy.history.length + 1);
    expect(a.list({})).toHaveLength(1);
  });
});
