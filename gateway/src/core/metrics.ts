import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The Prometheus registry. Each module registers its own metrics next to its code (ingest/metrics.ts,
 * storage/outbox-metrics.ts, ...): core knows no domain module. Hot-path counters are plain numbers
 * inside the stages, read at scrape time, so counting costs nothing per message.
 */
export function createMetrics(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gateway_process_' });
  return registry;
}

/**
 * A maker of gauges read at scrape time: `gauge(name, help, read)` registers one whose value is
 * `read()` whenever `/metrics` is asked, so nothing is updated on the paths being measured.
 */
export function scrapedGauges(registry: Registry) {
  return (name: string, help: string, read: () => number): Gauge =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
}
