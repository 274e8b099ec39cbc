import type { StaleRule } from '../schema.js';
import { clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';

interface StaleParams {
  intervals: number;
  badN: number;
  sev: number;
}

interface StaleState {
  sev: number;
  /** Time of the last reading of good quality (or when the device became known). */
  lastGood: number;
  /** Consecutive readings that were bad or uncertain. */
  badRun: number;
}

export const staleEvaluator: Evaluator<StaleRule, StaleParams, StaleState> = {
  seesNotGood: true,
  compile: (r) => ({ intervals: r.intervals, badN: r.badQualityReadings, sev: severityRank(r.severity) }),
  create: (_p, _ctx, now) => ({ sev: 0, lastGood: now, badRun: 0 }),
  evaluate(s, reading, p) {
    if (reading.quality === 'bad' || reading.quality === 'uncertain') {
      s.badRun++;
      if (s.sev !== 0 || p.badN === 0 || s.badRun < p.badN) return null;
      s.sev = p.sev;
      return {
        type: 'raise',
        severity: severityOf(p.sev),
        value: null,
        ts: reading.ts,
        message: `${s.badRun} consecutive readings not of good quality (last: ${reading.quality})`,
      };
    }
    s.badRun = 0;
    if (reading.ts > s.lastGood) s.lastGood = reading.ts;
    if (s.sev === 0) return null;
    return clearRaised(s, null, reading.ts, 'reporting again');
  },
  tick(s, p, now, ctx) {
    if (s.sev !== 0) return null;
    const limit = p.intervals * ctx.reportIntervalMs;
    if (now - s.lastGood < limit) return null;
    s.sev = p.sev;
    return {
      type: 'raise',
      severity: severityOf(p.sev),
      value: null,
      ts: s.lastGood + limit,
      message: `no data for ${p.intervals} reporting intervals (${Math.round(limit / 60_000)} min)`,
    };
  },
};
