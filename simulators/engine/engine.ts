import { MODELS } from '../models/index.js';
import { createRng, deriveSeed, type Rng } from '../rng.js';
import { fleetId, isKnownFault, type Scenario } from '../scenario/schema.js';
import type { BaseState, Kind, Model, Values } from '../types.js';
import { DueHeap } from './heap.js';
import { roundValues } from './round.js';

export type Transport = 'mqtt' | 'opcua' | 'both';

export interface DeviceInfo {
  id: string;
  site: string;
  kind: Kind;
  transport: Transport;
  intervalMs: number;
  qos: 0 | 1 | 2;
  topic: string;
  faults: string[];
  lastTs: number | null;
  lastValues: Values | null;
  /** Rated maximum flow in the kind's flow unit (water Q3 L/h, gas Qmax m³/h), for the gateway's config. */
  ratedMaxFlow?: number;
  /** The register's highest value before it rolls over. */
  registerMax?: number;
}

/** One report of one device, ready for a transport. */
export interface SimMessage {
  slot: number;
  device: string;
  site: string;
  kind: Kind;
  topic: string;
  qos: 0 | 1 | 2;
  transport: Transport;
  ts: number;
  /** Good values only; metrics of a faulted sensor are left out (see `bad`). */
  values: Values;
  /** Metrics the device has but cannot measure now (sensor fault). */
  bad: string[];
  /** The device is silent: MQTT sends nothing; OPC UA marks its values Bad_NoCommunication. */
  silent: boolean;
  faults: string[];
}

interface FaultWindow {
  fault: string;
  fromMs: number;
  /** Exclusive; Infinity = until stopped. */
  toMs: number;
  manual: boolean;
}

interface Slot {
  id: string;
  site: string;
  kind: Kind;
  model: Model<BaseState, unknown>;
  transport: Transport;
  intervalMs: number;
  qos: 0 | 1 | 2;
  topic: string;
  state: BaseState;
  rng: Rng;
  lastStepMs: number;
  windows: FaultWindow[];
  lastTs: number | null;
  lastValues: Values | null;
}

export interface EngineOptions {
  seed: number;
  startTime: number;
  /** Replaces every device's interval (benchmarks, fast tests). */
  intervalOverrideMs?: number;
}

/**
 * Shared empties for the common case (no fault, silent), so a report allocates nothing for them.
 * Frozen: a consumer that tried to modify one would otherwise change every message's.
 */
const NO_FAULTS = Object.freeze([]) as readonly string[] as string[];
const NO_VALUES = Object.freeze({}) as Values;

