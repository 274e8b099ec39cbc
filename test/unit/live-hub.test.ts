import { describe, expect, it } from 'vitest';
import { escapeTag, quoteField, alarmEventLine } from '../../gateway/src/alarms/line-protocol.js';
import type { AlarmEvent } from '../../gateway/src/alarms/types.js';
import { LiveHub, type LiveEvent } from '../../gateway/src/live/hub.js';
import { ReadingThrottle } from '../../gateway/src/live/reading-throttle.js';
import { EventClock } from '../../gateway/src/rules/clock.js';
import { testAlarm } from '../fixtures/alarm.js';

describe('live hub and reading throttle', () => {
  it('coalesces readings to one per device per flush, and costs nothing without subscribers', () => {
    const hub = new LiveHub();
    const t = new ReadingThrottle(hub, 1000);
    const r = (device: string, ts: number) => ({
      site: 's',
      kind: 'env-probe',
      device,
      ts,
      fields: { x: ts },
    });
    t.onReading(r('a', 1));
    t.flush();
    expect(hub.stats().published).toBe(0);
    const got: LiveEvent[] = [];
    const off = hub.subscribe((e) => got.push(e));
    for (let i = 0; i < 1000; i++) t.onReading(r(i % 2 ? 'a' : 'b', i));
    t.flush();
    expect(
      got
        .map((e) => JSON.parse(e.json) as { device: string; values: { x: number } })
        .map((d) => [d.device, d.values.x]),
    ).toEqual([
      ['b', 998],
      ['a', 999],
    ]);
    t.flush();
    expect(got.length).toBe(2);
    off();
    expect(hub.subscribers).toBe(0);
  });

  it('a failing subscriber does not stop the others', () => {
    const hub = new LiveHub();
    let n = 0;
    hub.subscribe(() => {
      throw new Error('boom');
    });
    hub.subscribe(() => n++);
    hub.publish('alarm', { a: 1 });
    expect(n).toBe(1);
    expect(hub.stats().failures).toBe(1);
  });
});

describe('alarm_event line protocol', () => {
  it('escapes tags and string fields and keeps one line', () => {
    expect(escapeTag('a b,c=d')).toBe('a\\ b\\,c\\=d');
    expect(escapeTag('end\\')).toBe('end\\\\');
    expect(quoteField('say "hi"\\\nbye')).toBe('"say \\"hi\\"\\\\ bye"');
    const e: AlarmEvent = {
      type: 'raise',
      ts: 1767225600000,
      alarm: testAlarm({
        id: 'id-1',
        site: 'site 1',
        device: 'd,1',
        kind: 'env-probe',
        rule: 'r=1',
        class: 'key',
        severity: 'warning',
        value: true,
        message: 'line one\nline "two"',
        raisedAt: 1767225600000,
      }),
    };
    expect(alarmEventLine(e)).toBe(
      'alarm_event,device=d\\,1,event=raise,rule=r\\=1,severity=warning,site=site\\ 1 ' +
        'alarm_id="id-1",state="active-unacknowledged",value=1,message="line one line \\"two\\"",shelved=false 1767225600000\n',
    );
  });
});

describe('event clock', () => {
  it('is the wall clock for live data, reading time for a replay, never ahead of the wall', () => {
    let wall = 1_000_000;
    const c = new EventClock(() => wall);
    expect(c.now()).toBe(wall);
    c.observe(500_000); // a replay: readings far in the past
    expect(c.now()).toBe(500_000);
    wall += 5000;
    expect(c.now()).toBe(505_000); // advances with the wall between readings
    c.observe(2_000_000); // a device with a clock running fast
    expect(c.now()).toBe(wall);
  });
});
