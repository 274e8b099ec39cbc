import type { Reading } from '../core/types.js';
import type { Layout } from './state-arena.js';

/** Alarm severities, lowest first. Index + 1 is the rank kept in rule state (0 = not raised). */
export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Work-order class: drives grouping counts and escalation times downstream. */
export const RULE_CLASSES = ['safety', 'key', 'routine'] as const;
export type RuleClass = (typeof RULE_CLASSES)[number];

export const METER_CLASSES = ['commercial', 'residential', 'in-home'] as const;
export type MeterClass = (typeof METER_CLASSES)[number];

export function severityRank(s: Severity): number {
  return s === 'critical' ? 3 : s === 'warning' ? 2 : 1;
}

export function severityOf(rank: number): Severity {
  return rank >= 3 ? 'critical' : rank === 2 ? 'warning' : 'info';
}

/** What the rules need to know about a device; the registry provides it. */
export interface DeviceFacts {
  site: string;
  device: string;
  kind: string;
  critical: boolean;
  reportIntervalSec: number;
  /** Gas Qmax in m³/h, water Q3 in L/h: the same unit as the kind's flow metric. */
  ratedMaxFlow?: number;
  /** For read-rate targets; meters without one count as the read-rate rule's `defaultClass`. */
  meterClass?: MeterClass;
}

export interface DeviceFactsLookup {
  get(site: string, device: string): DeviceFacts | undefined;
  /** Every known device, so meters that never reported still count against the read rate. */
  list?(): Iterable<DeviceFacts>;
}

export type TransitionType = 'raise' | 'escalate' | 'clear';

/** What an evaluator returns when its rule changes state; the engine adds the device identity. */
export interface RuleChange {
  type: TransitionType;
  severity: Severity;
  value: number | boolean | null;
  /** When the condition was met: for a delayed rule the moment the delay expired, not when it was noticed. */
  ts: number;
  message: string;
}

/** Where every rule state keeps its raised severity rank: 0 = not raised, else severityRank. */
export const SEV = 0;

/**
 * The `clear` of an alarm the rule has raised (its `sev` > 0): resets the rank it kept. Callers
 * check `sev` first, so the message is only built when there is something to clear.
 */
export function clearRaised(
  st: Float64Array,
  o: number,
  value: number | boolean | null,
  ts: number,
  message: string,
): RuleChange {
  const severity = severityOf(st[o + SEV]!);
  st[o + SEV] = 0;
  return { type: 'clear', severity, value, ts, message };
}

export interface Transition extends RuleChange {
  /** `site/device`. */
  deviceKey: string;
  site: string;
  device: string;
  kind: string;
  ruleId: string;
  ruleClass: RuleClass;
  /** The device is a critical asset (lower grouping counts, priority downstream). */
  critical: boolean;
}

export type TransitionListener = (batch: readonly Transition[]) => void;

/**
 * What an evaluator may know about the devices it is bound to: shared by every device with the
 * same facts (and, for peer rules, the same site), so nothing here names one device.
 */
export interface BindCtx {
  reportIntervalMs: number;
  ratedMaxFlow: number | undefined;
  /** Only for rules that compare a device with the others of its site (stuck register, slow meter). */
  peers: PeerGroup | undefined;
}

/** The devices of one site evaluated by one rule, for peer comparisons: their states' offsets. */
export interface PeerGroup {
  /** Offsets in the state arena; each evaluator knows its own rule's layout. */
  members: Set<number>;
}

/**
 * What a tick() returns when it changed the state without a transition (a day rolled over), so
 * the engine saves the device; a tick that changes nothing returns null and costs no save.
 */
export const STATE_CHANGED = 1;
export type StateChanged = typeof STATE_CHANGED;

/**
 * One rule kind. A state is a block of doubles in the engine's state arena (`st`, from offset
 * `o`), laid out as `layout(params)` says. `evaluate` and `tick` change it in place and allocate
 * only when they return a change.
 */
export interface Evaluator<R, P> {
  /** Resolves a (merged) rule for a class of devices; null when it does not apply (no rated flow, say). */
  compile(rule: R, ctx: BindCtx): P | null;
  /** compile() reads device facts (ctx.ratedMaxFlow), so params are compiled per set of facts. */
  perDevice?: boolean;
  /** The state's fields (first `sev`); called once per compiled params. */
  layout(params: P): Layout;
  /** Sets what a fresh state needs beyond its fields' initial values. */
  init?(st: Float64Array, o: number, params: P, ctx: BindCtx, now: number): void;
  /** Re-derives what a kept or restored state takes from the device's facts. */
  attach?(st: Float64Array, o: number, params: P, ctx: BindCtx): void;
  /**
   * Takes over an alarm that is active in the alarm store though the (older) state does not know
   * it raised, after a restart (ADR 0080). Without it the engine sets `sev` to the rank: enough
   * for a rule whose only raised state is `sev`.
   */
  adopt?(st: Float64Array, o: number, params: P, rank: number): void;
  /** The state joins its site's peer group (ctx.peers) while it is bound. */
  peers?: boolean;
  evaluate(
    st: Float64Array,
    o: number,
    reading: Reading,
    params: P,
    now: number,
    ctx: BindCtx,
  ): RuleChange | null;
  /** Time-based part (delays expiring, silence); absent for rules driven by readings alone. */
  tick?(st: Float64Array, o: number, params: P, now: number, ctx: BindCtx): RuleChange | StateChanged | null;
  /**
   * Whether readings that are not of good quality (bad or uncertain) reach this rule. Only the
   * stale rule wants them: a value its source does not vouch for must not raise or clear a
   * threshold (a restarted PLC reports 0 mg/L chlorine as Uncertain until its first scan).
   */
  seesNotGood?: boolean;
}
