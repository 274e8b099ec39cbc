import { describe, expect, it } from 'vitest';
import { Ring } from '../../dashboards/web/src/ring.js';
import { slaOf, type SlaTicket } from '../../dashboards/web/src/sla.js';
import { alarmText, historyNote, ticketTitle } from '../../dashboards/web/src/messages.js';
import { occurrenceStatus } from '../../dashboards/web/src/occurrence.js';
import { FORMS, formValues } from '../../dashboards/web/src/forms.js';
import { qualityIn } from '../../dashboards/web/src/quality.js';

const T0 = Date.parse('2026-11-02T08:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const MIN = 60_000;

function ticket(over: Partial<SlaTicket> = {}): SlaTicket {
  return {
    status: 'open',
    createdAt: iso(T0),
    respondedAt: null,
    responseDueAt: iso(T0 + 30 * MIN),
    resolveDueAt: iso(T0 + 240 * MIN),
    ...over,
  };
}

describe('SLA countdown', () => {
  it('turns amber at half the response window, red at a fifth, and breached past the deadline', () => {
    expect(slaOf(ticket(), T0 + 5 * MIN)).toEqual({ label: 'respond', left: 25 * MIN, cls: 'sla-ok' });
    expect(slaOf(ticket(), T0 + 16 * MIN)!.cls).toBe('sla-amber');
    expect(slaOf(ticket(), T0 + 25 * MIN)!.cls).toBe('sla-red');
    const late = slaOf(ticket(), T0 + 31 * MIN)!;
    expect(late.cls).toBe('sla-breach');
    expect(late.left).toBe(-MIN);
  });

  it('follows the resolution deadline once someone responded, and stops when resolved', () => {
    const acked = ticket({ status: 'assigned', respondedAt: iso(T0 + 10 * MIN) });
    expect(slaOf(acked, T0 + 60 * MIN)).toEqual({ label: 'resolveBy', left: 180 * MIN, cls: 'sla-ok' });
    expect(slaOf(acked, T0 + 200 * MIN)!.cls).toBe('sla-red');
    expect(slaOf({ ...acked, status: 'resolved' }, T0 + 300 * MIN)).toBeNull();
    expect(slaOf({ ...acked, status: 'closed' }, T0 + 300 * MIN)).toBeNull();
    expect(slaOf(ticket({ responseDueAt: null }), T0)).toBeNull();
  });

  it('stands still while a responded ticket is on hold, and keeps running for one nobody responded to', () => {
    const held = ticket({
      status: 'in_progress',
      respondedAt: iso(T0 + 10 * MIN),
      onHold: true,
      heldSince: iso(T0 + 100 * MIN),
    });
    const paused = { label: 'held', left: 140 * MIN, cls: 'sla-held' };
    expect(slaOf(held, T0 + 120 * MIN)).toEqual(paused);
    // Long past the deadline it would have had: still what was left when it went on hold.
    expect(slaOf(held, T0 + 600 * MIN)).toEqual(paused);
    // A hold whose reason leaves the clock running (workorders.pause.runningReasons) counts down.
    expect(slaOf({ ...held, clockPaused: false }, T0 + 120 * MIN)).toMatchObject({
      label: 'resolveBy',
      left: 120 * MIN,
    });
    const unanswered = ticket({ onHold: true, heldSince: iso(T0 + 5 * MIN) });
    expect(slaOf(unanswered, T0 + 20 * MIN)).toMatchObject({ label: 'respond', left: 10 * MIN });
  });
});

describe('alarm messages and ticket titles for people', () => {
  it('rewrites threshold messages into metric, level, value with unit and limit, in both languages', () => {
    const m = 'free_chlorine_mgl 0.03 below lowLow limit 0.05';
    expect(alarmText(m, 'chlorine.free.low', 'en')).toBe('Free chlorine low-low: 0.03 mg/L < 0.05');
    expect(alarmText(m, 'chlorine.free.low', 'zh-CN')).toBe('游离氯 超低限：0.03 mg/L < 0.05');
    expect(alarmText('temperature_c 33.1 above highHigh limit 32', 'serverroom.temperature', 'en')).toBe(
      'Temperature high-high: 33.1 °C > 32',
    );
    expect(alarmText('temperature_c change per hour 6.2 above high limit 5', 'x', 'en')).toBe(
      'Temperature change per hour high: 6.2 °C/h > 5',
    );
    expect(alarmText('flow_lph (rated max 2500) 2700 above high limit 2500', 'x', 'zh-CN')).toBe(
      '流量（额定值） 高限：2700 L/h > 2500',
    );
    expect(alarmText('free_chlorine_mgl 0.4 back within low limit 0.3', 'x', 'en')).toBe(
      'Free chlorine back within low limit: 0.4 mg/L (limit 0.3)',
    );
  });

  it('names condition alarms by their rule and keeps unknown messages as they are', () => {
    expect(
      alarmText('Door open longer than 10 minutes (default) for 10 min', 'serverroom.door.open', 'en'),
    ).toBe('Door open too long, for 10 min');
    expect(alarmText('Meter tamper switch', 'gas.tamper', 'zh-CN')).toBe('防拆报警');
    expect(alarmText('Meter tamper switch: no longer', 'gas.tamper', 'zh-CN')).toBe('防拆报警：已恢复');
    expect(alarmText('no data for 3 reporting intervals (45 min)', 'device.offline', 'zh-CN')).toBe(
      '45 分钟无数据（3 个上报周期）',
    );
    expect(alarmText('a site rule of its own', 'site.custom', 'zh-CN')).toBe('a site rule of its own');
  });

  it('translates work-order titles and the gateway notes of their history', () => {
    const alarmTicket = {
      title: 'free_chlorine_mgl 0.03 below lowLow limit 0.05 (demo/tank-1)',
      rule: 'chlorine.free.low',
    };
    expect(ticketTitle(alarmTicket, 'en')).toBe('Free chlorine low-low: 0.03 mg/L < 0.05 (demo/tank-1)');
    const pm = { title: 'Check the backups (demo)', rule: null, maintenance: { schedule: 'backup-check' } };
    expect(ticketTitle(pm, 'zh-CN')).toBe('备份检查 (demo)');
    expect(ticketTitle({ title: 'Replace the door closer', rule: null }, 'zh-CN')).toBe(
      'Replace the door closer',
    );
    // On a board card the place is on its own line.
    expect(ticketTitle(alarmTicket, 'zh-CN', false)).toBe('游离氯 超低限：0.03 mg/L < 0.05');
    expect(
      historyNote(
        'raised by alarm 1b2c: free_chlorine_mgl 0.2 below low limit 0.3',
        'chlorine.free.low',
        'zh-CN',
      ),
    ).toBe('由告警生成：游离氯 低限：0.2 mg/L < 0.3');
    expect(
      historyNote(
        'alarm now critical: free_chlorine_mgl 0.01 below lowLow limit 0.05 (value 0.01)',
        'x',
        'zh-CN',
      ),
    ).toBe('告警升为严重：游离氯 超低限：0.01 mg/L < 0.05（数值 0.01）');
    expect(historyNote('waiting for the pump', null, 'zh-CN')).toBe('waiting for the pump');
  });
});

describe('maintenance calendar and completion form', () => {
  const NOW = T0;
  it("gives each occurrence its status: scheduled, done, overdue or the ticket's", () => {
    expect(occurrenceStatus({ ticketId: null, status: null }, null, NOW).key).toBe('cal_scheduled');
    expect(occurrenceStatus({ ticketId: 'WO-1', status: 'closed' }, null, NOW).key).toBe('cal_done');
    expect(occurrenceStatus({ ticketId: 'WO-1', status: 'assigned' }, iso(NOW - MIN), NOW).key).toBe(
      'cal_overdue',
    );
    expect(occurrenceStatus({ ticketId: 'WO-1', status: 'assigned' }, iso(NOW + MIN), NOW).key).toBe(
      'status_assigned',
    );
  });

  it('sends the disinfection form as the gateway checks it: an RFC 3339 time, a number, a unit', () => {
    const v = formValues(FORMS.disinfection!, {
      disinfectedAt: '2026-11-02T09:30',
      amount: '2.5',
      unit: 'kg',
      disinfectant: ' ',
    });
    expect(v).toEqual({ disinfectedAt: new Date('2026-11-02T09:30').toISOString(), amount: 2.5, unit: 'kg' });
  });
});

describe('sparkline ring buffer', () => {
  it('keeps the last values, oldest first', () => {
    const r = new Ring(3);
    expect(r.values()).toEqual([]);
    r.push(1);
    r.push(2);
    expect(r.values()).toEqual([1, 2]);
    r.push(3);
    r.push(4);
    r.push(5);
    expect(r.length).toBe(3);
    expect(r.values()).toEqual([3, 4, 5]);
  });
});

describe('quality of a live value', () => {
  it('marks only the metrics that are not good, or every value when the reading has one quality', () => {
    expect(qualityIn({}, 'ph')).toBe('good');
    const mixed = { quality: 'bad' as const, qualities: { free_chlorine_mgl: 'bad' as const } };
    expect(qualityIn(mixed, 'free_chlorine_mgl')).toBe('bad');
    expect(qualityIn(mixed, 'ph')).toBe('good');
    expect(qualityIn({ quality: 'uncertain' }, 'ph')).toBe('uncertain');
  });
});
