import type { DuplicateAlarm } from '../alarms/types.js';
import type { WorkordersConfig } from './schema.js';
import { endHold } from './state-machine.js';
import type { Ticket } from './types.js';

const SYSTEM = 'system';

/**
 * Whether `t` stands for the duplicate alarm only: its own ticket (that device and rule, not an
 * incident's ticket of several devices) and not also the kept alarm's. Only such a ticket is merged
 * away; any other keeps its work.
 */
export function onlyFor(t: Ticket, dup: DuplicateAlarm): boolean {
  const d = dup.duplicate;
  return (
    t.site === d.site &&
    t.device === d.device &&
    t.rule === d.rule &&
    t.devices.length <= 1 &&
    t.alarmIds.includes(d.id) &&
    !t.alarmIds.includes(dup.kept.id)
  );
}

/**
 * Merges `from` (the duplicate alarm's ticket) into `into` (the kept alarm's ticket of the same
 * condition), both working copies: `from` is closed by `system` with a `merge` line pointing at
 * `into` (whatever its status: the state machine's `close` needs a verified fix, which a duplicate
 * never has), and its alarm ids move to `into`, which gets a `duplicate-merged` line naming it.
 * What was done on `from` (its status, assignee) is named in that line, so no work goes unseen.
 */
export function mergeTicket(
  from: Ticket,
  into: Ticket,
  dup: DuplicateAlarm,
  now: number,
  cfg: WorkordersConfig,
): void {
  const status = from.status;
  endHold(from, now, cfg);
  from.status = 'closed';
  from.closedAt = now;
  from.nextResponseCheckAt = null;
  from.nextResolveCheckAt = null;
  from.updatedAt = now;
  from.history.push({
    ts: now,
    actor: SYSTEM,
    action: 'merge',
    from: status,
    to: 'closed',
    note: `duplicate of ticket ${into.id}: alarm ${dup.duplicate.id} was a duplicate of ${dup.kept.id}`,
    data: { into: into.id, alarmId: dup.duplicate.id, keptAlarmId: dup.kept.id },
  });
  const moved = from.alarmIds.filter((id) => !into.alarmIds.includes(id));
  into.alarmIds.push(...moved);
  into.history.push({
    ts: now,
    actor: SYSTEM,
    action: 'duplicate-merged',
    from: into.status,
    to: into.status,
    note:
      `ticket ${from.id} (${status}${from.assignee ? `, assigned to ${from.assignee}` : ''}) merged in: ` +
      `alarm ${dup.duplicate.id} was a duplicate of ${dup.kept.id}`,
    data: { ticket: from.id, status, assignee: from.assignee, alarmIds: moved },
  });
  into.updatedAt = Math.max(into.updatedAt, now);
}

/**
 * The duplicate alarm's ticket is the condition's only one (the kept alarm has none here, e.g. it
 * was raised under a shelf): it stays, and stands for the kept alarm from now on.
 */
export function adoptKeptAlarm(t: Ticket, dup: DuplicateAlarm, now: number): void {
  t.alarmIds.push(dup.kept.id);
  t.history.push({
    ts: now,
    actor: SYSTEM,
    action: 'duplicate-merged',
    from: t.status,
    to: t.status,
    note: `alarm ${dup.duplicate.id} was a duplicate of ${dup.kept.id}; this ticket stands for ${dup.kept.id}`,
    data: { alarmId: dup.duplicate.id, keptAlarmId: dup.kept.id },
  });
  t.updatedAt = Math.max(t.updatedAt, now);
}
