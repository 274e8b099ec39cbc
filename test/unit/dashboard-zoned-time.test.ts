import { describe, expect, it } from 'vitest';
import { fmtZoned, zonedInput, zonedInstant } from '../../dashboards/web/src/zoned-time.js';

/** Schedule times in the schedule's zone, not the browser's (the test process runs in its own zone). */
describe('zoned schedule times in the dashboard', () => {
  it('shows an instant on the schedule zone’s wall clock', () => {
    const t = Date.parse('2026-12-10T01:00:00Z');
    expect(fmtZoned(t, 'en', 'Asia/Shanghai')).toBe('12/10, 09:00 AM');
    expect(fmtZoned(t, 'en', 'America/New_York')).toBe('12/09, 08:00 PM');
    expect(fmtZoned(t, 'zh-CN', 'Asia/Shanghai')).toContain('09:00');
    expect(fmtZoned(null, 'en', 'UTC')).toBe('–');
  });

  it('a datetime-local value round-trips through the schedule zone', () => {
    const t = Date.parse('2026-12-10T01:00:00Z');
    expect(zonedInput(t, 'Asia/Shanghai')).toBe('2026-12-10T09:00');
    expect(zonedInstant('2026-12-10T09:00', 'Asia/Shanghai')).toBe(t);
    expect(zonedInstant('2026-12-09T20:00', 'America/New_York')).toBe(t);
    // Summer time in Berlin (UTC+2), winter (UTC+1).
    expect(zonedInstant('2026-07-01T08:00', 'Europe/Berlin')).toBe(Date.parse('2026-07-01T06:00:00Z'));
    expect(zonedInstant('2026-12-01T08:00', 'Europe/Berlin')).toBe(Date.parse('2026-12-01T07:00:00Z'));
    // 02:30 does not exist on 2026-03-29 in Berlin: it falls due after the change.
    expect(zonedInstant('2026-03-29T02:30', 'Europe/Berlin')).toBe(Date.parse('2026-03-29T01:30:00Z'));
    expect(zonedInstant('not a time', 'UTC')).toBeUndefined();
  });
});
