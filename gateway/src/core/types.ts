/**
 * Core shapes shared by every stage. Data flows one way:
 * sources → ingest → (outbox → influx) | (listeners: registry, rules, live hub).
 */

export type MetricValue = number | boolean;

/** Quality of a value as its source reported it (OPC UA status codes map onto this). */
export type Quality = 'good' | 'uncertain' | 'bad';

/**
 * One device's values at one instant. A message carries one Reading; benchmarks count
 * "readings" as single metric values (fields), so a Reading with five fields counts five.
 */
export interface Reading {
  site: string;
  kind: string;
  device: string;
  /** Epoch milliseconds, the reading's own time. */
  ts: number;
  /** Metric name → value, including derived fields (consumption_m3, dew_point_c). */
  fields: Record<string, MetricValue>;
  /**
   * Absent means every value is good. Without `qualities`, every value of the reading has this
   * quality (a source that reports one status per message); with it, the worst of `qualities`.
   */
  quality?: Quality;
  /**
   * The quality of each value that is not good, by metric (absent metrics are good). Set by the
   * ingest pipeline whenever `quality` is, so that one failed sensor does not taint the values
   * measured beside it (ADR 0070).
   */
  qualities?: Record<string, Quality>;
}

/** The quality of one metric's value in a reading. */
export function qualityOfMetric(r: Reading, metric: string): Quality {
  const q = r.quality;
  if (q === undefined) return 'good';
  const per = r.qualities;
  return per === undefined ? q : (per[metric] ?? 'good');
}

/** Whether every value of the reading is good (the common case, decided without a lookup). */
export const allGood = (r: Reading): boolean => r.quality === undefined || r.quality === 'good';

/**
 * Where the stages that keep state per device put a reference to it, one record per device that
 * the ingest pipeline holds with the device's topic: each reading then reaches its device's
 * state without a lookup in a map of every device. A reference, once set, stays valid: those
 * stages never replace a device's state object. Each stage reads and writes only its own field.
 */
export interface DeviceRefs {
  registry: object | undefined;
  rules: object | undefined;
  derive: object | undefined;
}

export const newDeviceRefs = (): DeviceRefs => ({ registry: undefined, rules: undefined, derive: undefined });

/** Receives accepted readings after they were handed to the durable store. Must not throw. */
export interface ReadingListener {
  /** `refs` comes with readings from the ingest pipeline; without it the listener looks the device up. */
  onReading(reading: Reading, refs?: DeviceRefs): void;
}

export type ComponentState = 'ok' | 'degraded' | 'down' | 'starting' | 'stopped';

export interface ComponentHealth {
  state: ComponentState;
  detail?: string;
  [extra: string]: unknown;
}

/** Every long-lived part: constructors store dependencies, all I/O in start(), stop() undoes it. */
export interface Component {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): ComponentHealth;
}
