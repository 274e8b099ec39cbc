import { Counter, Gauge, type Registry } from 'prom-client';

/** What an M-Bus source counts; read at scrape time, so counting costs a number increment. */
export interface MbusCounters {
  readonly connection: string;
  reads: number;
  /** Failed attempts and refused answers, per reason (timeout, frame_checksum, records_truncated, ...). */
  errors: Record<string, number>;
  offline(): number;
}

const sources = new WeakMap<Registry, Set<MbusCounters>>();

/** Adds a source's counters to the registry's M-Bus metrics (created by the first source). */
export function attachMbusMetrics(registry: Registry, c: MbusCounters): () => void {
  let set = sources.get(registry);
  if (!set) {
    set = new Set();
    sources.set(registry, set);
    const all = set;
    new Counter({
      name: 'gateway_mbus_reads_total',
      help: 'M-Bus meter readouts decoded and handed to ingest',
      labelNames: ['connection'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of all) this.inc({ connection: s.connection }, s.reads);
      },
    });
    new Counter({
      name: 'gateway_mbus_errors_total',
      help: 'M-Bus attempts that failed or answers refused, by reason',
      labelNames: ['connection', 'reason'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of all)
          for (const [reason, n] of Object.entries(s.errors))
            this.inc({ connection: s.connection, reason }, n);
      },
    });
    new Gauge({
      name: 'gateway_mbus_meters_offline',
      help: 'M-Bus meters that missed the configured number of polls in a row',
      labelNames: ['connection'],
      registers: [registry],
      collect() {
        this.reset();
        for (const s of all) this.set({ connection: s.connection }, s.offline());
      },
    });
  }
  set.add(c);
  return () => set.delete(c);
}
