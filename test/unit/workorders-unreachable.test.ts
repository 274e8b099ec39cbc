import { afterEach, describe, expect, it } from 'vitest';
import type { AlarmEvent, AlarmEventType } from '../../gateway/src/alarms/types.js';
import { testAlarm } from '../fixtures/alarm.js';
import { openDb, type Db } from '../../gateway/src/storage/db.js';
import {
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
} from '../../gateway/src/workorders/index.js';
import type { Contact } from '../../gateway/src/workorders/escalation.js';
import { contactOfRow } from '../../gateway/src/notifications/unreachable.js';
import { eventText } from '../../gateway/src/notifications/text.js';
import { payloadOf, type QueueRow } from '../../gateway/src/notifications/queue.js';
import { monthlyReportCsv, monthlyReport } from '../../gateway/src/workorders/report.js';

const T0 = Date.UTC(2026, 0, 1, 8);
const MIN = 60_000;
const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
});

const CONTACTS: Contact[] = [
  { name: 'on-call engineer', webhook: 'pager' },
  { name: '值班主管', email: 'sup@plant.example', language: 'zh' },
  { name: 'facility manager', email: 'mgr@plant.example' },
];

function setup(escalation: Record<string, unknown> = {}) {
  const db = openDb(':memory:', WORKORDER_MIGRATIONS);
  dbs.push(db);
  const clock = { t: T0 };
  const svc = new WorkOrderService({
    db,
    config: workordersSchema.parse({ contacts: CONTACTS, escalation }),
    now: () => clock.t,
  });
  return { svc, clock };
}

const ev = (type: AlarmEventType, over: Parameters<typeof testAlarm>[0] = {}): AlarmEvent => ({
  type,
  ts: T0,
  alarm: testAlarm(over),
});

describe('held-back alarms make no ticket until released', () => {
  it('a shelved or suppressed raise makes nothing; its release makes one ticket, once', async () => {
    const { svc } = setup();
    await svc.start();
    const shelved = ev('raise', { shelved: true });
    const suppressed = ev('raise', { device: 'tank-2', suppressed: true, windowId: 'w1' });
    expect(svc.applyAlarmEvents([shelved, suppressed])).toEqual([]);
    const released = svc.applyAlarmEvents([
      { ...shelved, type: 'unshelve', alarm: { ...shelved.alarm, shelved: false } },
      { ...suppressed, type: 'unsuppress', alarm: { ...suppressed.alarm, suppressed: false } },
    ]);
    expect(released.map((e) => [e.type, e.ticket.device, e.ticket.alarmId])).toEqual([
      ['created', 'tank-1', shelved.alarm.id],
      ['created', 'tank-2', suppressed.alarm.id],
    ]);
    expect(released[1]!.entries[0]!.note).toContain('held back by a maintenance window until it ended');
    // Released again (another shelf over it ended): still the one ticket.
    expect(
      svc.applyAlarmEvents([{ ...shelved, type: 'unshelve', alarm: { ...shelved.alarm, shelved: false } }]),
    ).toEqual([]);
  });
});

describe('escalation past a contact who cannot be reached', () => {
  it('a dead notification to the level-1 contact moves the ticket to level 2 at once; a repeat does nothing', async () => {
    const { svc, clock } = setup();
    await svc.start();
    const t = svc.create({ title: 'pump', site: 's1' }, 'eve');
    clock.t = T0 + 30 * MIN;
    svc.tick();
    expect(svc.get(t.id)!.escalationLevel).toBe(1);
    const failure = {
      ticketId: t.id,
      channel: 'webhook:pager',
      attempts: 5,
      dead: true,
      error: 'receiver answered 503',
      level: 1,
      contact: CONTACTS[0],
    };
    svc.onDeliveryFailure(failure);
    const after = svc.get(t.id)!;
    expect(after.escalationLevel).toBe(2);
    const last = after.history.at(-1)!;
    expect(last).toMatchObject({ action: 'escalate', data: { kind: 'unreachable', level: 2 } });
    expect(last.note).toContain('on-call engineer not reached (webhook:pager gave up after 5 attempts');
    svc.onDeliveryFailure(failure);
    expect(svc.get(t.id)!.escalationLevel).toBe(2);
  });

  it('counts failures only from afterFailures on, and not for news that reached no contact', async () => {
    const { svc, clock } = setup({ afterFailures: 3 });
    await svc.start();
    const t = svc.create({ title: 'pump', site: 's1' }, 'eve');
    clock.t = T0 + 30 * MIN;
    svc.tick();
    const f = { ticketId: t.id, channel: 'webhook:pager', dead: false, error: 'x', contact: CONTACTS[0] };
    svc.onDeliveryFailure({ ...f, attempts: 2, level: 1 });
    svc.onDeliveryFailure({ ...f, attempts: 3, level: undefined });
    expect(svc.get(t.id)!.escalationLevel).toBe(1);
    svc.onDeliveryFailure({ ...f, attempts: 3, level: 1 });
    expect(svc.get(t.id)!.escalationLevel).toBe(2);
  });

  it('not acknowledged within ackTimeoutMin after reaching a contact: the next level', async () => {
    const { svc, clock } = setup({ ackTimeoutMin: 10 });
    await svc.start();
    const t = svc.create({ title: 'pump', site: 's1' }, 'eve');
    clock.t = T0 + 30 * MIN;
    svc.tick();
    clock.t = T0 + 39 * MIN;
    svc.tick();
    expect(svc.get(t.id)!.escalationLevel).toBe(1);
    clock.t = T0 + 40 * MIN;
    svc.tick();
    const after = svc.get(t.id)!;
    expect(after.escalationLevel).toBe(2);
    expect(after.history.at(-1)!.note).toContain('not acknowledged within 10 min');
    // Acknowledged: no more skipping.
    svc.act(t.id, { action: 'acknowledge', actor: 'eve' });
    clock.t = T0 + 60 * MIN;
    svc.tick();
    expect(svc.get(t.id)!.escalationLevel).toBe(2);
  });
});

