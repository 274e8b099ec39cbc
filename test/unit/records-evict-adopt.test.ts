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

/** `numbers`: the cluster's numbering (unique across members), as in cluster mode. */
function workorders(clock = { t: T0 }, numbers?: { next(): number }) {
  const db = openDb(':memory:', WORKORDER_MIGRATIONS);
  dbs.push(db);
  return new WorkOrderService({
    db,
    config: workordersSchema.parse({}),
    now: () => clock.t,
    ...(numbers ? { numbers } : {}),
  });
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

describe('alarm service: an adopted alarm under the shelves running here', () => {
  it('a shelf set while the alarm was between holders shelves it on adoption; one ended meanwhile releases it', async () => {
    const svc = alarms();
    await svc.start();
    const [raised] = svc.apply([raise('det-1')]).filter((e) => e.type === 'raise');
    const id = raised!.alarm.id;
    // Handed on: a shelf set now does not reach it here...
    const [away] = svc.evict(() => true);
    const shelf = svc.shelve({
      device: 'det-1',
      untilMs: T0 + 60 * MIN,
      user: 'eve',
      reason: 'detector swap',
    });
    expect(away!.shelved).toBe(false);
    // ...and it comes back (the partition returned): shelved, as every alarm of det-1 is here.
    svc.adopt([away!]);
    expect(svc.get(id)).toMatchObject({ shelved: true });
    expect(svc.history(id).map((h) => [h.type, h.user])).toContainEqual(['shelve', 'eve']);

    // Handed on shelved; the shelf ends meanwhile; taken back: no shelf holds it any more.
    const [again] = svc.evict(() => true);
    expect(again!.shelved).toBe(true);
    svc.unshelve(shelf.id, 'eve');
    svc.adopt([again!]);
    expect(svc.get(id)).toMatchObject({ shelved: false });
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

/**
 * One condition, one alarm, one ticket after an adoption (ADR 0160 addendum): a member cut off from
 * PostgreSQL raised alarm #1 and ticket #1 while the next owner raised #2 and ticket #2.
 */
describe('duplicates of one condition met on adoption', () => {
  it('two active alarms of one condition adopted: the one raised first stays, the other is closed as its duplicate', async () => {
    const svc = alarms();
    await svc.start();
    const events: string[] = [];
    svc.onEvent((e) => events.push(`${e.type}:${e.alarm.id}:${e.user ?? ''}:${e.note ?? ''}`));
    const first = testAlarm({ id: 'z-first', raisedAt: T0 });
    const later = testAlarm({ id: 'a-later', raisedAt: T0 + MIN });
    // The later one first in the list: the choice goes by raise time, not by order or id.
    const dups = svc.adopt([later, first]);
    expect(dups.map((d) => [d.duplicate.id, d.kept.id])).toEqual([['a-later', 'z-first']]);
    expect(svc.activeAlarms().map((a) => a.id)).toEqual(['z-first']);
    expect(svc.get('a-later')).toMatchObject({
      state: 'cleared',
      acknowledgedBy: 'system',
      ackNote: 'duplicate of z-first',
    });
    expect(events).toEqual(['duplicate:a-later:system:duplicate of z-first']);
    expect(svc.history('a-later').map((h) => h.type)).toEqual(['duplicate']);
    expect(svc.health()).toMatchObject({ active: 1, open: 1 });
  });

  it('an alarm held here raised after the adopted one is the duplicate; one raised before stays', async () => {
    const svc = alarms();
    await svc.start();
    const [mine] = svc.apply([raise('tank-1', T0 + MIN)]);
    const older = testAlarm({ id: 'older', site: 'estate', device: 'tank-1', rule: 'serverroom.smoke' });
    older.raisedAt = T0;
    expect(svc.adopt([older]).map((d) => d.duplicate.id)).toEqual([mine!.alarm.id]);
    expect(svc.activeAlarms().map((a) => a.id)).toEqual(['older']);
    expect(svc.get(mine!.alarm.id)).toMatchObject({ state: 'cleared' });
    // The other way round: the adopted one is later, the one held here stays.
    const newer = testAlarm({
      id: 'newer',
      device: 'tank-1',
      rule: 'serverroom.smoke',
      raisedAt: T0 + 2 * MIN,
    });
    expect(svc.adopt([newer]).map((d) => [d.duplicate.id, d.kept.id])).toEqual([['newer', 'older']]);
    expect(svc.activeAlarms().map((a) => a.id)).toEqual(['older']);
  });

  it("the duplicate's ticket is merged into the kept alarm's: one unclosed ticket, the other closed by system with the pointer", async () => {
    const clock = { t: T0 };
    let seq = 0;
    const numbers = { next: () => ++seq };
    const first = testAlarm({ id: 'al-1', raisedAt: T0 });
    const later = testAlarm({ id: 'al-2', raisedAt: T0 + MIN });
    // Each raised on its own member: two tickets of one condition.
    const a = workorders(clock, numbers);
    void a.start();
    a.applyAlarmEvents([{ type: 'raise', ts: T0, alarm: first }]);
    const b = workorders(clock, numbers);
    void b.start();
    clock.t = T0 + MIN;
    b.applyAlarmEvents([{ type: 'raise', ts: T0 + MIN, alarm: later }]);
    b.act(b.list({})[0]!.id, { action: 'acknowledge', actor: 'li' });
    const [kept] = a.list({});
    const [dup] = b.list({});

    const c = workorders(clock);
    void c.start();
    c.adopt([b.get(dup!.id)!, a.get(kept!.id)!]);
    clock.t = T0 + 2 * MIN;
    expect(c.mergeDuplicates([{ duplicate: later, kept: first }])).toBe(1);
    const closed = c.get(dup!.id)!;
    expect(closed.status).toBe('closed');
    expect(closed.history.at(-1)).toMatchObject({
      actor: 'system',
      action: 'merge',
      from: 'acknowledged',
      to: 'closed',
      data: { into: kept!.id, alarmId: 'al-2', keptAlarmId: 'al-1' },
    });
    const into = c.get(kept!.id)!;
    expect(into.status).toBe('open');
    expect(into.alarmIds).toEqual(['al-1', 'al-2']);
    expect(into.history.at(-1)).toMatchObject({
      action: 'duplicate-merged',
      data: { ticket: dup!.id, status: 'acknowledged' },
    });
    expect(c.list({ status: 'open' }).map((t) => t.id)).toEqual([kept!.id]);
    // The closed one escalates no more: only the kept ticket misses its response deadline.
    clock.t = T0 + 16 * MIN;
    expect(c.tick().map((e) => e.ticket.id)).toEqual([kept!.id]);
    // Asked again (a second adoption of the same pair): nothing left to merge.
    expect(c.mergeDuplicates([{ duplicate: later, kept: first }])).toBe(0);
    expect(c.health()).toMatchObject({ merged: 1 });
  });
});
