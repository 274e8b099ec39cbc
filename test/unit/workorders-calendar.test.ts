import { describe, expect, it } from 'vitest';
import { openDb } from '../../gateway/src/storage/db.js';
import {
  allowedActions,
  deadlinesOf,
  TicketError,
  ticketToJson,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  workordersSchema,
} from '../../gateway/src/workorders/index.js';
import { calendarSchema } from '../../gateway/src/workorders/schema.js';
import { WorkCalendar } from '../../gateway/src/workorders/work-calendar.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
/** Local time in Shanghai (UTC+8, no daylight saving) as epoch ms. */
const cst = (d: number, h: number, m = 0) => Date.UTC(2026, 9, d, h - 8, m);
const utc = (d: number, h: number, m = 0) => Date.UTC(2026, 9, d, h, m);
const shanghai = { enabled: true, timeZone: 'Asia/Shanghai', holidays: ['2026-10-14'] };

function service(cfg: Record<string, unknown>, clock: { t: number }) {
  return new WorkOrderService({
    db: openDb(':memory:', WORKORDER_MIGRATIONS),
    config: workordersSchema.parse(cfg),
    now: () => clock.t,
  });
}

describe('working-hours calendar', () => {
  // October 2026: the 9th is a Friday, the 12th a Monday.
  const cal = new WorkCalendar(calendarSchema.parse(shanghai));

  it('adds working time across the evening, the weekend and a holiday', () => {
    // Friday 16:00 + 4 h: one hour on Friday, three on Monday.
    expect(cal.add(cst(9, 16), 4 * HOUR)).toBe(cst(12, 11));
    expect(cal.between(cst(9, 16), cst(12, 11))).toBe(4 * HOUR);
    // From Saturday: the clock starts on Monday at 08:00.
    expect(cal.add(cst(10, 12), 30 * MIN)).toBe(cst(12, 8, 30));
    // Tuesday 16:00 + 2 h: Wednesday the 14th is a holiday, so Thursday 09:00.
    expect(cal.add(cst(13, 16), 2 * HOUR)).toBe(cst(15, 9));
    // Exactly at the end of the day stays on that day.
    expect(cal.add(cst(9, 16, 30), 30 * MIN)).toBe(cst(9, 17));
    expect(cal.between(cst(10, 0), cst(11, 23))).toBe(0);
  });

  it('follows the time zone through a daylight-saving change', () => {
    // Berlin, Sunday 29 March 2026: clocks go forward, the local day has 23 hours.
    const berlin = new WorkCalendar(
      calendarSchema.parse({
        enabled: true,
        timeZone: 'Europe/Berlin',
        days: [7],
        hours: { start: '00:00', end: '24:00' },
      }),
    );
    const dayStart = Date.UTC(2026, 2, 28, 23); // 00:00 CET
    expect(berlin.between(dayStart, dayStart + 48 * HOUR)).toBe(23 * HOUR);
    // 09:00–17:00 local is 07:00–15:00 UTC after the change.
    const office = new WorkCalendar(
      calendarSchema.parse({
        enabled: true,
        timeZone: 'Europe/Berlin',
        days: [7],
        hours: { start: '09:00', end: '17:00' },
      }),
    );
    expect(office.add(dayStart, HOUR)).toBe(Date.UTC(2026, 2, 29, 8));
  });

  it('deadlines count working time for the listed priorities; critical runs round the clock', () => {
    const cfg = workordersSchema.parse({ calendar: shanghai });
    // Medium raised Friday 16:30: respond by 17:00, resolve (4 h) by Monday 11:30.
    expect(deadlinesOf(cfg, 'medium', cst(9, 16, 30))).toEqual({
      responseDueAt: cst(9, 17),
      resolveDueAt: cst(12, 11, 30),
    });
    expect(deadlinesOf(cfg, 'critical', cst(9, 16, 30))).toEqual({
      responseDueAt: cst(9, 16, 45),
      resolveDueAt: cst(9, 18, 30),
    });
    const off = workordersSchema.parse({});
    expect(deadlinesOf(off, 'medium', cst(9, 16, 30)).resolveDueAt).toBe(cst(9, 20, 30));
  });

  it('escalation checks follow the calendar', () => {
    const clock = { t: cst(9, 16, 30) };
    const svc = service({ calendar: shanghai }, clock);
    const t = svc.create({ title: 'Valve', site: 'estate', priority: 'medium' }, 'desk');
    expect(svc.tick(cst(9, 20))).toHaveLength(1); // the response deadline, Friday 17:00
    expect(svc.get(t.id)!.escalationLevel).toBe(1);
    // The next response check is one escalation interval (4 h) of working time later: Monday 12:00.
    expect(svc.get(t.id)!.nextResponseCheckAt).toBe(cst(12, 12));
    expect(svc.tick(cst(11, 12))).toHaveLength(0); // nothing over the weekend
    expect(svc.tick(cst(12, 11, 29))).toHaveLength(0);
    svc.tick(cst(12, 11, 30)); // the resolution deadline
    expect(svc.get(t.id)!.breaches).toEqual({ response: 1, resolve: 1 });
    svc.tick(cst(12, 12));
    expect(svc.get(t.id)!.breaches).toEqual({ response: 2, resolve: 1 });
  });

  it('bad calendar settings name their key path', () => {
    const r = workordersSchema.safeParse({
      calendar: {
        timeZone: 'Mars/Olympus',
        hours: { start: '18:00', end: '08:00' },
        holidays: ['2026-13-01'],
      },
    });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining(['calendar.timeZone', 'calendar.hours.end', 'calendar.holidays.0']),
    );
  });
});

