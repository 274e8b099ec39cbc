import type { AlarmEvent } from './alarms/index.js';
import type { TicketEvent } from './workorders/index.js';
import { EventBus } from './core/events.js';
import type { Logger } from './core/log.js';

/**
 * The events that cross modules, each published after its change was committed:
 * alarm → work orders, live stream, InfluxDB; ticket → latency metrics, live stream, InfluxDB.
 */
export interface GatewayEvents {
  alarm: AlarmEvent;
  ticket: TicketEvent;
}

export type GatewayBus = EventBus<GatewayEvents>;

export function createBus(log: Logger): GatewayBus {
  return new EventBus<GatewayEvents>((type, err) => log.error({ err, event: type }, 'event listener failed'));
}
