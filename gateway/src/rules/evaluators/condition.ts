import type { FieldSpec } from '../state-arena.js';
import { SEV, severityOf, type RuleChange } from '../types.js';

/**
 * The shared core of boolean rules (state, combined): a condition that holds or not, with an
 * on-delay before raising and an off-delay before clearing.
 */

/** 1 while the condition holds. */
const HOLDS = 1;
/** When the condition started holding; NaN when it does not. */
const SINCE = 2;
const CLEAR = 3;
/** Where a rule's own fields start, after the condition's. */
export const COND_SIZE = 4;

export const condFields = (): FieldSpec[] => [
  { name: 'sev', type: 'num', init: 0 },
  { name: 'holds', type: 'bool' },
  { name: 'since', type: 'num', init: NaN },
  { name: 'clearSince', type: 'num', init: NaN },
];

export interface CondParams {
  sev: number;
  onDelayMs: number;
  offDelayMs: number;
}

export function feedCond(
  st: Float64Array,
  o: number,
  p: CondParams,
  holds: boolean,
  ts: number,
  value: number | boolean | null,
  what: string,
): RuleChange | null {
  if (holds && st[o + HOLDS] === 0) st[o + SINCE] = ts;
  st[o + HOLDS] = holds ? 1 : 0;
  return settleCond(st, o, p, ts, value, what);
}

export function settleCond(
  st: Float64Array,
  o: number,
  p: CondParams,
  now: number,
  value: number | boolean | null,
  what: string,
): RuleChange | null {
  const sev = st[o + SEV]!;
  if (st[o + HOLDS] !== 0) {
    st[o + CLEAR] = NaN;
    const since = st[o + SINCE]!;
    if (sev !== 0 || now - since < p.onDelayMs) return null;
    st[o + SEV] = p.sev;
    const held = p.onDelayMs > 0 ? ` for ${Math.round(p.onDelayMs / 60_000)} min` : '';
    return {
      type: 'raise',
      severity: severityOf(p.sev),
      value,
      ts: since + p.onDelayMs,
      message: what + held,
    };
  }
  if (sev === 0) return null;
  let clearSince = st[o + CLEAR]!;
  if (Number.isNaN(clearSince)) st[o + CLEAR] = clearSince = now;
  if (now - clearSince < p.offDelayMs) return null;
  st[o + SEV] = 0;
  st[o + CLEAR] = NaN;
  return {
    type: 'clear',
    severity: severityOf(sev),
    value,
    ts: clearSince + p.offDelayMs,
    message: `${what}: no longer`,
  };
}

export function condPending(st: Float64Array, o: number): boolean {
  return st[o + HOLDS] !== 0 ? st[o + SEV] === 0 : st[o + SEV] !== 0;
}
