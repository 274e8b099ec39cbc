import type { LevelDef } from '../schema.js';
import type { FieldSpec } from '../state-arena.js';
import { SEV, severityOf, severityRank, type RuleChange } from '../types.js';

/**
 * The shared core of every analog rule (threshold, rate of change, rated flow): up to four levels,
 * each with its own deadband and delays, folded into ONE alarm whose severity is that of the worst
 * level held. A level that stops holding while a worse one was raised does not lower the alarm:
 * severity only rises while active, and the alarm clears when no level holds any more.
 */

/** The levels of an analog rule, from the lowest limit to the highest. */
export const LEVEL_NAMES = ['lowLow', 'low', 'high', 'highHigh'] as const;
export type LevelName = (typeof LEVEL_NAMES)[number];

export interface CompiledLevel {
  name: LevelName;
  value: number;
  /** +1: abnormal above value; -1: abnormal below. */
  dir: 1 | -1;
  sev: number;
  hysteresis: number;
  onDelayMs: number;
  offDelayMs: number;
}

export interface LevelParams {
  ruleId: string;
  metric: string;
  /** What the value is, for messages ("free_chlorine_mgl", "temperature_c rate per hour"). */
  label: string;
  /** Sorted by severity, mildest first, so the last level whose delay elapsed wins. */
  levels: CompiledLevel[];
}

/** A level state's fields: `since` holds, per level, when it started holding. */
const LVL = 1;
/** Bit i: level i currently holds (deadband applied). */
const HELD = 2;
/** When the last level stopped holding while raised; NaN otherwise. */
const CLEAR = 3;
const VALUE = 4;
const SINCE = 5;

/** The fields of a level state; a rule that keeps more (rate: its ring) adds them after these. */
export function levelFields(p: LevelParams): FieldSpec[] {
  return [
    { name: 'sev', type: 'num', init: 0 },
    { name: 'lvl', type: 'num', init: 0 },
    { name: 'held', type: 'num', init: 0 },
    { name: 'clearSince', type: 'num', init: NaN },
    { name: 'value', type: 'num', init: NaN, volatile: true },
    { name: 'since', type: 'nums', n: p.levels.length },
  ];
}

/** Doubles a level state takes: where a rule's own fields start. */
export const levelsSize = (p: LevelParams): number => SINCE + p.levels.length;

export function compileLevels(
  ruleId: string,
  metric: string,
  label: string,
  defs: Partial<Record<LevelName, LevelDef | undefined>>,
): LevelParams {
  const levels: CompiledLevel[] = [];
  for (const name of LEVEL_NAMES) {
    const d = defs[name];
    if (!d) continue;
    levels.push({
      name,
      value: d.value,
      dir: name === 'low' || name === 'lowLow' ? -1 : 1,
      sev: severityRank(d.severity),
      hysteresis: d.hysteresis,
      onDelayMs: d.onDelayMs,
      offDelayMs: d.offDelayMs,
    });
  }
  levels.sort((a, b) => a.sev - b.sev);
  return { ruleId, metric, label, levels };
}

/** Feeds one value; returns a change or null. Allocation-free unless something changes. */
export function feedLevels(
  st: Float64Array,
  o: number,
  p: LevelParams,
  v: number,
  ts: number,
): RuleChange | null {
  const levels = p.levels;
  const was = st[o + HELD]!;
  let held = 0;
  for (let i = 0; i < levels.length; i++) {
    const L = levels[i]!;
    const bit = 1 << i;
    const had = (was & bit) !== 0;
    const holds =
      L.dir > 0 ? v > (had ? L.value - L.hysteresis : L.value) : v < (had ? L.value + L.hysteresis : L.value);
    if (holds) {
      held |= bit;
      if (!had) st[o + SINCE + i] = ts;
    }
  }
  st[o + HELD] = held;
  st[o + VALUE] = v;
  return settleLevels(st, o, p, ts);
}

/** Applies delays at time `now`: used after a value and by tick(). */
export function settleLevels(st: Float64Array, o: number, p: LevelParams, now: number): RuleChange | null {
  const levels = p.levels;
  const held = st[o + HELD]!;
  const sev = st[o + SEV]!;
  if (held !== 0) {
    let best = -1;
    for (let i = 0; i < levels.length; i++) {
      if ((held & (1 << i)) !== 0 && now - st[o + SINCE + i]! >= levels[i]!.onDelayMs) best = i;
    }
    // Something abnormal is present (even if still within its on-delay): the alarm is not clearing.
    st[o + CLEAR] = NaN;
    if (best < 0) return null;
    const L = levels[best]!;
    if (L.sev <= sev) return null;
    const type = sev === 0 ? 'raise' : 'escalate';
    st[o + SEV] = L.sev;
    st[o + LVL] = best + 1;
    const value = st[o + VALUE]!;
    return {
      type,
      severity: severityOf(L.sev),
      value,
      ts: st[o + SINCE + best]! + L.onDelayMs,
      message: `${p.label} ${fmt(value)} ${L.dir > 0 ? 'above' : 'below'} ${L.name} limit ${fmt(L.value)}`,
    };
  }
  if (sev === 0) return null;
  let clearSince = st[o + CLEAR]!;
  if (Number.isNaN(clearSince)) st[o + CLEAR] = clearSince = now;
  const L = levels[st[o + LVL]! - 1]!;
  if (now - clearSince < L.offDelayMs) return null;
  st[o + SEV] = 0;
  st[o + LVL] = 0;
  st[o + CLEAR] = NaN;
  const value = st[o + VALUE]!;
  return {
    type: 'clear',
    severity: severityOf(sev),
    value,
    ts: clearSince + L.offDelayMs,
    message: `${p.label} ${fmt(value)} back within ${L.name} limit ${fmt(L.value)}`,
  };
}

/**
 * An alarm raised before a restart, with severity `rank`, that the restored state does not know of:
 * the state takes the level of that severity (the worst at or below it), so it clears by that
 * level's off-delay and does not raise the same alarm again.
 */
export function adoptLevels(st: Float64Array, o: number, p: LevelParams, rank: number): void {
  let at = 0;
  for (let i = 0; i < p.levels.length; i++) if (p.levels[i]!.sev <= rank) at = i;
  st[o + SEV] = rank;
  st[o + LVL] = p.levels.length ? at + 1 : 0;
}

/** Whether tick() can change anything: a delay is running. */
export function levelsPending(st: Float64Array, o: number): boolean {
  return st[o + HELD] !== 0 || st[o + SEV] !== 0;
}

export function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}
