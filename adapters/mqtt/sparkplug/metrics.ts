import { Counter, Gauge, type Registry } from 'prom-client';
import type { SparkplugTracker } from './tracker.js';

/** Sparkplug B counters as the ingest keeps them: plain numbers, read at scrape time. */
export interface SparkplugCounters {
  messages: Record<string, number>;
  rejected: Record<string, number>;
  readings: number;
  /** Readings the ingest pipeline refused (range, type, kind mismatch...). */
  readingsRejected: number;
  nullValues: number;
  ignoredMetrics: number;
  rebirthRequests: number;
  /** Cluster mode: rebirths this member left to the owner of the edge node's partition (ADR 0181). */
  rebirthsLeftToOwner: number;
}

/**
 * What the metrics read from the Sparkplug ingest at scrape time. An interface here rather than the
 * ingest class, so ingest.ts (which registers these metrics at start) and this file import one way.
 */
export interface SparkplugStats {
  readonly counters: SparkplugCounters;
  view(): ReturnType<SparkplugTracker['view']>;
}

/** Sparkplug B counters, read from the ingest at scrape time (nothing is counted twice). */
export function registerSparkplugMetrics(registry: Registry, spb: () => SparkplugStats | undefined): void {
  const counter = (name: string, help: string, read: (s: SparkplugStats) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const s = spb();
        if (!s) return;
        this.reset();
        this.inc(read(s));
      },
    });
  new Counter({
    name: 'gateway_sparkplug_messages_total',
    help: 'Sparkplug B messages received, by message type',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      const s = spb();
      if (!s) return;
      this.reset();
      for (const [type, n] of Object.entries(s.counters.messages)) this.inc({ type }, n);
    },
  });
  new Counter({
    name: 'gateway_sparkplug_rejected_total',
    help: 'Sparkplug B messages dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const s = spb();
      if (!s) return;
      this.reset();
      for (const [reason, n] of Object.entries(s.counters.rejected)) this.inc({ reason }, n);
    },
  });
  counter(
    'gateway_sparkplug_readings_total',
    'Readings from Sparkplug B accepted by ingest',
    (s) => s.counters.readings,
  );
  counter(
    'gateway_sparkplug_readings_rejected_total',
    'Readings from Sparkplug B refused by ingest validation',
    (s) => s.counters.readingsRejected,
  );
  counter(
    'gateway_sparkplug_null_values_total',
    'Sparkplug B metric values sent as null (is_null): not stored',
    (s) => s.counters.nullValues,
  );
  counter(
    'gateway_sparkplug_ignored_metrics_total',
    'Sparkplug B metrics with nothing to store (strings, data sets, control metrics)',
    (s) => s.counters.ignoredMetrics,
  );
  counter(
    'gateway_sparkplug_rebirth_requests_total',
    'Node Control/Rebirth commands sent to edge nodes',
    (s) => s.counters.rebirthRequests,
  );
  const gauge = (name: string, help: string, read: (s: SparkplugStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const s = spb();
        if (s) this.set(read(s));
      },
    });
  gauge('gateway_sparkplug_nodes_online', 'Sparkplug B edge nodes online (born, not dead)', (s) =>
    s.view().reduce((n, x) => n + (x.online ? 1 : 0), 0),
  );
  gauge('gateway_sparkplug_devices_online', 'Sparkplug B devices online (born, not dead)', (s) =>
    s.view().reduce((n, x) => n + x.devices.filter((d) => d.online).length, 0),
  );
}
