import { addSlaTime, slaTimeBetween } from './policy.js';
import type { WorkordersConfig } from './schema.js';
import { settle, startCycle } from './sla.js';
import {
  clockPaused,
  TicketError,
  type HistoryEntry,
  type Ticket,
  type TicketAction,
  type TicketStatus,
} from './types.js';

export interface ActionRequest {
  action: TicketAction;
  actor: string;
  /** SSO: the identity provider's subject of the actor (`<iss>#<sub>`), kept in the entry's data. */
  actorSubject?: string;
  assignee?: string;
  note?: string;
  /** The completion form of a maintenance ticket, at resolve. */
  form?: Record<string, unknown>;
  /** Why a ticket goes on hold (`workorders.pause`): whether the resolution clock stops. */
  reason?: string;
}

/** Where each action may start from, and where it leads (null: the status does not change). */
const RULES: Record<TicketAction, { from: readonly TicketStatus[] | 'any'; to: TicketStatus | null }> = {
  acknowledge: { from: ['open', 'reopened'], to: 'acknowledged' },
  // Reassigning keeps a ticket assigned; a reopened ticket may go straight to someone.
  assign: { from: ['acknowledged', 'assigned', 'in_progress', 'reopened'], to: 'assigned' },
  start: { from: ['assigned'], to: 'in_progress' },
  resolve: { from: ['in_progress'], to: 'resolved' },
  verify: { from: ['resolved'], to: null },
  close: { from: ['resolved'], to: 'closed' },
  reopen: { from: ['resolved', 'closed'], to: 'reopened' },
  comment: { from: 'any', to: null },
  // A pause of the resolution clock; the status stays what it was.
  hold: { from: ['open', 'acknowledged', 'assigned', 'in_progress', 'reopened'], to: null },
  resume: { from: ['open', 'acknowledged', 'assigned', 'in_progress', 'reopened'], to: null },
};

/** The actions allowed on a ticket now (for the API and the dashboard's buttons). */
export function allowedActions(t: Ticket): TicketAction[] {
  return (Object.keys(RULES) as TicketAction[]).filter((a) => {
    const r = RULES[a];
    if (r.from !== 'any' && !r.from.includes(t.status)) return false;
    if (a === 'close' && t.verifiedBy === null) return false;
    if (a === 'verify' && t.verifiedBy !== null) return false;
    if (a === 'hold' && t.onHold === true) return false;
    if (a === 'resume' && t.onHold !== true) return false;
    return true;
  });
}

const conflict = (msg: string) => new TicketError('GW_ERR_TICKET_TRANSITION', msg, 409);

/**
 * Applies one person's action to a ticket in place and returns the audit entry, or throws a
 * TicketError (409 for a transition the state machine does not allow). Pure: no clock, no I/O; the
 * config gives the service levels (a reopen's deadlines, the calendar) and the pause reasons.
 */
export function applyAction(t: Ticket, req: ActionRequest, now: number, cfg: WorkordersConfig): HistoryEntry {
  const rule = RULES[req.action];
  if (rule.from !== 'any' && !rule.from.includes(t.status))
    throw conflict(
      `cannot ${req.action} a ticket that is ${t.status} (allowed from ${rule.from.join(', ')}; allowed now: ${allowedActions(t).join(', ')})`,
    );
  const from = t.status;
  const data: Record<string, unknown> = {};
  switch (req.action) {
    case 'acknowledge':
      t.respondedAt ??= now;
      // Responded in time or not, the response deadline no longer escalates.
      t.nextResponseCheckAt = null;
      break;
    case 'assign':
      if (!req.assignee) throw new TicketError('GW_ERR_TICKET_BAD_REQUEST', 'assign needs an assignee', 400);
      t.respondedAt ??= now;
      t.nextResponseCheckAt = null;
      data.assignee = req.assignee;
      if (t.assignee !== null) data.previousAssignee = t.assignee;
      t.assignee = req.assignee;
      break;
    case 'resolve':
      if (t.maintenance && t.maintenance.form !== 'none') {
        const record = checkForm(t.maintenance.form, req.form);
        t.maintenance.record = record;
        data.form = record;
      }
      markResolved(t, req.actor, now, cfg);
      break;
    case 'verify':
      if (t.verifiedBy !== null) throw conflict(`ticket ${t.id} is already verified by ${t.verifiedBy}`);
      // (rule) closure needs the requester or a second person to confirm the fix.
      if (req.actor === t.resolvedBy)
        throw new TicketError(
          'GW_ERR_TICKET_VERIFY',
          `${req.actor} resolved ticket ${t.id} and cannot verify it: the requester or a second person must`,
          409,
        );
      t.verifiedBy = req.actor;
      t.verifiedAt = now;
      break;
    case 'close':
      if (t.verifiedBy === null)
        throw new TicketError(
          'GW_ERR_TICKET_VERIFY',
          `ticket ${t.id} cannot be closed before the fix is verified (action verify, by someone other than ${t.resolvedBy ?? 'the resolver'})`,
          409,
        );
      t.closedAt = now;
      // The month's closed tickets are counted by these lines, with the priority of the time.
      data.priority = t.priority;
      break;
    case 'reopen':
      // The earlier cycle stays as it was (and in the audit trail); a new one begins with fresh deadlines.
      startCycle(t, now, cfg);
      data.cycle = t.cycle;
      break;
    case 'hold': {
      if (t.onHold === true) throw conflict(`ticket ${t.id} is already on hold`);
      if (!req.note)
        throw new TicketError(
          'GW_ERR_TICKET_BAD_REQUEST',
          'hold needs a note (what the ticket waits for)',
          400,
        );
      const pauses = pausesClock(cfg, req.reason);
      // A deadline already passed is judged missed before the pause: holding cannot hide it.
      settle(t, now);
      t.onHold = true;
      t.heldSince = now;
      t.holdReason = req.reason ?? null;
      t.clockPaused = pauses;
      if (req.reason !== undefined) data.reason = req.reason;
      data.clockPaused = pauses;
      break;
    }
    case 'resume':
      if (t.onHold !== true) throw conflict(`ticket ${t.id} is not on hold`);
      Object.assign(data, endHold(t, now, cfg));
      break;
    case 'start':
    case 'comment':
      break;
  }
  if (rule.to !== null) t.status = rule.to;
  t.updatedAt = now;
  const entry: HistoryEntry = {
    ts: now,
    actor: req.actor,
    action: req.action,
    from,
    to: t.status,
    note: req.note ?? null,
  };
  if (req.actorSubject !== undefined) data.subject = req.actorSubject;
  if (Object.keys(data).length > 0) entry.data = data;
  t.history.push(entry);
  settle(t, now);
  return entry;
}

