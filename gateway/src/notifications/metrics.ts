import { Counter, Gauge, type Registry } from 'prom-client';
import type { NotificationService } from './service.js';

/** Queue depth, dead letters, oldest undelivered age and attempt counters per channel, read at scrape time. */
export function registerNotificationMetrics(
  registry: Registry,
  svc: () => NotificationService | undefined,
): void {
  const gauge = (
    name: string,
    help: string,
    pick: (m: ReturnType<NotificationService['metrics']>[number]) => number,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: ['channel'],
      registers: [registry],
      collect() {
        const s = svc();
        if (!s) return;
        this.reset();
        for (const m of s.metrics()) this.set({ channel: m.channel }, pick(m));
      },
    });
  const counter = (
    name: string,
    help: string,
    pick: (m: ReturnType<NotificationService['metrics']>[number]) => number,
  ) =>
    new Counter({
      name,
      help,
      labelNames: ['channel'],
      registers: [registry],
      collect() {
        const s = svc();
        if (!s) return;
        this.reset();
        for (const m of s.metrics()) this.inc({ channel: m.channel }, pick(m));
      },
    });
  gauge('gateway_notify_queue_depth', 'Ticket events waiting for delivery', (m) => m.pending);
  gauge('gateway_notify_dead', 'Ticket events parked as dead (refused for good or given up)', (m) => m.dead);
  gauge(
    'gateway_notify_oldest_pending_seconds',
    'Age of the oldest undelivered ticket event',
    (m) => m.oldestPendingAgeSec,
  );
  gauge(
    'gateway_notify_blocked_seconds',
    'How long the head of the line has been failing (its later events wait behind it); 0 when not',
    (m) => m.blockedSec,
  );
  gauge(
    'gateway_notify_head_attempts',
    'Failed attempts of the event at the head of the line',
    (m) => m.headAttempts,
  );
  gauge(
    'gateway_notify_last_status',
    'The last status the receiver answered (HTTP or SMTP); 0 when unreachable or none yet',
    (m) => m.lastStatus,
  );
  counter('gateway_notify_attempts_total', 'Delivery attempts since start', (m) => m.attempts);
  counter('gateway_notify_failures_total', 'Failed delivery attempts since start', (m) => m.failures);
  counter('gateway_notify_delivered_total', 'Ticket events delivered since start', (m) => m.delivered);
}
