import { allGood, qualityOfMetric, type DeviceRefs, type Reading } from '../core/types.js';
import { dewPointC } from './derive-dewpoint.js';

/**
 * Derived values, computed on the ingest hot path for every reading (50,000+/s): consumption
 * from cumulative meter indices and dew point for environment probes. Everything here mutates
 * `reading.fields` in place and allocates only when a device's state changes (the state string).
 */

/**
 * A state entry: a string, or an object that writes itself as one (`toString()`, no tabs or
 * newlines). An object is read when its commit is taken, so a stage that updates its state on
 * every reading hands over the same object each time and builds no string per reading.
 */
export type StateValue = string | { toString(): string };

/** Durable per-key state, written atomically with the lines of the same commit (the Outbox). */
export interface StateStore {
  /** Every row whose key starts with `prefix`; keys are returned whole, prefix included. */
  loadState(prefix: string): Map<string, string>;
  /** Written with the next group commit; the store keeps only the last value per key. */
  putState(key: string, value: StateValue): void;
}

export interface DeviceLookup {
  /** The register's highest value (e.g. 99999.999), undefined when the device declares none. */
  registerMax(site: string, device: string): number | undefined;
}

export const DeriveOutcome = {
  /** Consumption booked (or nothing to derive for this reading). */
  ok: 'ok',
  /** The index wrapped past the register maximum; consumption booked through the wrap. */
  rollover: 'rollover',
  /** The index went down without a wrap: meter reset or replaced; flagged, nothing booked. */
  reset: 'reset',
  /** Same timestamp as the last accepted reading (a QoS 1 redelivery): nothing booked again. */
  duplicate: 'duplicate',
  /** Older than the last accepted reading: nothing booked, state unchanged. */
  out_of_order: 'out_of_order',
  /** First reading of the device: it becomes the base, nothing to subtract from. */
  first: 'first',
} as const;
export type DeriveOutcome = (typeof DeriveOutcome)[keyof typeof DeriveOutcome];

export const CONSUMPTION_PREFIX = 'consumption:';
export const DEFAULT_REGISTER_MAX = 99999.999;
/** A wrap needs the last index in the top 10 % of the register and the new one in the bottom 10 %. */
const WRAP_HIGH = 0.9;
const WRAP_LOW = 0.1;
/**
 * Deltas are rounded to 1e-6 m³ (1 mL): meters resolve at best 1 L, and without it float noise
 * such as 0.20000000000000284 would land in InfluxDB.
 */
const DELTA_SCALE = 1e6;

/**
 * One meter's last accepted reading. Handed to the state store as it is: the store asks for its
 * string when it commits, so a reading costs no string and nothing it leaves behind outlives the
 * next commit.
 */
class MeterState {
  constructor(
    public ts: number,
    public index: number,
    /** Its key in the state store, built once rather than per reading. */
    readonly stateKey: string,
    /** Rollover modulus; 0 until first needed, so config changes apply after a restart. */
    public modulus = 0,
  ) {}

  toString(): string {
    return `${this.ts} ${this.index}`;
  }
}

/**
 * The modulus at which a register with this maximum wraps: 99999.999 → 100000, 9999 → 10000.
 * A maximum that is itself a power of ten (100000) is taken as the modulus.
 */
export function rolloverModulus(registerMax: number): number {
  if (!(registerMax > 0) || !Number.isFinite(registerMax)) registerMax = DEFAULT_REGISTER_MAX;
  // The epsilon keeps an exact power of ten (log10 = 5.000000000000001 on some inputs) from
  // jumping to the next decade.
  return 10 ** Math.ceil(Math.log10(registerMax) - 1e-12);
}

function decode(v: string, stateKey: string): MeterState | undefined {
  const sp = v.indexOf(' ');
  if (sp <= 0) return undefined;
  const ts = Number(v.slice(0, sp));
  const index = Number(v.slice(sp + 1));
  if (!Number.isFinite(ts) || !Number.isFinite(index)) return undefined;
  return new MeterState(ts, index, stateKey);
}

function isMeterKind(kind: string): boolean {
  return kind === 'gas-meter' || kind === 'water-meter';
}

export class Deriver {
  private readonly state = new Map<string, MeterState>();
  private invalidState = 0;

  constructor(
    private readonly store: StateStore,
    private readonly devices: DeviceLookup,
  ) {}

  /** Reads the persisted state; call once before the first apply(). */
  load(): void {
    this.state.clear();
    for (const [k, v] of this.store.loadState(CONSUMPTION_PREFIX)) {
      const key = k.startsWith(CONSUMPTION_PREFIX) ? k.slice(CONSUMPTION_PREFIX.length) : k;
      const s = decode(v, CONSUMPTION_PREFIX + key);
      // A corrupt row is dropped: that device's next reading becomes its base ('first'), which
      // books nothing rather than something wrong.
      if (s) this.state.set(key, s);
      else this.invalidState++;
    }
  }

