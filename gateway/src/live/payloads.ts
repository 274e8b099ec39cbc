import { alarmToJson, type AlarmEvent } from '../alarms/index.js';
import { ticketToJson, type TicketEvent } from '../workorders/index.js';

/** An alarm event as the live stream sends it: the alarm as the API shows it, and what happened. */
export function liveAlarm(e: AlarmEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    event: e.type,
    ts: new Date(e.ts).toISOString(),
    alarm: alarmToJson(e.alarm),
  };
  if (e.user !== undefined) out.user = e.user;
  if (e.note !== undefined) out.note = e.note;
  return out;
}

/** A ticket change as the live stream sends it: the ticket without its trail, and the entries it added. */
export function liveTicket(e: TicketEvent): Record<string, unknown> {
  return { event: e.type, ticket: ticketToJson(e.ticket, false), entries: e.entries };
}