function sameFaults(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const DEFAULT_TRANSPORT: Record<Kind, Transport> = {
  'water-meter': 'mqtt',
  'gas-meter': 'mqtt',
  chlorination: 'mqtt',
  'env-probe': 'mqtt',
};

/**
 * Turns a scenario into a time-ordered stream of device reports. No I/O and no wall clock:
 * advanceTo(t) emits every report due up to simulated time t, in (time, device) order, so a
 * seed and a start time fix the messages whatever the pace of the caller.
 */
export class Engine {
  private readonly slots: Slot[] = [];
  private readonly byId = new Map<string, number>();
  private readonly due: Float64Array;
  private readonly heap: DueHeap;
  private readonly jitter: number;
  /** Simulated time everything up to which has been emitted. */
  private processedMs: number;

  constructor(
    scenario: Scenario,
    private readonly opts: EngineOptions,
  ) {
    this.jitter = scenario.defaults.jitter;
    this.processedMs = opts.startTime;
    for (const site of scenario.sites) {
      for (const d of site.devices) {
        const ids = d.count
          ? Array.from({ length: d.count }, (_, i) => fleetId(d.id, i, d.count as number))
          : [d.id];
        for (const id of ids) {
          const model = MODELS[d.kind];
          const rng = createRng(deriveSeed(opts.seed, `${site.id}/${id}`));
          const params = { utcOffsetMin: site.utcOffsetMin, ...d.params };
          const intervalMs =
            opts.intervalOverrideMs ??
            d.interval ??
            scenario.defaults.intervals[d.kind] ??
            model.defaultIntervalSec * 1000;
          this.byId.set(id, this.slots.length);
          this.slots.push({
            id,
            site: site.id,
            kind: d.kind,
            model,
            transport: d.transport ?? scenario.defaults.transport[d.kind] ?? DEFAULT_TRANSPORT[d.kind],
            intervalMs,
            qos: d.qos ?? scenario.defaults.qos[d.kind] ?? 1,
            topic: `facility/${site.id}/${d.kind}/${id}/telemetry`,
            state: model.init(params, opts.startTime, rng),
            rng,
            lastStepMs: opts.startTime,
            windows: [],
            lastTs: null,
            lastValues: null,
          });
        }
      }
    }
    for (const f of scenario.faults) {
      const slot = this.slot(f.device);
      slot.windows.push({
        fault: f.fault,
        fromMs: opts.startTime + f.at,
        toMs: f.for === undefined ? Infinity : opts.startTime + f.at + f.for,
        manual: false,
      });
    }
    this.due = new Float64Array(this.slots.length);
    this.heap = new DueHeap(this.due);
    this.slots.forEach((s, i) => {
      // Spread first reports over one interval so a fleet does not report in one burst.
      this.due[i] = opts.startTime + Math.floor(s.rng.next() * s.intervalMs);
      this.heap.push(i);
    });
  }

  get size(): number {
    return this.slots.length;
  }

  get now(): number {
    return this.processedMs;
  }

  /** Reports scheduled per simulated second across the fleet. */
  get scheduledPerSimSecond(): number {
    return this.slots.reduce((a, s) => a + 1000 / s.intervalMs, 0);
  }

  /**
   * Emits every report due at or before `toMs`, at most `limit` of them (the rest stay due and
   * come out on the next call, which is how a slow transport shows up as lag, not as loss).
   */
  advanceTo(toMs: number, limit = Infinity): SimMessage[] {
    const out: SimMessage[] = [];
    while (out.length < limit) {
      const i = this.heap.peek();
      if (i === undefined || (this.due[i] as number) > toMs) break;
      this.heap.pop();
      const t = this.due[i] as number;
      out.push(this.report(i, t));
      const s = this.slots[i] as Slot;
      const j = this.jitter > 0 ? 1 + this.jitter * (2 * s.rng.next() - 1) : 1;
      this.due[i] = t + Math.max(1, Math.round(s.intervalMs * j));
      this.heap.push(i);
    }
    const next = this.heap.peek();
    this.processedMs =
      out.length >= limit && next !== undefined ? Math.min(toMs, this.due[next] as number) : toMs;
    return out;
  }

  private report(i: number, t: number): SimMessage {
    const s = this.slots[i] as Slot;
    const faults = this.activeFaultsOf(s, t);
    // A new state object only when the faults changed: at fleet scale the copy per report was
    // measurable garbage, and models never mutate their input.
    if (!sameFaults(s.state.faults, faults)) s.state = { ...s.state, faults };
    const r = s.model.step(s.state, (t - s.lastStepMs) / 1000, t, s.rng);
    s.state = r.state;
    s.lastStepMs = t;
    const silent = faults.length > 0 && faults.includes('silent');
    // Silent devices keep their physics running (a meter keeps counting) but send nothing.
    let values: Values = NO_VALUES;
    let bad: string[] = NO_FAULTS;
    if (!silent) {
      values = roundValues(r.values);
      if (faults.length > 0 && faults.includes('sensor-fault')) {
        const analog = s.model.analogMetrics;
        bad = [...analog];
        values = Object.fromEntries(Object.entries(values).filter(([k]) => !analog.includes(k)));
      }
      s.lastTs = t;
      s.lastValues = values;
    }
    return {
      slot: i,
      device: s.id,
      site: s.site,
      kind: s.kind,
      topic: s.topic,
      qos: s.qos,
      transport: s.transport,
      ts: t,
      values,
      bad,
      silent,
      faults,
    };
  }

  private activeFaultsOf(s: Slot, t: number): string[] {
    if (s.windows.length === 0) return NO_FAULTS;
    s.windows = s.windows.filter((w) => w.toMs > Math.min(t, this.processedMs) || !w.manual);
    const set = new Set<string>();
    for (const w of s.windows) if (w.fromMs <= t && t < w.toMs) set.add(w.fault);
    return set.size === 0 ? NO_FAULTS : [...set].sort();
  }

  private slot(id: string): Slot {
    const i = this.byId.get(id);
    if (i === undefined) throw new EngineError('GW_ERR_SIM_NO_DEVICE', `no device ${id}`);
    return this.slots[i] as Slot;
  }

  /** Starts a fault now (simulated time), for forMs or until stopped. */
  startFault(id: string, fault: string, forMs?: number): void {
    const s = this.slot(id);
    if (!isKnownFault(s.kind, fault))
      throw new EngineError('GW_ERR_SIM_NO_FAULT', `${s.kind} has no fault ${fault}`);
    const from = this.processedMs;
    s.windows.push({
      fault,
      fromMs: from,
      toMs: forMs === undefined ? Infinity : from + forMs,
      manual: true,
    });
  }

  /** Ends one fault, or all faults, of a device from now on; returns how many windows it ended. */
  stopFault(id: string, fault?: string): number {
    const s = this.slot(id);
    let n = 0;
    for (const w of s.windows) {
      if ((fault === undefined || w.fault === fault) && w.toMs > this.processedMs) {
        w.toMs = Math.max(w.fromMs, this.processedMs);
        n++;
      }
    }
    return n;
  }

  faultsOf(id: string): string[] {
    return [...this.activeFaultsOf(this.slot(id), this.processedMs)];
  }

  /** Active and scheduled faults of every device. */
  faultList(): {
    device: string;
    fault: string;
    from: number;
    to: number | null;
    active: boolean;
    manual: boolean;
  }[] {
    const t = this.processedMs;
    return this.slots.flatMap((s) =>
      s.windows
        .filter((w) => w.toMs > t)
        .map((w) => ({
          device: s.id,
          fault: w.fault,
          from: w.fromMs,
          to: Number.isFinite(w.toMs) ? w.toMs : null,
          active: w.fromMs <= t,
          manual: w.manual,
        })),
    );
  }

  /** Polled by /stats and the progress line: counts without building the list (10,000 devices). */
  activeFaultCount(): number {
    const t = this.processedMs;
    let n = 0;
    for (const s of this.slots) for (const w of s.windows) if (w.toMs > t && w.fromMs <= t) n++;
    return n;
  }

  hasDevice(id: string): boolean {
    return this.byId.has(id);
  }

  device(id: string): DeviceInfo {
    return this.info(this.slot(id));
  }

  devices(): DeviceInfo[] {
    return this.slots.map((s) => this.info(s));
  }

  private info(s: Slot): DeviceInfo {
    const p = (s.state as { p?: Record<string, unknown> }).p ?? {};
    const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
    return {
      ratedMaxFlow: num(p.q3Lph) ?? num(p.qmaxM3h),
      registerMax: num(p.registerMax),
      id: s.id,
      site: s.site,
      kind: s.kind,
      transport: s.transport,
      intervalMs: s.intervalMs,
      qos: s.qos,
      topic: s.topic,
      faults: [...this.activeFaultsOf(s, this.processedMs)],
      lastTs: s.lastTs,
      lastValues: s.lastValues,
    };
  }
}

export class EngineError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** `,"key":` for each metric name, built once: payloads are assembled without an object per message. */
const KEY_FRAGMENTS = new Map<string, string>();

function keyFragment(k: string): string {
  let f = KEY_FRAGMENTS.get(k);
  if (f === undefined) {
    // Escape anything outside ASCII so a payload's length is its byte length (the publisher relies
    // on it); metric names are ASCII, so this is JSON.stringify's output in practice.
    f = `,${JSON.stringify(k).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}:`;
    KEY_FRAGMENTS.set(k, f);
  }
  return f;
}

/**
 * The wire payload of CONTRACT.md's flat JSON form: the same text as
 * `JSON.stringify({ ts, ...values })` (with a failed sensor's metrics as 0 and their `quality`), built by concatenation because at fleet scale the spread
 * object and the generic serializer were a visible share of the CPU. Always ASCII.
 */
export function payloadOf(m: SimMessage): string {
  let s = `{"ts":${jsonNumber(m.ts)}`;
  const v = m.values;
  for (const k in v) {
    const x = v[k];
    if (typeof x === 'number') s += keyFragment(k) + jsonNumber(x);
    else if (typeof x === 'boolean') s += keyFragment(k) + (x ? 'true' : 'false');
  }
  const bad = m.bad;
  if (bad.length === 0) return s + '}';
  // A failed sensor reads 0, and says so: the gateway keeps the 0 apart from good values.
  let q = '';
  for (const k of bad) {
    s += keyFragment(k) + '0';
    q += keyFragment(k) + '"bad"';
  }
  return `${s},"quality":{${q.slice(1)}}}`;
}

/** JSON numbers are JavaScript's shortest round-trip form; NaN and ±Infinity become null. */
function jsonNumber(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null';
}
