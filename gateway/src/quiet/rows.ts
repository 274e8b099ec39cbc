import type { Insertable, Selectable } from 'kysely';
import type { Shelf } from '../alarms/types.js';
import type { MaintenanceWindow, WindowSchedule } from '../alarms/windows.js';
import type { QuietTables } from './tables.js';

type ShelfRow = Selectable<QuietTables['quiet_shelves']>;
type WindowRow = Selectable<QuietTables['quiet_windows']>;

/** Between the alarm service's records and the shared tables' rows (pure). */
export function shelfToRow(s: Shelf): Insertable<QuietTables['quiet_shelves']> {
  return {
    id: s.id,
    site: s.site,
    device: s.device,
    rule: s.rule,
    from_ms: s.fromMs,
    until_ms: s.untilMs,
    user_name: s.user,
    user_subject: s.userSubject ?? null,
    reason: s.reason,
    created_at: s.createdAt,
    ended_at: s.endedAt,
    ended_by: s.endedBy,
    ended_by_subject: s.endedBySubject ?? null,
  };
}

export function rowToShelf(r: ShelfRow): Shelf {
  return {
    id: r.id,
    site: r.site,
    device: r.device,
    rule: r.rule,
    fromMs: Number(r.from_ms),
    untilMs: Number(r.until_ms),
    user: r.user_name,
    userSubject: r.user_subject,
    reason: r.reason,
    createdAt: Number(r.created_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    endedBy: r.ended_by,
    endedBySubject: r.ended_by_subject,
  };
}

/**
 * When a window can cover nothing any more, so that the rows read at every sync stay few: a
 * one-off window's end; null (open-ended) for a recurring one, whose finish is checked when read.
 */
export function lastUntil(w: MaintenanceWindow): number | null {
  return w.schedule.type === 'once' ? w.schedule.toMs : null;
}

export function windowToRow(w: MaintenanceWindow): Insertable<QuietTables['quiet_windows']> {
  return {
    id: w.id,
    site: w.site,
    device: w.device,
    kind: w.kind,
    rule: w.rule,
    schedule_json: JSON.stringify(w.schedule),
    reason: w.reason,
    created_by: w.createdBy,
    created_by_subject: w.createdBySubject ?? null,
    created_at: w.createdAt,
    last_until: lastUntil(w),
    ended_at: w.endedAt,
    ended_by: w.endedBy,
    ended_by_subject: w.endedBySubject ?? null,
  };
}

export function rowToWindow(r: WindowRow): MaintenanceWindow {
  return {
    id: r.id,
    site: r.site,
    device: r.device,
    kind: r.kind,
    rule: r.rule,
    schedule: JSON.parse(r.schedule_json) as WindowSchedule,
    reason: r.reason,
    createdBy: r.created_by,
    createdBySubject: r.created_by_subject,
    createdAt: Number(r.created_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    endedBy: r.ended_by,
    endedBySubject: r.ended_by_subject,
  };
}

/**
 * A shelf as a list shows it: one whose time ran out was ended by time on every instance (by
 * `system`, as a single gateway records it), though its shared row keeps `ended_at` empty.
 */
export function shelfAsListed(s: Shelf, now: number): Shelf {
  if (s.endedAt !== null || s.untilMs > now) return s;
  return { ...s, endedAt: s.untilMs, endedBy: 'system', endedBySubject: null };
}

/** The ids among `local` that the shared rows do not know (set before cluster mode): to be shared. */
export function notShared<T extends { id: string }>(
  local: readonly T[],
  shared: readonly { id: string }[],
): T[] {
  const known = new Set(shared.map((r) => r.id));
  return local.filter((x) => !known.has(x.id));
}
