import type { RuleClass, Severity } from '../rules/types.js';

/** DOMAIN.md "Work orders": open → acknowledged → assigned → in_progress → resolved → closed; reopened from resolved or closed. */
export const TICKET_STATUSES = [
  'open',
  'acknowledged',
  'assigned',
  'in_progress',
  'resolved',
  'closed',
  'reopened',
] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];

/** Languages of mail, webhook text and reports, as the dashboard has them. */
export const LANGUAGES = ['en', 'zh'] as const;
export type Language = (typeof LANGUAGES)[number];

export const PRIORITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** What people may do to a ticket (CONTRACT.md `POST /api/tickets/:id/actions`). */
export const TICKET_ACTIONS = [
  'acknowledge',
  'assign',
  'start',
  'resolve',
  'verify',
  'close',
  'reopen',
  'comment',
  // The clock pause: on hold (needs a note, e.g. waiting for parts) the resolution clock stops.
  'hold',
  'resume',
] as const;
export type TicketAction = (typeof TICKET_ACTIONS)[number];

/** Entries the gateway itself writes into a ticket's audit trail, beside people's actions. */
export type SystemAction =
  | 'create'
  | 'alarm-returned'
  | 'alarm-escalated'
  | 'alarm-cleared'
  | 'incident-joined'
  | 'escalate'
  | 'auto-resolve'
  | 'priority-raised'
  /** Cluster mode: closed as the duplicate of another ticket of its condition (ADR 0160 addendum). */
  | 'merge'
  /** Cluster mode: a duplicate ticket of this one's condition was merged into it. */
  | 'duplicate-merged';

/** One line of the audit trail: who, when, what, why, and the status before and after. */
export interface HistoryEntry {
  /** Epoch ms. */
  ts: number;
  actor: string;
  action: TicketAction | SystemAction;
  from: TicketStatus | null;
  to: TicketStatus;
  note: string | null;
  /** Extra facts of the entry (assignee, escalation level and contact, alarm id and value). */
  data?: Record<string, unknown>;
}

export interface ReadingsSnapshot {
  /** The value that raised the alarm. */
  alarmValue: number | boolean | null;
  /** The metric the rule watches, when the rule names one. */
  metric: string | null;
  /** Every latest value of the device when the ticket was raised (the registry keeps latest values only). */
  latest: Record<string, { value: number | boolean; ts: number }>;
  /** Epoch ms the snapshot was taken. */
  takenAt: number;
  /** The metric over the hour before the alarm (from InfluxDB), oldest first; absent until read. */
  history?: { ts: number; value: number | boolean | string | null }[];
  /** The window `history` covers, epoch ms. */
  historyFrom?: number;
  historyTo?: number;
  /** Why the history could not be read. */
  historyError?: string;
}

