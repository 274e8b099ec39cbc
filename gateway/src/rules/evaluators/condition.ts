import { severityOf, type RuleChange } from '../types.js';

/**
 * The shared core of boolean rules (state, combined): a condition that holds or not, with an
 * on-delay before raising and an off-delay before clearing.
 */
export interface CondState {
  sev: number;
  holds: boolean;
  /** When the condition started holding; NaN when it does not. */
  since: number;
  clearSince: number;
}

export interface CondParams {
  sev: number;
  onDelayMs: number;
  offDelayMs: number;
}

export function createCondState(): CondState {
  return { sev: 0, holds: false, since: NaN, clearSince: NaN };
}

export function feedCond(
  s: CondState,
  p: CondParams,
  holds: boolean,
  ts: number,
  value: number | boolean | null,
  what: string,
): RuleChange | null {
  if (holds && !s.holds) s.since = ts;
  s.holds = holds;
  return settleCond(s, p, ts, value, what);
}

export function settleCond(
  s: CondState,
  p: CondParams,
  now: number,
  value: number | boolean | null,
  what: string,
): RuleChange | null {
  if (s.holds) {
    s.clearSince = NaN;
    if (s.sev !== 0 || now - s.since < p.onDelayMs) return null;
    s.sev = p.sev;
    const held = p.onDelayMs > 0 ? ` for ${Math.round(p.onDelayMs / 60_000)} min` : '';
    return {
      type: 'raise',
      severity: severityOf(p.sev),
      value,
      ts: s.since + p.onDelayMs,
      message: what + held,
    };
  }
  if (s.sev === 0) return null;
  if (Number.isNaN(s.clearSince)) s.clearSince = now;
  if (now - s.clearSince < p.offDelayMs) return null;
  const at = s.clearSince + p.offDelayMs;
  const sev = s.sev;
  s.sev = 0;
  s.clearSince = NaN;
  return { type: 'clear', severity: severityOf(sev), value, ts: at, message: `${what}: no longer` };
}

export function condPending(s: CondState): boolean {
  return s.holds ? s.sev === 0 : s.sev !== 0;
}
