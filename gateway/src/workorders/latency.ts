import { Histogram, type Registry } from 'prom-client';
import type { AlarmEvent } from '../alarms/types.js';
import type { TicketEvent } from './service.js';

/** Alarms waiting for their ticket at most; beyond it the oldest are forgotten (alarms that make none). */
const MAX_PENDING = 10_000;

/**
 * `gateway_alarm_to_ticket_seconds`: from an alarm's `raise` event (after the alarm is committed)
 * to the commit of the ticket it created. Alarms that make no ticket are forgotten.
 */
export class TicketLatency {
  private readonly pending = new Map<string, number>();
  private readonly hist: Histogram;

  constructor(registry: Registry) {
    this.hist = new Histogram({
      name: 'gateway_alarm_to_ticket_seconds',
      help: 'From an alarm raised (committed) to the ticket it created committed',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers: [registry],
    });
  }

  onAlarm = (e: AlarmEvent): void => {
    if (e.type !== 'raise' && e.type !== 'escalate') return;
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    if (!this.pending.has(e.alarm.id)) this.pending.set(e.alarm.id, performance.now());
  };

  onTicket = (e: TicketEvent): void => {
    if (e.type !== 'created' || e.ticket.alarmId === null) return;
    const t0 = this.pending.get(e.ticket.alarmId);
    if (t0 === undefined) return;
    this.pending.delete(e.ticket.alarmId);
    this.hist.observe((performance.now() - t0) / 1000);
  };
}
