import { Counter, type Registry } from 'prom-client';
import type { IngestPipeline } from './pipeline.js';

/**
 * The ingest counters as Prometheus metrics. The pipeline counts in plain numbers; they are read
 * here at scrape time, so counting costs nothing per message.
 */
export function registerIngestMetrics(registry: Registry, pipeline: () => IngestPipeline | undefined): void {
  new Counter({
    name: 'gateway_messages_received_total',
    help: 'Messages received from all sources',
    registers: [registry],
    collect() {
      const p = pipeline();
      if (!p) return;
      this.reset();
      this.inc(p.counters.messages);
    },
  });
  new Counter({
    name: 'gateway_messages_accepted_total',
    help: 'Messages accepted and handed to the durable outbox',
    registers: [registry],
    collect() {
      const p = pipeline();
      if (!p) return;
      this.reset();
      this.inc(p.counters.accepted);
    },
  });
  new Counter({
    name: 'gateway_readings_accepted_total',
    help: 'Metric values accepted (derived values included)',
    registers: [registry],
    collect() {
      const p = pipeline();
      if (!p) return;
      this.reset();
      this.inc(p.counters.values);
    },
  });
  new Counter({
    name: 'gateway_messages_rejected_total',
    help: 'Messages rejected, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const p = pipeline();
      if (!p) return;
      this.reset();
      for (const [reason, n] of Object.entries(p.counters.rejected)) this.inc({ reason }, n);
    },
  });
  new Counter({
    name: 'gateway_consumption_events_total',
    help: 'Outcomes of consumption derivation (rollover, reset, duplicate, out_of_order, ...)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const p = pipeline();
      if (!p) return;
      this.reset();
      for (const [outcome, n] of Object.entries(p.counters.derive)) this.inc({ outcome }, n);
    },
  });
}
