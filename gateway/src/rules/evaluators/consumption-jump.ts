import type { ConsumptionJumpRule } from '../schema.js';
import { clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';
import { fmt } from './levels.js';

interface JumpParams {
  metric: string;
  sigmas: number;
  minRatio: number;
  minAbsolute: number;
  alpha: number;
  minSamples: number;
  minHistoryMs: number;
  sev: number;
}

interface JumpState {
  sev: number;
  n: number;
  /** Exponentially weighted mean and variance of consumption per hour. */
  mean: number;
  variance: number;
  lastTs: number;
  /** Time of the first reading learnt: the history must span minHistoryMs before judging. */
  first: number;
}

export const consumptionJumpEvaluator: Evaluator<ConsumptionJumpRule, JumpParams, JumpState> = {
  compile: (r) => ({
    metric: r.metric,
    sigmas: r.sigmas,
    minRatio: r.minRatio,
    minAbsolute: r.minAbsolute,
    alpha: r.alpha,
    minSamples: r.minSamples,
    minHistoryMs: r.minHistoryMs,
    sev: severityRank(r.severity),
  }),
  create: () => ({ sev: 0, n: 0, mean: 0, variance: 0, lastTs: NaN, first: NaN }),
  evaluate(s, reading, p) {
    const c = reading.fields[p.metric];
    if (typeof c !== 'number') return null;
    const ts = reading.ts;
    const dt = ts - s.lastTs;
    s.lastTs = ts;
    if (!(dt > 0)) return null;
    const rate = (c / dt) * 3_600_000;
    // A state restored from before `first` existed starts its history window now.
    if (!(s.first <= ts)) s.first = ts;
    if (s.n >= p.minSamples && ts - s.first >= p.minHistoryMs) {
      const limit = Math.max(s.mean + p.sigmas * Math.sqrt(s.variance), s.mean * p.minRatio);
      if (rate > limit && c > p.minAbsolute) {
        // An outlier is not learnt, or a fast meter would soon look normal to itself.
        if (s.sev !== 0) return null;
        s.sev = p.sev;
        return {
          type: 'raise',
          severity: severityOf(p.sev),
          value: c,
          ts,
          message: `consumption ${fmt(rate)} per hour, usual ${fmt(s.mean)}: far outside the meter's history`,
        };
      }
    }
    // Warm-up uses the plain mean so the first readings do not dominate for long.
    const a = Math.max(p.alpha, 1 / (s.n + 1));
    const diff = rate - s.mean;
    const inc = a * diff;
    s.mean += inc;
    s.variance = (1 - a) * (s.variance + diff * inc);
    s.n++;
    if (s.sev === 0) return null;
    return clearRaised(s, c, ts, 'consumption back within history');
  },
};
