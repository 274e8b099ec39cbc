import { addSlaTime, escalateEveryMs } from './policy.js';
import type { WorkordersConfig } from './schema.js';
import { settle } from './sla.js';
import { clockPaused, type HistoryEntry, type Ticket } from './types.js';

/** A deadline that passed without the step it asks for. */
export interface Breach {
  kind: 'response' | 'resolve';
  /** When it fell due (not when it was noticed). */
  at: number;
  level: number;
  contact: Contact;
}

export type Contact = WorkordersConfig['contacts'][number];

/** Escalations of one tick at most per ticket, so a long outage cannot loop for ever. */
const MAX_PER_TICK = 100;

/** Whether a deadline check of the ticket has fallen due by `now` (what `escalate` would act on). */
export function escalationDue(t: Ticket, now: number): boolean {
  const r = t.nextResponseCheckAt;
  const s = clockPaused(t) ? null : t.nextResolveCheckAt;
  return (r !== null && r <= now) || (s !== null && s <= now);
}

/**
 * Raises the ticket one level up the contact chain for every deadline that has passed by `now`
 * without its step (acknowledge for the response, resolve for the resolution), and again after
 * each further interval. A preventive-maintenance occurrence not done by the end of its window is
 * missed: its first resolution escalation says so and marks `maintenance.missedAt`. Every missed
 * deadline is judged (`sla`) as it is escalated. Mutates the ticket, returns the breaches in
 * order. Pure: the caller's clock.
 */
export function escalate(t: Ticket, now: number, cfg: WorkordersConfig): Breach[] {
  const out: Breach[] = [];
  const every = escalateEveryMs(cfg, t.priority);
  for (let i = 0; i < MAX_PER_TICK; i++) {
    const r = t.nextResponseCheckAt;
    // On hold for a reason that pauses it (waiting for parts) the resolution clock stands still.
    const s = clockPaused(t) ? null : t.nextResolveCheckAt;
    const due = [r, s].filter((x): x is number => x !== null && x <= now);
    if (due.length === 0) break;
    const at = Math.min(...due);
    const kind = at === r ? 'response' : 'resolve';
    // The next check one interval later, counted in working time where the calendar applies.
    const next = addSlaTime(cfg, t.priority, at, every);
    if (kind === 'response') t.nextResponseCheckAt = next;
    else t.nextResolveCheckAt = next;
    t.breaches[kind]++;
    t.escalationLevel++;
    const chain = cfg.contacts;
    // Beyond the top of the chain the top contact keeps being called.
    const contact = chain[Math.min(t.escalationLevel, chain.length) - 1]!;
    settle(t, at);
    const m = t.maintenance;
    const missed = kind === 'resolve' && m !== undefined && m !== null && (m.missedAt ?? null) === null;
    if (missed) m.missedAt = at;
    const what = missed
      ? `preventive maintenance ${m.schedule} due ${new Date(m.dueAt).toISOString()} missed: not done by ${new Date(at).toISOString()}`
      : `${kind} deadline missed`;
    const entry: HistoryEntry = {
      ts: at,
      actor: 'system',
      action: 'escalate',
      from: t.status,
      to: t.status,
      note: `${what}: escalated to level ${t.escalationLevel} (${contact.name})`,
      data: { kind, level: t.escalationLevel, contact, ...(missed ? { missed: true } : {}) },
    };
    t.history.push(entry);
    t.updatedAt = Math.max(t.updatedAt, at);
    out.push({ kind, at, level: t.escalationLevel, contact });
  }
  return out;
}

/**
 * (rule) "逐级向上联系": the contact of the ticket's level cannot be reached (`why`), so the ticket
 * goes one level up at once, without waiting for the next interval. Nothing happens when the ticket
 * has moved on from `level` already (another failure of the same news said so first) or when it is
 * at the top of the chain. Mutates the ticket; returns whether it escalated. Pure.
 */
export function skipUnreachable(
  t: Ticket,
  level: number,
  now: number,
  cfg: WorkordersConfig,
  why: string,
  data: Record<string, unknown> = {},
): boolean {
  const chain = cfg.contacts;
  if (t.escalationLevel !== level || level >= chain.length) return false;
  const from = chain[level - 1];
  t.escalationLevel++;
  const contact = chain[t.escalationLevel - 1]!;
  t.history.push({
    ts: now,
    actor: 'system',
    action: 'escalate',
    from: t.status,
    to: t.status,
    note: `${from ? `${from.name} ` : ''}not reached (${why}): escalated to level ${t.escalationLevel} (${contact.name})`,
    data: { kind: 'unreachable', level: t.escalationLevel, contact, reason: why, ...data },
  });
  t.updatedAt = Math.max(t.updatedAt, now);
  return true;
}

/**
 * When the ticket's last escalation reached a contact who has not acknowledged it within
 * `escalation.ackTimeoutMin`: the level it is waiting at, else undefined. Pure.
 */
export function ackOverdueLevel(t: Ticket, now: number, cfg: WorkordersConfig): number | undefined {
  const limit = cfg.escalation.ackTimeoutMin * 60_000;
  if (limit <= 0 || t.respondedAt !== null || t.escalationLevel < 1) return undefined;
  if (t.escalationLevel >= cfg.contacts.length) return undefined;
  for (let i = t.history.length - 1; i >= 0; i--) {
    const h = t.history[i]!;
    if (h.action !== 'escalate') continue;
    return now - h.ts >= limit ? t.escalationLevel : undefined;
  }
  return undefined;
}
