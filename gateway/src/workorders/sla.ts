import { addSlaTime, deadlinesOf } from './policy.js';
import type { WorkordersConfig } from './schema.js';
import {
  clockPaused,
  PRIORITIES,
  type Priority,
  type SlaCycle,
  type SlaJudgement,
  type Ticket,
} from './types.js';

const MIN = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A deadline as decided by `now`: met when the step came by it, missed once it passed without it, else null. */
export function judge(
  doneAt: number | null,
  dueAt: number,
  now: number,
  priority: Priority,
): SlaJudgement | null {
  if (doneAt !== null && doneAt <= dueAt) return { met: true, dueAt, priority };
  if (dueAt <= now) return { met: false, dueAt, priority };
  return null;
}

/**
 * Judges the current cycle's deadlines that are decided by `now` and not judged yet: met when the
 * step (respond, resolve) came by the deadline, missed once the deadline passed without it. A
 * judgement is written once and never changed, so a month's report stays what it was whatever
 * happens to the ticket later. The resolution deadline is not judged while its clock is paused (it
 * moves when the pause ends); a pause that begins after the deadline has passed finds it judged.
 */
export function settle(t: Ticket, now: number): void {
  const sla = (t.sla ??= { response: null, resolve: null });
  sla.response ??= judge(t.respondedAt, t.responseDueAt, now, t.priority);
  if (!clockPaused(t)) sla.resolve ??= judge(t.resolvedAt, t.resolveDueAt, now, t.priority);
}

/** Every resolution cycle of a ticket, oldest first; the last is the current one (tickets of any age). */
export function cyclesOf(t: Ticket): SlaCycle[] {
  const sla = t.sla ?? { response: null, resolve: null };
  return [
    ...(t.cycles ?? []),
    {
      n: t.cycle ?? 1,
      startedAt: t.cycleStartedAt ?? t.createdAt,
      endedAt: null,
      priority: t.priority,
      responseDueAt: t.responseDueAt,
      resolveDueAt: t.resolveDueAt,
      respondedAt: t.respondedAt,
      resolvedAt: t.resolvedAt,
      heldMs: t.heldMs ?? 0,
      response: sla.response,
      resolve: sla.resolve,
    },
  ];
}

/**
 * A reopen: the current cycle is judged and kept as it stands (its times and deadlines are the
 * record of that attempt), and a new one begins now with fresh response and resolution deadlines.
 */
export function startCycle(t: Ticket, now: number, cfg: WorkordersConfig): void {
  settle(t, now);
  const past = cyclesOf(t).at(-1)!;
  past.endedAt = now;
  (t.cycles ??= []).push(past);
  t.cycle = past.n + 1;
  t.cycleStartedAt = now;
  t.sla = { response: null, resolve: null };
  t.onHold = false;
  t.heldSince = null;
  t.holdReason = null;
  t.clockPaused = false;
  t.heldMs = 0;
  t.heldSlaMs = 0;
  const d = deadlinesOf(cfg, t.priority, now);
  t.responseDueAt = d.responseDueAt;
  t.resolveDueAt = d.resolveDueAt;
  t.respondedAt = null;
  t.resolvedAt = null;
  t.resolvedBy = null;
  t.verifiedBy = null;
  t.verifiedAt = null;
  t.closedAt = null;
  t.nextResponseCheckAt = d.responseDueAt;
  t.nextResolveCheckAt = d.resolveDueAt;
}

/**
 * A higher priority tightens the current cycle's deadlines that are not judged yet: each is
 * recomputed from the cycle's start with the new priority's service level (plus the time the clock
 * stood still), never later than it was, and never in the past (one that would be is due now).
 * Returns what changed for the audit line, or null when the priority does not rise.
 */
export function raisePriority(
  t: Ticket,
  to: Priority,
  now: number,
  cfg: WorkordersConfig,
): Record<string, unknown> | null {
  if (PRIORITIES.indexOf(to) >= PRIORITIES.indexOf(t.priority)) return null;
  // Deadlines already passed are judged with the priority they had.
  settle(t, now);
  const data: Record<string, unknown> = { from: t.priority, to };
  t.priority = to;
  const start = t.cycleStartedAt ?? t.createdAt;
  const s = cfg.sla[to];
  if (t.sla!.response === null && t.respondedAt === null) {
    const due = Math.min(t.responseDueAt, Math.max(now, addSlaTime(cfg, to, start, s.respondMin * MIN)));
    if (due !== t.responseDueAt) {
      t.responseDueAt = due;
      if (t.nextResponseCheckAt !== null) t.nextResponseCheckAt = due;
      data.responseDueAt = iso(due);
    }
  }
  if (t.sla!.resolve === null && t.resolvedAt === null) {
    const held = t.heldSlaMs ?? t.heldMs ?? 0;
    const due = Math.min(
      t.resolveDueAt,
      Math.max(now, addSlaTime(cfg, to, start, s.resolveMin * MIN + held)),
    );
    if (due !== t.resolveDueAt) {
      t.resolveDueAt = due;
      if (t.nextResolveCheckAt !== null) t.nextResolveCheckAt = due;
      data.resolveDueAt = iso(due);
    }
  }
  return data;
}
