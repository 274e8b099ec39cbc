import type { LevelDef } from '../schema.js';
import { severityOf, severityRank, type RuleChange } from '../types.js';

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

export interface LevelState {
  sev: number;
  /** Index + 1 of the level that set `sev`; 0 when not raised. */
  lvl: number;
  /** Bit i: level i currently holds (deadband applied). */
  held: number;
  /** Per level: when it started holding. */
  since: number[];
  /** When the last level stopped holding while raised; NaN otherwise. */
  clearSince: number;
  value: number;
}

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

export function createLevelState(p: LevelParams): LevelState {
  return { sev: 0, lvl: 0, held: 0, since: p.levels.map(() => NaN), clearSince: NaN, value: NaN };
}

/** Feeds one value; returns a change or null. Allocation-free unless something changes. */
export function feedLevels(s: LevelState, p: LevelParams, v: number, ts: number): RuleChange | null {
  const levels = p.levels;
  let held = 0;
  for (let i = 0; i < levels.length; i++) {
    const L = levels[i]!;
    const bit = 1 << i;
    const was = (s.held & bit) !== 0;
    const holds =
      L.dir > 0 ? v > (was ? L.value - L.hysteresis : L.value) : v < (was ? L.value + L.hysteresis : L.value);
    if (holds) {
      held |= bit;
      if (!was) s.since[i] = ts;
    }
  }
  s.held = held;
  s.value = v;
  return settleLevels(s, p, ts);
}

/** Applies delays at time `now`: used after a value and by tick(). */
export function settleLevels(s: LevelState, p: LevelParams, now: number): RuleChange | null {
  const levels = p.levels;
  const held = s.held;
  if (held !== 0) {
    let best = -1;
    for (let i = 0; i < levels.length; i++) {
      if ((held & (1 << i)) !== 0 && now - s.since[i]! >= levels[i]!.onDelayMs) best = i;
    }
    // Something abnormal is present (even if still within its on-delay): the alarm is not clearing.
    s.clearSince = NaN;
    if (best < 0) return null;
    const L = levels[best]!;
    if (L.sev <= s.sev) return null;
    const type = s.sev === 0 ? 'raise' : 'escalate';
    s.sev = L.sev;
    s.lvl = best + 1;
    const at = s.since[best]! + L.onDelayMs;
    return {
      type,
      severity: severityOf(L.sev),
      value: s.value,
      ts: at,
      message: `${p.label} ${fmt(s.value)} ${L.dir > 0 ? 'above' : 'below'} ${L.name} limit ${fmt(L.value)}`,
    };
  }
  if (s.sev === 0) return null;
  if (Number.isNaN(s.clearSince)) s.clearSince = now;
  const L = levels[s.lvl - 1]!;
  if (now - s.clearSince < L.offDelayMs) return null;
  const at = s.clearSince + L.offDelayMs;
  const sev = s.sev;
  s.sev = 0;
  s.lvl = 0;
  s.clearSince = NaN;
  return {
    type: 'clear',
    severity: severityOf(sev),
    value: s.value,
    ts: at,
    message: `${p.label} ${fmt(s.value)} back within ${L.name} limit ${fmt(L.value)}`,
  };
}

/** Whether tick() can change anything: a delay is running. */
export function levelsPending(s: LevelState): boolean {
  return s.held !== 0 ? true : s.sev !== 0;
}

export function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}
