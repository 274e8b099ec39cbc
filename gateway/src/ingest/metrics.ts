import { Counter, Gauge, type Registry } from 'prom-client';
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
  // Rejected messages republished to `facility/_rejected/...` at QoS 1 (ADR 0071).
  type Letters = NonNullable<ReturnType<IngestPipeline['deadLetters']>>;
  const letterCounter = (name: string, help: string, read: (d: Letters) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const d = pipeline()?.deadLetters();
        if (!d) return;
        this.reset();
        this.inc(read(d));
      },
    });
  letterCounter(
    'gateway_dead_letters_published_total',
    'Rejected messages republished and acknowledged by the broker (QoS 1)',
    (d) => d.published,
  );
  letterCounter(
    'gateway_dead_letters_dropped_total',
    'Rejected messages not republished: the dead-letter queue was at its bound',
    (d) => d.dropped,
  );
  letterCounter(
    'gateway_dead_letters_restored_total',
    'Rejected messages found on disk at start, queued before a crash or restart, sent again',
    (d) => d.restored ?? 0,
  );
  letterCounter(
    'gateway_dead_letters_store_errors_total',
    'Writes of rejected messages to dead-letters.db that failed, or the file could not be opened (letters kept in memory only)',
    (d) => d.storeErrors ?? 0,
  );
  new Gauge({
    name: 'gateway_dead_letters_pending',
    help: 'Rejected messages waiting to be republished or for their PUBACK',
    registers: [registry],
    collect() {
      const d = pipeline()?.deadLetters();
      if (d) this.set(d.pending);
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
