import type { Alarm, Incident, ListQuery } from '../alarms/types.js';
import type { Ticket, TicketStatus } from '../workorders/types.js';

/** One line of an alarm's history, as `GET /api/alarms/:id` shows it (the local store's shape). */
export interface AlarmHistoryRow {
  type: string;
  ts: number;
  severity: string;
  state: string;
  user: string | null;
  userSubject: string | null;
  note: string | null;
  shelved: number;
  suppressed: number;
}

/** The filters of `GET /api/tickets` (as the local store takes them). */
export interface ViewTicketFilter {
  status?: TicketStatus;
  site?: string;
  device?: string;
  priority?: string;
  assignee?: string;
  updatedSince?: number;
  overdue?: boolean;
  now: number;
  offset?: number;
  limit: number;
  withHistory?: boolean;
}

/** The instance that holds a record (writes it, takes changes to it) and where its API is. */
export interface Holder {
  instanceId: string;
  /** Its HTTP URL as it registered it in `cluster_members`; null when it is not a live member. */
  url: string | null;
}

/**
 * What the HTTP routes read in cluster mode (ADR 0155): every instance's alarms, incidents and
 * tickets from the shared copy in PostgreSQL, and who holds a record so that a change reaches it.
 */
export interface SharedView {
  /** This instance's id. */
  readonly instanceId: string;
  listAlarms(q: ListQuery & { limit: number }): Promise<Alarm[]>;
  getAlarm(id: string): Promise<{ alarm: Alarm; history: AlarmHistoryRow[] } | undefined>;
  listIncidents(): Promise<Incident[]>;
  pageTickets(f: ViewTicketFilter): Promise<{ tickets: Ticket[]; total: number }>;
  getTicket(id: string): Promise<Ticket | undefined>;
  holder(kind: 'alarm' | 'ticket', id: string): Promise<Holder | undefined>;
}

/** A queued ticket notification as its holder's queue holds it (copied to view_notifications). */
export interface NotifyCopy {
  eventId: string;
  channel: string;
  ticketId: string;
  event: string;
  createdAt: number;
  body: string;
  target: string | null;
  state: string;
  deliveredAt: number | null;
}

/** A change of the holder's notification queue (the notifications service's `onQueueChange`). */
export type NotifyChange =
  | { kind: 'queued'; row: NotifyCopy }
  | { kind: 'state'; eventId: string; channel: string; state: string; at: number | null };