describe('which contact a queued notification carries news to', () => {
  const row = (channel: string, changes: unknown[], target: unknown = null): QueueRow => ({
    seq: 1,
    eventId: 'evt_1',
    channel,
    event: 'ticket.escalated',
    ticketId: 'WO-000001',
    createdAt: T0,
    body: JSON.stringify({ id: 'evt_1', type: 'ticket.escalated', occurredAt: '', ticket: {}, changes }),
    target: target === null ? null : JSON.stringify(target),
    state: 'pending',
    attempts: 0,
    nextAt: T0,
    queuedAt: T0,
    lastStatus: null,
    lastError: null,
    deliveredAt: null,
  });
  const esc = (level: number, contact: unknown) => ({ action: 'escalate', data: { level, contact } });

  it('the contact reached through this channel, the highest level when several', () => {
    expect(contactOfRow(row('webhook:pager', [esc(1, CONTACTS[0])]))?.level).toBe(1);
    expect(contactOfRow(row('webhook:cmms', [esc(1, CONTACTS[0])]))).toBeUndefined();
    expect(
      contactOfRow(row('email', [esc(1, CONTACTS[0]), esc(2, CONTACTS[1])], { to: ['sup@plant.example'] })),
    ).toMatchObject({ level: 2 });
    expect(contactOfRow(row('email', [esc(2, CONTACTS[1])], { to: ['desk@plant.example'] }))).toBeUndefined();
    expect(contactOfRow(row('email', [{ action: 'comment' }]))).toBeUndefined();
  });
});

describe('languages', () => {
  it('a ticket event in Chinese and in English', async () => {
    const { svc } = setup();
    await svc.start();
    const [e] = svc.applyAlarmEvents([ev('raise')]);
    const p = payloadOf('evt_1', e!, T0, 'zh');
    expect(p.language).toBe('zh');
    const zh = eventText(p, 'zh');
    expect(zh.subject).toMatch(/^\[紧急，安全\] WO-000001 已创建: /);
    expect(zh.text).toContain('状态 待处理，优先级 紧急，类别 安全');
    const en = eventText(p, 'en');
    expect(en.subject).toMatch(/^\[critical, SAFETY\] WO-000001 created: /);
    expect(p.text?.subject).toBe(zh.subject);
  });

  it('the monthly CSV in Chinese: headers and labels translated, data kept, with a byte-order mark', () => {
    const r = monthlyReport({
      month: '2026-10',
      timeZone: 'UTC',
      site: null,
      generatedAt: Date.UTC(2026, 10, 5),
      tickets: [],
      alarms: [
        { site: 's1', rule: 'chlorine.free.low', severity: 'warning', raisedAt: Date.UTC(2026, 9, 5) },
      ],
      readRates: [],
    });
    if ('ok' in r) throw new Error(r.message);
    const zh = monthlyReportCsv(r, 'zh');
    expect(zh.startsWith('\uFEFF部分,概要\r\n月份,时区,')).toBe(true);
    expect(zh).toContain('\r\n部分,告警\r\n分类,键,数量\r\n合计,,1\r\n');
    expect(zh).toContain('rule,chlorine.free.low,1'.replace('rule', '规则'));
    const en = monthlyReportCsv(r);
    expect(en.startsWith('section,summary\r\nmonth,timeZone,')).toBe(true);
  });
});