export interface Ticket {
  id: string;
  title: string;
  status: TicketStatus;
  priority: Priority;
  /** safety | key | routine: drives priority and deadlines. */
  class: RuleClass;
  severity: Severity | null;
  site: string;
  device: string | null;
  rule: string | null;
  alarmId: string | null;
  /** Every alarm that raised or returned to this ticket. */
  alarmIds: string[];
  incidentId: string | null;
  /** Devices of the incident (grouped alarms) this ticket stands for, this ticket's own device first. */
  devices: string[];
  /** DOMAIN.md: the service item, the standard that applies, the place, the requester. */
  serviceItem: string;
  standard: string | null;
  location: string | null;
  requester: string;
  critical: boolean;
  readings: ReadingsSnapshot | null;
  /** The alarm condition has cleared since the ticket was raised (the ticket stays open). */
  conditionCleared: boolean;
  createdAt: number;
  updatedAt: number;
  responseDueAt: number;
  resolveDueAt: number;
  respondedAt: number | null;
  resolvedAt: number | null;
  resolvedBy: string | null;
  verifiedAt: number | null;
  verifiedBy: string | null;
  closedAt: number | null;
  assignee: string | null;
  escalationLevel: number;
  /** When the next missed-response / missed-resolution escalation falls due (null: none pending). */
  nextResponseCheckAt: number | null;
  nextResolveCheckAt: number | null;
  breaches: { response: number; resolve: number };
  repeatOf: string | null;
  /** On hold (e.g. waiting for parts) (absent on older tickets: false). */
  onHold?: boolean;
  /** Since when it is on hold, epoch ms (null when not). */
  heldSince?: number | null;
  /** Why it is on hold (`workorders.pause.reasons`), null for a hold without a reason or when not on hold. */
  holdReason?: string | null;
  /**
   * Whether this hold stops the resolution clock (the config's pause reasons decide; absent on
   * older tickets: a hold always did).
   */
  clockPaused?: boolean;
  /** Time the resolution clock stood still in the current cycle, ms, not counting a pause still running (absent: 0). */
  heldMs?: number;
  /** The same in service-level time (working time where the calendar applies): what the deadline moved by. */
  heldSlaMs?: number;
  /** The priority the ticket was opened with (absent on older tickets: `priority`). */
  openedPriority?: Priority;
  /** The resolution cycle: 1 from creation, one more on each reopen (absent: 1). */
  cycle?: number;
  /** When the current cycle began: creation, or the reopen (absent: `createdAt`). */
  cycleStartedAt?: number;
  /** The current cycle's deadlines once judged (met, or missed): fixed from then on (absent: none yet). */
  sla?: SlaJudgements;
  /** Earlier cycles, each ended by a reopen, as they stood then (absent: none). */
  cycles?: SlaCycle[];
  /** Set on preventive-maintenance tickets (absent on tickets stored before it existed). */
  maintenance?: MaintenanceInfo | null;
  history: HistoryEntry[];
}

export interface MaintenanceInfo {
  schedule: string;
  /** Epoch ms the occurrence fell due. */
  dueAt: number;
  form: 'none' | 'disinfection';
  /** The completion form as filled in at resolve. */
  record: Record<string, unknown> | null;
  /** When the occurrence was missed: its window (the resolution deadline) ended without it being done. */
  missedAt?: number | null;
}

/** A deadline once judged. Written once, when it is decided; nothing later changes it. */
export interface SlaJudgement {
  met: boolean;
  /** The deadline as it stood when judged: the month it falls in is the month it counts in. */
  dueAt: number;
  /** The ticket's priority then. */
  priority: Priority;
}

export interface SlaJudgements {
  response: SlaJudgement | null;
  resolve: SlaJudgement | null;
}

/** One resolution cycle: from creation (n = 1) or a reopen (n ≥ 2) to the next reopen. */
export interface SlaCycle extends SlaJudgements {
  n: number;
  startedAt: number;
  /** When the next cycle began (null: this is the current one). */
  endedAt: number | null;
  priority: Priority;
  responseDueAt: number;
  resolveDueAt: number;
  respondedAt: number | null;
  resolvedAt: number | null;
  heldMs: number;
}

export type TicketErrorCode =
  | 'GW_ERR_TICKET_NOT_FOUND'
  | 'GW_ERR_TICKET_TRANSITION'
  | 'GW_ERR_TICKET_VERIFY'
  | 'GW_ERR_TICKET_BAD_REQUEST'
  /** Cluster mode: the ticket moved to another instance with its device's partition (ADR 0160). */
  | 'GW_ERR_HOLDER_UNAVAILABLE'
  /** Cluster mode: the shared view (PostgreSQL) could not take a person's action (ADR 0173). */
  | 'GW_ERR_UNAVAILABLE';

