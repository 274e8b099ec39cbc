/**
 * The device kinds of DOMAIN.md and the physically possible range of each metric.
 * Ranges reject absurd values (a humidity of 140 %, a negative chlorine residual); they are
 * not alarm thresholds, which live in the rules.
 */

export interface MetricDef {
  type: 'number' | 'boolean';
  unit?: string;
  /** Physically possible bounds, inclusive. */
  min?: number;
  max?: number;
  /** A cumulative index (consumption is derived from it). */
  cumulative?: boolean;
}

export interface KindDef {
  /** InfluxDB measurement name: the kind with `_` for `-`. */
  measurement: string;
  /** Expected reporting interval, used for the offline rule. */
  reportIntervalSec: number;
  metrics: Record<string, MetricDef>;
}

const num = (unit: string, min: number, max: number): MetricDef => ({ type: 'number', unit, min, max });
const bool: MetricDef = { type: 'boolean' };

export const BUILTIN_KINDS: Record<string, KindDef> = {
  'gas-meter': {
    measurement: 'gas_meter',
    reportIntervalSec: 900,
    metrics: {
      volume_m3: { ...num('m3', 0, 1e9), cumulative: true },
      flow_m3h: num('m3/h', 0, 1e5),
      pressure_kpa: num('kPa', -100, 10_000),
      battery_pct: num('%', 0, 100),
      valve_open: bool,
      tamper: bool,
      balance_m3: num('m3', -1e6, 1e9),
      methane_lel_pct: num('%LEL', 0, 100),
    },
  },
  'water-meter': {
    measurement: 'water_meter',
    reportIntervalSec: 900,
    metrics: {
      volume_m3: { ...num('m3', 0, 1e9), cumulative: true },
      flow_lph: num('L/h', -1e7, 1e7),
      pressure_kpa: num('kPa', -100, 10_000),
      battery_pct: num('%', 0, 100),
      reverse_flow: bool,
      tamper: bool,
      temperature_c: num('°C', -60, 100),
    },
  },
  chlorination: {
    measurement: 'chlorination',
    reportIntervalSec: 60,
    metrics: {
      free_chlorine_mgl: num('mg/L', 0, 100),
      total_chlorine_mgl: num('mg/L', 0, 100),
      ph: num('pH', 0, 14),
      turbidity_ntu: num('NTU', 0, 10_000),
      orp_mv: num('mV', -2000, 2000),
      level_pct: num('%', 0, 100),
      temperature_c: num('°C', -20, 100),
      dosing_pump_on: bool,
    },
  },
  'env-probe': {
    measurement: 'env_probe',
    reportIntervalSec: 60,
    metrics: {
      temperature_c: num('°C', -50, 100),
      humidity_pct: num('%RH', 0, 100),
      smoke: bool,
      water_leak: bool,
      door_open: bool,
    },
  },
};

/** Fields the gateway computes itself; a device may not send them. */
export const DERIVED_FIELDS: ReadonlySet<string> = new Set(['consumption_m3', 'dew_point_c', 'index_reset']);

export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Extra (non-catalogue) field names: safe as InfluxDB field keys without escaping. */
export const FIELD_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
/** Largest magnitude accepted for an extra field with no declared range. */
export const EXTRA_FIELD_ABS_MAX = 1e15;

export function measurementOf(kind: string): string {
  return kind.replace(/-/g, '_');
}
