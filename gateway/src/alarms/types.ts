import type { WindowSchedule } from './windows.js';
import type { RuleClass, Severity } from '../rules/types.js';

/**
 * active-unacknowledged → active-acknowledged → cleared; an alarm that clears before anyone
 * acknowledged it stays visible as cleared-unacknowledged until acknowledged (then cleared).
 */
export type AlarmState =
  'active-unacknowledged' | 'active-acknowledged' | 'cleared-unacknowledged' | 'cleared';

export interface Alarm {
  id: string;
  site: string;
  device: string;
  kind: string;
  rule: string;
  class: RuleClass;
  severity: Severity;
  state: AlarmState;
  value: number | boolean | null;
  message: string;
  /** Epoch ms. */
  raisedAt: number;
  clearedAt: number | null;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  ackNote: string | null;
  incidentId: string | null;
  /** Raised or active while a shelf or maintenance window covered it: recorded, but nobody is paged. */
  shelved: boolean;
  /**
   * Raised inside a maintenance window: recorded, but no ticket and nobody paged until the window
   * ends with the condition still present. Optional so alarms built elsewhere (tests, fixtures) need
   * not name it; absent is false.
   */
  suppressed?: boolean;
  /** The window that suppressed it. */
  windowId?: string | null;
  /** The device is a critical asset. */
  critical: boolean;
  updatedAt: number;
}

/** The alarm as the HTTP API and live stream show it (CONTRACT.md), times in RFC 3339. */
export interface AlarmJson {
  id: string;
  device: string;
  site: string;
  kind: string;
  rule: string;
  class: RuleClass;
  severity: Severity;
  state: AlarmState;
  value: number | boolean | null;
  message: string;
  raisedAt: string;
  clearedAt: string | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  ackNote: string | null;
  incidentId: string | null;
  shelved: boolean;
  /** Raised inside a maintenance window (`windowId`): no ticket, nobody paged. */
  suppressed: boolean;
  windowId: string | null;
  critical: boolean;
}

export type AlarmEventType =
  | 'raise'
  | 'escalate'
  | 'clear'
  | 'ack'
  | 'shelve'
  | 'unshelve'
  | 'group'
  /** The maintenance window over a suppressed alarm ended while its condition was still present. */
  | 'unsuppress'
  /**
   * Cluster mode (ADR 0160): a second active alarm of one condition, met when records changed hands,
   * closed by `system` as a duplicate of the one kept (note `duplicate of <id>`); final (`cleared`).
   */
  | 'duplicate';

/** Two active alarms of one (site, device, rule) met on adoption: the one closed and the one kept. */
export interface DuplicateAlarm {
  duplicate: Alarm;
  kept: Alarm;
}

/** Every change of an alarm, for InfluxDB `alarm_event`, the live stream and work orders. */
export interface AlarmEvent {
  type: AlarmEventType;
  ts: number;
  /** The alarm after the change (a copy). */
  alarm: Alarm;
  user?: string;
  /** SSO: the identity provider's subject (`<iss>#<sub>`) of the person, beside the name. */
  userSubject?: string;
  note?: string;
  /** For `group`: the incident the alarm joined (also set for later events of a grouped alarm). */
  incident?: Incident;
  /**
   * Cluster mode, `group` (ADR 0170): the incident's ticket is made from another alarm, possibly on
   * another member; this alarm's own ticket only notes the incident and the holder of the incident
   * ticket adds the alarm to it.
   */
  remoteIncident?: true;
}

export interface Incident {
  id: string;
  site: string;
  rule: string;
  class: RuleClass;
  openedAt: number;
  lastAlarmAt: number;
  alarmCount: number;
  /** open until every alarm in it has cleared. */
  state: 'open' | 'closed';
  closedAt: number | null;
}

export interface Shelf {
  id: string;
  site: string | null;
  device: string | null;
  rule: string | null;
  fromMs: number;
  untilMs: number;
  user: string;
  /** SSO: the identity provider's subject (`<iss>#<sub>`) of the person, beside the name. */
  userSubject?: string | null;
  reason: string;
  createdAt: number;
  endedAt: number | null;
  endedBy: string | null;
  endedBySubject?: string | null;
}

export interface ShelveRequest {
  site?: string;
  device?: string;
  rule?: string;
  untilMs: number;
  user: string;
  /** SSO: the identity provider's subject (`<iss>#<sub>`) of the person, beside the name. */
  userSubject?: string;
  reason: string;
}

/** A new maintenance window (`POST /api/windows`). */
export interface WindowRequest {
  site?: string;
  device?: string;
  kind?: string;
  rule?: string;
  schedule: WindowSchedule;
  reason: string;
  user: string;
  /** SSO: the identity provider's subject (`<iss>#<sub>`) of the person, beside the name. */
  userSubject?: string;
}

export interface ListQuery {
  /** active: alarms that need attention (active, or cleared but not yet acknowledged); all: history too. */
  state: 'active' | 'all';
  site?: string;
  device?: string;
  limit?: number;
}

export type AlarmErrorCode =
  | 'GW_ERR_ALARM_NOT_FOUND'
  | 'GW_ERR_ALARM_ALREADY_ACKED'
  | 'GW_ERR_ALARM_BAD_REQUEST'
  | 'GW_ERR_WINDOW_ENDED'
  /** Cluster mode: the alarm moved to another instance with its device's partition (ADR 0160). */
  | 'GW_ERR_HOLDER_UNAVAILABLE'
  /** Cluster mode: the shared view (PostgreSQL) could not take an operator's change (ADR 0173). */
  | 'GW_ERR_UNAVAILABLE';

export class AlarmError extends Error {
  constructor(
    readonly code: AlarmErrorCode,
    message: string,
    /** The HTTP status the API should answer with. */
    readonly status: number,
    /** Fields answered beside code and message (cluster mode: `holder`, the instance holding it now). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AlarmError';
  }
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function alarmToJson(a: Alarm): AlarmJson {
  return {
    id: a.id,
    device: a.device,
    site: a.site,
    kind: a.kind,
    rule: a.rule,
    class: a.class,
    severity: a.severity,
    state: a.state,
    value: a.value,
    message: a.message,
    raisedAt: iso(a.raisedAt)!,
    clearedAt: iso(a.clearedAt),
    acknowledgedAt: iso(a.acknowledgedAt),
    acknowledgedBy: a.acknowledgedBy,
    ackNote: a.ackNote,
    incidentId: a.incidentId,
    shelved: a.shelved,
    suppressed: a.suppressed ?? false,
    windowId: a.windowId ?? null,
    critical: a.critical,
  };
}