export class TicketError extends Error {
  constructor(
    readonly code: TicketErrorCode,
    message: string,
    /** The HTTP status the API answers with. */
    readonly status: number,
    /** Fields answered beside code and message (cluster mode: `holder`, the instance holding it now). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'TicketError';
  }
}

/** Whether the resolution clock stands still now: on hold for a reason that pauses it. */
export function clockPaused(t: Ticket): boolean {
  return t.onHold === true && t.clockPaused !== false;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The ticket as the API and live stream show it (CONTRACT.md), times in RFC 3339. */
export function ticketToJson(t: Ticket, withHistory = true): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...t,
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
    responseDueAt: iso(t.responseDueAt),
    resolveDueAt: iso(t.resolveDueAt),
    respondedAt: iso(t.respondedAt),
    resolvedAt: iso(t.resolvedAt),
    verifiedAt: iso(t.verifiedAt),
    closedAt: iso(t.closedAt),
    nextResponseCheckAt: iso(t.nextResponseCheckAt),
    nextResolveCheckAt: iso(t.nextResolveCheckAt),
    readings: t.readings ? readingsToJson(t.readings) : null,
    onHold: t.onHold ?? false,
    heldSince: iso(t.heldSince ?? null),
    holdReason: t.holdReason ?? null,
    clockPaused: clockPaused(t),
    heldMs: t.heldMs ?? 0,
    heldSlaMs: t.heldSlaMs ?? t.heldMs ?? 0,
    openedPriority: t.openedPriority ?? t.priority,
    cycle: t.cycle ?? 1,
    cycleStartedAt: iso(t.cycleStartedAt ?? t.createdAt),
    sla: judgementsToJson(t.sla ?? { response: null, resolve: null }),
    cycles: (t.cycles ?? []).map(cycleToJson),
    maintenance: t.maintenance
      ? { ...t.maintenance, dueAt: iso(t.maintenance.dueAt), missedAt: iso(t.maintenance.missedAt ?? null) }
      : null,
    history: withHistory ? t.history.map((h) => ({ ...h, ts: iso(h.ts) })) : undefined,
  };
  if (!withHistory) delete out.history;
  return out;
}

const judgementToJson = (j: SlaJudgement | null) => (j ? { ...j, dueAt: iso(j.dueAt) } : null);

function judgementsToJson(j: SlaJudgements): Record<string, unknown> {
  return { response: judgementToJson(j.response), resolve: judgementToJson(j.resolve) };
}

function cycleToJson(c: SlaCycle): Record<string, unknown> {
  return {
    ...c,
    startedAt: iso(c.startedAt),
    endedAt: iso(c.endedAt),
    responseDueAt: iso(c.responseDueAt),
    resolveDueAt: iso(c.resolveDueAt),
    respondedAt: iso(c.respondedAt),
    resolvedAt: iso(c.resolvedAt),
    ...judgementsToJson(c),
  };
}

function readingsToJson(r: ReadingsSnapshot): Record<string, unknown> {
  const out: Record<string, unknown> = { ...r, takenAt: iso(r.takenAt) };
  if (r.history) out.history = r.history.map((p) => ({ ts: iso(p.ts), value: p.value }));
  if (r.historyFrom !== undefined) out.historyFrom = iso(r.historyFrom);
  if (r.historyTo !== undefined) out.historyTo = iso(r.historyTo);
  return out;
}

export type TicketEventType = 'created' | 'updated' | 'escalated';

/**
 * Every change of a ticket after it was committed: for the live stream, webhooks and email. Here, with
 * the other shared types, so listeners (notifications, live) need not import the service.
 */
export interface TicketEvent {
  type: TicketEventType;
  /** The ticket after the change, with an empty `history`. */
  ticket: Ticket;
  /** The audit entries this change added. */
  entries: HistoryEntry[];
  /** Where `entries[0]` stands in the ticket's audit trail (0 for a new ticket). */
  firstEntry?: number;
}

/**
 * Where new tickets get their numbers. Absent: the next number after the largest in workorders.db.
 * Cluster mode hands numbers from blocks leased ahead from a shared counter (ADR 0158), so that
 * `next()` never waits and two instances never give out one number.
 */
export interface TicketNumbers {
  next(): number;
}

/** A delivery attempt that failed, as the work orders hear of it from the notifications they hand their events to (to skip a contact who cannot be reached). */
export interface DeliveryFailure {
  ticketId: string;
  channel: string;
  /** Attempts so far, this one included. */
  attempts: number;
  /** Parked as dead: no more attempts will be made. */
  dead: boolean;
  error: string;
  /**
   * The highest escalation level in this event whose contact this channel reaches (the contact's
   * `webhook` is the channel, or its `email` is among the mail's recipients); undefined when the
   * event reached no contact of the chain through this channel.
   */
  level: number | undefined;
  /** The escalation contact (as configured under `workorders.contacts`) this channel reaches. */
  contact: { name: string; webhook?: string; email?: string } | undefined;
}