describe('hold and resume: the resolution clock pauses', () => {
  it('stops resolution escalation while on hold and moves the deadline out by the time held', () => {
    const T0 = utc(5, 9);
    const clock = { t: T0 };
    const svc = service({}, clock);
    const t = svc.create({ title: 'Pump seal', site: 'estate', priority: 'medium' }, 'desk');
    expect(t.resolveDueAt).toBe(T0 + 4 * HOUR);
    clock.t = T0 + 10 * MIN;
    svc.act(t.id, { action: 'acknowledge', actor: 'eve' });
    clock.t = T0 + HOUR;
    expect(() => svc.act(t.id, { action: 'hold', actor: 'eve' })).toThrow(TicketError);
    const held = svc.act(t.id, { action: 'hold', actor: 'eve', note: 'waiting for parts: seal kit' });
    expect(held).toMatchObject({ onHold: true, heldSince: T0 + HOUR, status: 'acknowledged' });
    expect(allowedActions(held)).toContain('resume');
    expect(allowedActions(held)).not.toContain('hold');
    expect(() => svc.act(t.id, { action: 'hold', actor: 'eve', note: 'again' })).toThrow(/already on hold/);
    // Past the original resolution deadline: no escalation while on hold.
    expect(svc.tick(T0 + 5 * HOUR)).toHaveLength(0);
    clock.t = T0 + 7 * HOUR;
    const resumed = svc.act(t.id, { action: 'resume', actor: 'eve', note: 'parts arrived' });
    expect(resumed).toMatchObject({ onHold: false, heldMs: 6 * HOUR, resolveDueAt: T0 + 10 * HOUR });
    const last = resumed.history[resumed.history.length - 1]!;
    expect(last).toMatchObject({ action: 'resume', note: 'parts arrived', data: { heldMs: 6 * HOUR } });
    expect(() => svc.act(t.id, { action: 'resume', actor: 'eve' })).toThrow(/not on hold/);
    expect(svc.tick(T0 + 10 * HOUR - 1)).toHaveLength(0);
    expect(svc.tick(T0 + 10 * HOUR)).toHaveLength(1);
    expect(svc.get(t.id)!.breaches.resolve).toBe(1);
    const json = ticketToJson(svc.get(t.id)!);
    expect(json).toMatchObject({ onHold: false, heldMs: 6 * HOUR, heldSince: null });
  });

  it('with the calendar, the time held counts in working hours', () => {
    const cal = { enabled: true, timeZone: 'UTC' };
    const clock = { t: utc(5, 9) }; // Monday 09:00
    const svc = service({ calendar: cal }, clock);
    const t = svc.create({ title: 'Door closer', site: 'estate', priority: 'medium' }, 'desk');
    expect(t.resolveDueAt).toBe(utc(5, 13));
    clock.t = utc(5, 10);
    svc.act(t.id, { action: 'hold', actor: 'eve', note: 'waiting for parts' });
    clock.t = utc(6, 9); // Tuesday 09:00: held 7 h on Monday and 1 h on Tuesday
    const r = svc.act(t.id, { action: 'resume', actor: 'eve' });
    // 13:00 Monday + 8 working hours: 4 h to 17:00, then 4 h from Tuesday 08:00.
    expect(r.resolveDueAt).toBe(utc(6, 12));
    expect(r.heldMs).toBe(23 * HOUR);
  });

  it('resolving ends a hold and keeps its time', () => {
    const clock = { t: utc(5, 9) };
    const svc = service({}, clock);
    const t = svc.create({ title: 'Meter swap', site: 'estate' }, 'desk');
    svc.act(t.id, { action: 'acknowledge', actor: 'eve' });
    svc.act(t.id, { action: 'assign', actor: 'eve', assignee: 'eve' });
    svc.act(t.id, { action: 'start', actor: 'eve' });
    clock.t = utc(5, 10);
    svc.act(t.id, { action: 'hold', actor: 'eve', note: 'waiting for the meter' });
    clock.t = utc(5, 12);
    const r = svc.act(t.id, { action: 'resolve', actor: 'eve' });
    expect(r).toMatchObject({ status: 'resolved', onHold: false, heldMs: 2 * HOUR });
  });
});