  /**
   * Cluster mode (ADR 0151): meters whose partition this member has just taken over get the index
   * the previous owner left in the shared store, before the replay of their readings runs. A
   * meter's state object is changed in place (the pipeline keeps references to it), so the next
   * reading subtracts from the restored index; a replayed reading at or before it books nothing.
   */
  restore(meters: Iterable<{ key: string; ts: number; index: number }>): number {
    let n = 0;
    for (const m of meters) {
      if (!Number.isFinite(m.ts) || !Number.isFinite(m.index)) {
        this.invalidState++;
        continue;
      }
      const s = this.state.get(m.key);
      if (s) {
        s.ts = m.ts;
        s.index = m.index;
        s.modulus = 0;
      } else this.state.set(m.key, new MeterState(m.ts, m.index, CONSUMPTION_PREFIX + m.key));
      n++;
    }
    return n;
  }

  /**
   * Cluster mode, a takeover's replay (ADR 0177 addendum): the timestamp of a meter's last accepted
   * index, where its consumption chain ends; undefined when `kind` is not a meter or it has none yet.
   */
  chainEnd(kind: string, key: string): number | undefined {
    return isMeterKind(kind) ? this.state.get(key)?.ts : undefined;
  }

  /** Devices with consumption state, and rows dropped at load() because they did not parse. */
  stats(): { devices: number; invalidState: number } {
    return { devices: this.state.size, invalidState: this.invalidState };
  }

  /** Adds the derived fields to `reading.fields`. `key` is `${site}/${device}`. */
  apply(reading: Reading, key: string, refs?: DeviceRefs): DeriveOutcome {
    const fields = reading.fields;
    if (isMeterKind(reading.kind)) {
      const index = fields.volume_m3;
      // A reading without an index, or one its source does not vouch for (bad or uncertain: a
      // restarted register reporting 0), must not become the base.
      if (
        typeof index !== 'number' ||
        (reading.quality !== undefined && qualityOfMetric(reading, 'volume_m3') !== 'good')
      )
        return DeriveOutcome.ok;
      return this.consumption(reading, key, index, refs);
    }
    if (reading.kind === 'env-probe') {
      const t = fields.temperature_c;
      const rh = fields.humidity_pct;
      // A dew point from a value that is not good would be written as a good one.
      if (
        typeof t === 'number' &&
        typeof rh === 'number' &&
        rh > 0 &&
        (allGood(reading) || bothGood(reading))
      )
        fields.dew_point_c = dewPointC(t, rh);
    }
    return DeriveOutcome.ok;
  }

  private consumption(reading: Reading, key: string, index: number, refs?: DeviceRefs): DeriveOutcome {
    const ts = reading.ts;
    // A meter's state object is created once and changed in place, so a kept reference holds.
    let s = refs?.derive as MeterState | undefined;
    if (s === undefined) {
      s = this.state.get(key);
      if (s === undefined) {
        const fresh = new MeterState(ts, index, CONSUMPTION_PREFIX + key);
        this.state.set(key, fresh);
        this.store.putState(fresh.stateKey, fresh);
        if (refs) refs.derive = fresh;
        return DeriveOutcome.first;
      }
      if (refs) refs.derive = s;
    }
    // Omitting the field (rather than writing 0) matters: InfluxDB merges the fields of points
    // with the same series and timestamp, so a redelivery keeps the value booked the first time.
    if (ts === s.ts) return DeriveOutcome.duplicate;
    if (ts < s.ts) return DeriveOutcome.out_of_order;

    const fields = reading.fields;
    let outcome: DeriveOutcome = DeriveOutcome.ok;
    let delta = index - s.index;
    if (delta < 0) {
      if (s.modulus === 0) {
        s.modulus = rolloverModulus(
          this.devices.registerMax(reading.site, reading.device) ?? DEFAULT_REGISTER_MAX,
        );
      }
      const m = s.modulus;
      const wrapped = m - s.index + index;
      if (s.index >= WRAP_HIGH * m && index <= WRAP_LOW * m && wrapped >= 0) {
        delta = wrapped;
        outcome = DeriveOutcome.rollover;
      } else {
        delta = 0;
        fields.index_reset = true;
        outcome = DeriveOutcome.reset;
      }
    }
    fields.consumption_m3 = Math.round(delta * DELTA_SCALE) / DELTA_SCALE;
    s.ts = ts;
    s.index = index;
    this.store.putState(s.stateKey, s);
    return outcome;
  }
}

const bothGood = (r: Reading): boolean =>
  qualityOfMetric(r, 'temperature_c') === 'good' && qualityOfMetric(r, 'humidity_pct') === 'good';
