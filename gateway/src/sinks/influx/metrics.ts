import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const NAMES = [
  'gateway_influx_lines_written_total',
  'gateway_influx_requests_total',
  'gateway_influx_batches_parked_total',
  'gateway_influx_lines_parked_total',
  'gateway_influx_write_duration_seconds',
  'gateway_influx_pending_lines',
  'gateway_delivery_lag_seconds',
] as const;

export type RequestOutcome = 'ok' | 'retry' | 'split' | 'park' | 'alarm' | 'network';

/** The sink's Prometheus metrics, registered in start() and removed in stop() (hot reload). */
export class InfluxMetrics {
  readonly linesWritten: Counter;
  readonly requests: Counter<'outcome'>;
  readonly parked: Counter;
  readonly parkedLines: Counter;
  readonly latency: Histogram;
  readonly pending: Gauge;
  readonly deliveryLag: Histogram;

  constructor(
    private readonly registry: Registry,
    pendingLines: () => number,
  ) {
    const registers = [registry];
    this.linesWritten = new Counter({
      name: 'gateway_influx_lines_written_total',
      help: 'Line-protocol lines confirmed by InfluxDB',
      registers,
    });
    this.requests = new Counter({
      name: 'gateway_influx_requests_total',
      help: 'Write requests to InfluxDB by outcome (ok, retry, split, park, alarm, network)',
      labelNames: ['outcome'],
      registers,
    });
    this.parked = new Counter({
      name: 'gateway_influx_batches_parked_total',
      help: 'Batches InfluxDB will never accept, set aside in the outbox with the reason',
      registers,
    });
    this.parkedLines = new Counter({
      name: 'gateway_influx_lines_parked_total',
      help: 'Lines in parked batches',
      registers,
    });
    this.latency = new Histogram({
      name: 'gateway_influx_write_duration_seconds',
      help: 'Duration of one write request to InfluxDB, whatever its outcome',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.deliveryLag = new Histogram({
      name: 'gateway_delivery_lag_seconds',
      help: "From a reading's own timestamp to InfluxDB confirming it (oldest and newest line of each batch)",
      buckets: [
        0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 300, 3600,
      ],
      registers,
    });
    this.pending = new Gauge({
      name: 'gateway_influx_pending_lines',
      help: 'Lines in the outbox waiting for InfluxDB',
      registers,
      collect() {
        this.set(pendingLines());
      },
    });
  }

  unregister(): void {
    for (const name of NAMES) this.registry.removeSingleMetric(name);
  }
}
