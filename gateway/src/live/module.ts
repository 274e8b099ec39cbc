import type { Bus } from '../core/events.js';
import type { AlarmEvent } from '../alarms/index.js';
import type { TicketEvent } from '../workorders/index.js';
import type { LiveHub } from './hub.js';
import { liveAlarm, liveTicket } from './payloads.js';

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
    bus.on('ticket', (e) => hub.publish('ticket', liveTicket(e), e.ticket.site)),
  ];
}
