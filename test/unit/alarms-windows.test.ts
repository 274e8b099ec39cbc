import { describe, expect, it } from 'vitest';
import {
  compileSchedule,
  coveringWindow,
  isFinished,
  nextOccurrence,
  occurrenceAt,
  scopeMatches,
  type MaintenanceWindow,
  type WindowSchedule,
} from '../../gateway/src/alarms/windows.js';

const T0 = Date.parse('2026-01-05T00:00:00Z'); // a Monday
const H = 3_600_000;

function win(schedule: WindowSchedule, scope: Partial<MaintenanceWindow> = {}): MaintenanceWindow {
  return {
    id: 'w1',
    site: 'plant-1',
    device: null,
    kind: null,
    rule: null,
    schedule,
    reason: 'tank cleaning',
    createdBy: 'eng',
    createdAt: T0 - H,
    endedAt: null,
    endedBy: null,
    ...scope,
  };
}

const subject = { site: 'plant-1', device: 'tank-1', kind: 'chlorination', rule: 'chlorine-low' };

describe('maintenance window matching', () => {
  it('a one-off window covers [from, to) and nothing else', () => {
    const w = win({ type: 'once', fromMs: T0 + H, toMs: T0 + 3 * H });
    expect(occurrenceAt(w, T0 + H - 1)).toBeUndefined();
    expect(occurrenceAt(w, T0 + H)).toEqual({ from: T0 + H, to: T0 + 3 * H });
    expect(occurrenceAt(w, T0 + 3 * H - 1)).toBeDefined();
    expect(occurrenceAt(w, T0 + 3 * H)).toBeUndefined();
    expect(isFinished(w, T0 + 3 * H)).toBe(true);
    expect(isFinished(w, T0)).toBe(false);
  });

  it('a weekly RRULE window covers each occurrence for its duration', () => {
    // Every Monday and Thursday 02:00 UTC, two hours: the tank's cleaning.
    const w = win({
      type: 'rrule',
      rrule: 'DTSTART:20260105T020000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO,TH',
      durationMin: 120,
    });
    expect(occurrenceAt(w, T0 + 2 * H + 30 * 60_000)).toEqual({ from: T0 + 2 * H, to: T0 + 4 * H });
    expect(occurrenceAt(w, T0 + 4 * H)).toBeUndefined();
    expect(occurrenceAt(w, T0 + 24 * H + 3 * H)).toBeUndefined(); // Tuesday
    expect(occurrenceAt(w, T0 + 3 * 24 * H + 3 * H)).toBeDefined(); // Thursday
    expect(nextOccurrence(w, T0 + 5 * H)?.from).toBe(T0 + 3 * 24 * H + 2 * H);
  });

  it('an RRULE with a TZID follows local time', () => {
    // 02:00 in Shanghai is 18:00 UTC the day before.
    const w = win({
      type: 'rrule',
      rrule: 'DTSTART;TZID=Asia/Shanghai:20260105T020000\nRRULE:FREQ=DAILY',
      durationMin: 60,
    });
    expect(occurrenceAt(w, Date.parse('2026-01-06T18:30:00Z'))).toBeDefined();
    expect(occurrenceAt(w, Date.parse('2026-01-06T02:30:00Z'))).toBeUndefined();
  });

  it('a cron window in a time zone', () => {
    const w = win({ type: 'cron', cron: '0 2 * * 1', timeZone: 'Asia/Shanghai', durationMin: 90 });
    // Monday 02:00 Shanghai = Sunday 18:00 UTC.
    const start = Date.parse('2026-01-11T18:00:00Z');
    expect(occurrenceAt(w, start + 60 * 60_000)).toEqual({ from: start, to: start + 90 * 60_000 });
    expect(occurrenceAt(w, start + 90 * 60_000)).toBeUndefined();
    expect(occurrenceAt(w, start - 1)).toBeUndefined();
  });

  it('ending early cuts the running occurrence and every later one', () => {
    const w = win({ type: 'rrule', rrule: 'DTSTART:20260105T020000Z\nRRULE:FREQ=DAILY', durationMin: 120 });
    const ended = { ...w, endedAt: T0 + 2 * H + 30 * 60_000, endedBy: 'eng' };
    expect(occurrenceAt(ended, T0 + 2 * H + 10 * 60_000)?.to).toBe(T0 + 2 * H + 30 * 60_000);
    expect(occurrenceAt(ended, T0 + 2 * H + 40 * 60_000)).toBeUndefined();
    expect(occurrenceAt(ended, T0 + 26 * H + 10 * 60_000)).toBeUndefined();
    expect(nextOccurrence(ended, T0)).toBeUndefined();
    expect(isFinished(ended, T0 + 3 * H)).toBe(true);
  });

  it('scope: every field given must match', () => {
    const w = win({ type: 'once', fromMs: T0, toMs: T0 + H }, { kind: 'chlorination', rule: 'chlorine-low' });
    expect(scopeMatches(w, subject)).toBe(true);
    expect(scopeMatches(w, { ...subject, rule: 'ph-high' })).toBe(false);
    expect(scopeMatches(w, { ...subject, site: 'plant-2' })).toBe(false);
    expect(scopeMatches({ ...w, device: 'tank-2' }, subject)).toBe(false);
    expect(coveringWindow([w], subject, T0 + 1)?.id).toBe('w1');
    expect(coveringWindow([w], subject, T0 + H)).toBeUndefined();
  });

  it('refuses schedules it cannot read, with the reason', () => {
    expect(() => compileSchedule({ type: 'once', fromMs: T0, toMs: T0 })).toThrow(/after/);
    expect(() => compileSchedule({ type: 'rrule', rrule: 'RRULE:FREQ=DAILY', durationMin: 5 })).toThrow(
      /DTSTART/,
    );
    expect(() => compileSchedule({ type: 'rrule', rrule: 'nonsense', durationMin: 5 })).toThrow(/rrule/);
    expect(() =>
      compileSchedule({ type: 'cron', cron: '0 25 * * *', timeZone: 'UTC', durationMin: 5 }),
    ).toThrow(/cron/);
  });
});
