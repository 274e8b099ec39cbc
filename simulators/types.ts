import type { Rng } from './rng.js';

export const KINDS = ['water-meter', 'gas-meter', 'chlorination', 'env-probe'] as const;
export type Kind = (typeof KINDS)[number];

export type MetricValue = number | boolean;
export type Values = Record<string, MetricValue>;

/** What every model state carries besides its own physics. */
export interface BaseState {
  /** Faults active for this step; the engine sets them before each step. */
  faults: readonly string[];
}

export interface StepResult<S> {
  state: S;
  /** What the device reports at `nowMs`, with DOMAIN.md's metric names and units. */
  values: Values;
}

/**
 * One device kind's physics. `step` is pure: the same state, dt, time and random sequence give
 * the same result, which is what makes a run reproducible from its seed.
 */
export interface Model<S extends BaseState = BaseState, P = unknown> {
  kind: Kind;
  /** Faults this kind knows, each with a one-line description of its signature. */
  faults: Readonly<Record<string, string>>;
  /** Every parameter with its default; a scenario may override any of them. */
  defaultParams: Readonly<P>;
  /** The gateway's default reporting interval for the kind (catalogue). */
  defaultIntervalSec: number;
  /** Metrics whose reading comes from an analogue sensor (bad status under `sensor-fault`). */
  analogMetrics: readonly string[];
  init(params: Partial<P>, nowMs: number, rng: Rng): S;
  step(state: S, dtSec: number, nowMs: number, rng: Rng): StepResult<S>;
}

/** Faults every kind understands; handled by the engine and the transports, not the physics. */
export const COMMON_FAULTS: Readonly<Record<string, string>> = {
  silent: 'the device stops reporting (offline after 3 intervals)',
  'sensor-fault':
    'analogue readings are bad: 0 with "quality": {"<metric>": "bad"} over MQTT JSON, Bad_SensorFailure over OPC UA',
};
