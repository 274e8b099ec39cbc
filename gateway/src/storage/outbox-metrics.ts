import type { Registry } from 'prom-client';
import { scrapedGauges } from '../core/metrics.js';
import type { Outbox } from './outbox.js';

/** The outbox's backlog as Prometheus gauges, read from its stats at scrape time. */
export function registerOutboxMetrics(registry: Registry, outbox: Outbox): void {
  const g = scrapedGauges(registry);
  g(
    'gateway_outbox_pending_lines',
    'Readings waiting in the durable outbox for InfluxDB',
    () => outbox.stats().pendingLines,
  );
  g('gateway_outbox_pending_bytes', 'Bytes waiting in the durable outbox', () => outbox.stats().pendingBytes);
  g(
    'gateway_outbox_parked_batches',
    'Batches InfluxDB refused for good, kept for inspection',
    () => outbox.stats().parkedBatches,
  );
  g(
    'gateway_outbox_dropped_lines',
    'Readings dropped at the disk bound (policy drop-oldest only)',
    () => outbox.stats().droppedLines,
  );
  g('gateway_outbox_full', '1 while the outbox is at its disk bound and acknowledging has stopped', () =>
    outbox.isFull() ? 1 : 0,
  );
}
