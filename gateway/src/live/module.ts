import type { Bus } from '../core/events.js';
import { alarmToJson, type AlarmEvent } from '../alarms/index.js';
import { ticketToJson, type TicketEvent } from '../workorders/index.js';
import type { LiveHub } from './hub.js';

/**
 * The live stream's share of the cross-module events: alarms and ticket changes, as the API shows
 * them, to every subscriber of the site. Returns the unsubscribes.
 */
export function connectLive(
  bus: Bus<{ alarm: AlarmEvent; ticket: TicketEvent }>,
  hub: LiveHub,
): Array<() => void> {
  return [
    bus.on('alarm', (e) => hub.publish('alarm', liveAlarm(e), e.alarm.site)),
    bus.on('ticket', (e) =>
      hub.publish(
        'ticket',
        { event: e.type, ticket: ticketToJson(e.ticket, false), entries: e.entries },
        e.ticket.site,
      ),
    ),
  ];
}

/** An alarm event as the live stream sends it: the alarm as the API shows it, and what happened. */
function liveAlarm(e: AlarmEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    event: e.type,
    ts: new Date(e.ts).toISOString(),
    alarm: alarmToJson(e.alarm),
  };
  if (e.user !== undefined) out.user = e.user;
  if (e.note !== undefined) out.note = e.note;
  return out;
}
