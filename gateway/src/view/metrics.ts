import type { Registry } from 'prom-client';
import { scrapedGauges } from '../core/metrics.js';
import type { ViewFeed } from './feed.js';
import type { IncidentSync } from './incident-sync.js';
import type { ViewWriter } from './writer.js';

/** The shared view's Prometheus series (ADR 0155, 0156), read when scraped. */
export function viewMetrics(registry: Registry, writer: ViewWriter, feed: ViewFeed): void {
  const gauge = scrapedGauges(registry);
  gauge(
    'gateway_view_pending_changes',
    'Alarm and ticket changes of this instance not yet copied to PostgreSQL',
    () => writer.stats().pending,
  );
  gauge(
    'gateway_view_write_failures',
    'Batches of changes that PostgreSQL refused or could not take (tried again)',
    () => writer.stats().failures,
  );
  gauge(
    'gateway_view_dropped_changes',
    'Changes dropped because too many waited for PostgreSQL (copied again at the next start)',
    () => writer.stats().dropped,
  );
  gauge(
    'gateway_view_fenced_records',
    'Record changes not copied because another instance holds the record now (ADR 0160)',
    () => writer.stats().fenced,
  );
  gauge('gateway_view_feed_connected', "1 while the live feed listens for other instances' changes", () =>
    feed.stats().connected ? 1 : 0,
  );
  gauge(
    'gateway_view_feed_events',
    "Other instances' changes published on this instance's live stream",
    () => feed.stats().published,
  );
}

/** The cluster's incident grouping (ADR 0170), read when scraped. */
export function incidentMetrics(registry: Registry, sync: IncidentSync): void {
  const gauge = scrapedGauges(registry);
  gauge(
    'gateway_cluster_incident_local_groupings',
    'Alarm raises this instance grouped alone because PostgreSQL was out of reach',
    () => sync.stats().groupedLocally,
  );
  gauge(
    'gateway_cluster_incidents_reconciled',
    'Incidents made alone during an outage that met the shared ones afterwards',
    () => sync.stats().reconciled,
  );
  gauge(
    'gateway_cluster_incidents_merged',
    'Of those, duplicates of one site and rule merged into the earlier incident',
    () => sync.stats().merged,
  );
  gauge(
    'gateway_cluster_incident_failures',
    'Grouping transactions and polls that PostgreSQL refused or could not take',
    () => sync.stats().failures,
  );
}