/**
 * Whether a hold for this reason stops the resolution clock: the config's `pause.reasons` do,
 * `pause.runningReasons` do not, a hold without a reason does when `pause.withoutReason`. Any other
 * reason is refused, so a misspelt one cannot silently leave the clock running.
 */
export function pausesClock(cfg: WorkordersConfig, reason: string | undefined): boolean {
  const p = cfg.pause;
  if (reason === undefined) return p.withoutReason;
  if (p.reasons.includes(reason)) return true;
  if (p.runningReasons.includes(reason)) return false;
  throw new TicketError(
    'GW_ERR_TICKET_BAD_REQUEST',
    `hold reason ${reason} is not configured (workorders.pause: ${[...p.reasons, ...p.runningReasons].join(', ') || 'none'})`,
    400,
  );
}

/**
 * Ends a hold. When its clock was paused, the time held counts in `heldMs` and the resolution
 * deadline (and a pending resolution check) moves out by it, in working time where the calendar
 * applies. Returns what the audit line records.
 */
export function endHold(t: Ticket, now: number, cfg: WorkordersConfig): Record<string, unknown> {
  if (t.onHold !== true) return {};
  const since = t.heldSince ?? now;
  const paused = clockPaused(t);
  t.onHold = false;
  t.heldSince = null;
  t.holdReason = null;
  t.clockPaused = false;
  if (!paused) return { heldMs: 0 };
  const held = Math.max(0, now - since);
  const before = t.heldMs ?? 0;
  t.heldMs = before + held;
  const sla = slaTimeBetween(cfg, t.priority, since, now);
  t.heldSlaMs = (t.heldSlaMs ?? before) + sla;
  if (sla > 0) {
    t.resolveDueAt = addSlaTime(cfg, t.priority, t.resolveDueAt, sla);
    if (t.nextResolveCheckAt !== null)
      t.nextResolveCheckAt = addSlaTime(cfg, t.priority, t.nextResolveCheckAt, sla);
  }
  return { heldMs: held, resolveDueAt: new Date(t.resolveDueAt).toISOString() };
}

/** Resolution stops the resolve clock (and ends a hold); the gateway's auto-resolve uses this too. */
export function markResolved(t: Ticket, actor: string, now: number, cfg: WorkordersConfig): void {
  endHold(t, now, cfg);
  t.resolvedAt = now;
  t.resolvedBy = actor;
  t.nextResolveCheckAt = null;
  t.nextResponseCheckAt = null;
  t.verifiedBy = null;
  t.verifiedAt = null;
  settle(t, now);
}

/** Statuses in which a ticket still needs work (the open ticket of its device and rule). */
export function isActive(s: TicketStatus): boolean {
  return s !== 'resolved' && s !== 'closed';
}

/**
 * The tank disinfection log (rule: "消毒时间, 消毒灵使用量"): when it was done and how much
 * disinfectant was used, with its unit and optionally the product.
 */
function checkForm(form: 'disinfection', f: Record<string, unknown> | undefined): Record<string, unknown> {
  const bad = (m: string) =>
    new TicketError('GW_ERR_TICKET_BAD_REQUEST', `resolve needs the disinfection form: ${m}`, 400);
  if (!f) throw bad('body.form missing ({disinfectedAt, amount, unit, disinfectant?})');
  const at = f.disinfectedAt;
  if (typeof at !== 'string' || Number.isNaN(Date.parse(at)))
    throw bad('form.disinfectedAt must be an RFC 3339 time');
  if (typeof f.amount !== 'number' || !(f.amount > 0)) throw bad('form.amount must be a positive number');
  if (typeof f.unit !== 'string' || f.unit === '') throw bad('form.unit must be given (g, kg, mL, L)');
  if (f.disinfectant !== undefined && typeof f.disinfectant !== 'string')
    throw bad('form.disinfectant must be text');
  const out: Record<string, unknown> = {
    form,
    disinfectedAt: new Date(Date.parse(at)).toISOString(),
    amount: f.amount,
    unit: f.unit,
  };
  if (f.disinfectant !== undefined) out.disinfectant = f.disinfectant;
  return out;
}
