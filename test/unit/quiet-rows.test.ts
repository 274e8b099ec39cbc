import { describe, expect, it } from 'vitest';
import { buildShelf, buildWindow } from '../../gateway/src/alarms/quiet-requests.js';
import {
  lastUntil,
  notShared,
  rowToShelf,
  rowToWindow,
  shelfAsListed,
  shelfToRow,
  windowToRow,
} from '../../gateway/src/quiet/rows.js';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

describe('shared shelf and window rows', () => {
  it('a shelf and a window survive the round trip through their rows', () => {
    const s = {
      ...buildShelf(
        { device: 'd1', untilMs: T0 + MIN, user: 'ann', userSubject: 'iss#a', reason: 'r' },
        T0,
        's-1',
      ),
      endedAt: T0 + 1,
      endedBy: 'bob',
      endedBySubject: null,
    };
    const row = shelfToRow(s);
    expect(
      rowToShelf({ ...row, ended_at: row.ended_at ?? null } as Parameters<typeof rowToShelf>[0]),
    ).toEqual(s);
    const w = buildWindow(
      {
        kind: 'chlorination',
        schedule: { type: 'cron', cron: '0 2 * * 1', timeZone: 'UTC', durationMin: 60 },
        user: 'ann',
        reason: 'r',
      },
      T0,
      'w-1',
    );
    expect(rowToWindow(windowToRow(w) as Parameters<typeof rowToWindow>[0])).toEqual(w);
  });

  it('bigint columns read back as strings are numbers again', () => {
    const row = shelfToRow(buildShelf({ site: 's', untilMs: T0 + MIN, user: 'u', reason: 'r' }, T0, 'x'));
    const asText = {
      ...row,
      from_ms: String(row.from_ms),
      until_ms: String(row.until_ms),
      created_at: String(T0),
    };
    expect(rowToShelf(asText as unknown as Parameters<typeof rowToShelf>[0]).untilMs).toBe(T0 + MIN);
  });

  it('a one-off window runs out at its end; a recurring one is open-ended', () => {
    const base = { site: 's', user: 'u', reason: 'r' };
    expect(
      lastUntil(buildWindow({ ...base, schedule: { type: 'once', fromMs: T0, toMs: T0 + MIN } }, T0, 'a')),
    ).toBe(T0 + MIN);
    expect(
      lastUntil(
        buildWindow(
          {
            ...base,
            schedule: { type: 'rrule', rrule: 'DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY', durationMin: 5 },
          },
          T0,
          'b',
        ),
      ),
    ).toBeNull();
  });

  it('a shelf whose time ran out is listed as ended by the system at its end', () => {
    const s = buildShelf({ site: 's', untilMs: T0 + MIN, user: 'u', reason: 'r' }, T0, 'x');
    expect(shelfAsListed(s, T0)).toBe(s);
    expect(shelfAsListed(s, T0 + MIN)).toMatchObject({ endedAt: T0 + MIN, endedBy: 'system' });
    const ended = { ...s, endedAt: T0 + 5, endedBy: 'bob' };
    expect(shelfAsListed(ended, T0 + 2 * MIN)).toBe(ended);
  });

  it('local records the shared rows do not know are the ones to share', () => {
    expect(notShared([{ id: 'a' }, { id: 'b' }, { id: 'c' }], [{ id: 'b' }]).map((x) => x.id)).toEqual([
      'a',
      'c',
    ]);
    expect(notShared([], [{ id: 'b' }])).toEqual([]);
  });
});