describe('where the clock pauses: the hold reasons of the config', () => {
  const hold = (svc: WorkOrderService, id: string, reason?: string) =>
    svc.act(id, { action: 'hold', actor: 'eve', note: 'see reason', ...(reason ? { reason } : {}) });

  it('a configured reason stops the clock, a running reason records the hold and leaves it running', () => {
    const T0 = utc(5, 9);
    const clock = { t: T0 };
    const svc = service(
      { pause: { reasons: ['waiting_for_parts'], runningReasons: ['awaiting_approval'] } },
      clock,
    );
    const parts = svc.create({ title: 'Pump seal', site: 'estate', priority: 'medium' }, 'desk');
    const approval = svc.create({ title: 'New valve', site: 'estate', priority: 'medium' }, 'desk');
    for (const t of [parts, approval]) svc.act(t.id, { action: 'acknowledge', actor: 'eve' });
    clock.t = T0 + HOUR;
    const p = hold(svc, parts.id, 'waiting_for_parts');
    const a = hold(svc, approval.id, 'awaiting_approval');
    expect(ticketToJson(p)).toMatchObject({
      onHold: true,
      holdReason: 'waiting_for_parts',
      clockPaused: true,
    });
    expect(ticketToJson(a)).toMatchObject({
      onHold: true,
      holdReason: 'awaiting_approval',
      clockPaused: false,
    });
    expect(a.history.at(-1)!.data).toEqual({ reason: 'awaiting_approval', clockPaused: false });
    // Past the 4-hour resolution deadline: only the ticket whose clock runs escalates.
    const escalated = svc.tick(T0 + 5 * HOUR);
    expect(escalated.map((e) => e.ticket.id)).toEqual([approval.id]);
    clock.t = T0 + 6 * HOUR;
    const rp = svc.act(parts.id, { action: 'resume', actor: 'eve' });
    const ra = svc.act(approval.id, { action: 'resume', actor: 'eve' });
    expect(rp).toMatchObject({ heldMs: 5 * HOUR, resolveDueAt: T0 + 9 * HOUR });
    // The clock ran: nothing is taken off the resolution time, the deadline stays.
    expect(ra).toMatchObject({ heldMs: 0, resolveDueAt: T0 + 4 * HOUR });
  });

  it('an unknown reason is refused with the configured ones; a hold without a reason follows withoutReason', () => {
    const clock = { t: utc(5, 9) };
    const svc = service({ pause: { withoutReason: false } }, clock);
    const t = svc.create({ title: 'Door', site: 'estate' }, 'desk');
    let err: TicketError | undefined;
    try {
      hold(svc, t.id, 'waiting_for_part');
    } catch (e) {
      err = e as TicketError;
    }
    expect(err).toBeInstanceOf(TicketError);
    expect(err!.status).toBe(400);
    expect(err!.message).toContain('waiting_for_parts, waiting_for_customer, waiting_for_access');
    expect(svc.get(t.id)!.onHold).toBe(false);
    const plain = hold(svc, t.id);
    expect(ticketToJson(plain)).toMatchObject({ onHold: true, holdReason: null, clockPaused: false });
    // With the default withoutReason: true, a hold without a reason pauses as it always did.
    const dflt = service({}, clock);
    const d = dflt.create({ title: 'Door', site: 'estate' }, 'desk');
    expect(ticketToJson(hold(dflt, d.id))).toMatchObject({ clockPaused: true });
  });

  it('a reason in both lists is a config error naming its key path', () => {
    const r = workordersSchema.safeParse({ pause: { reasons: ['a_b'], runningReasons: ['a_b'], x: 1 } });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['pause', 'pause.runningReasons.0']);
    expect(workordersSchema.safeParse({ pause: { reasons: ['Waiting For Parts'] } }).success).toBe(false);
  });
});
