import type { ConsumptionJumpRule } from '../schema.js';
import { layoutOf } from '../state-arena.js';
import { SEV, clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';
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

const N = 1;
/** Exponentially weighted mean and variance of consumption per hour. */
const MEAN = 2;
const VARIANCE = 3;
const LAST_TS = 4;
/** Time of the first reading learnt: the history must span minHistoryMs before judging. */
const FIRST = 5;

const LAYOUT = layoutOf([
  { name: 'sev', type: 'num', init: 0 },
  { name: 'n', type: 'num', init: 0, volatile: true },
  { name: 'mean', type: 'num', init: 0, volatile: true },
  { name: 'variance', type: 'num', init: 0, volatile: true },
  { name: 'lastTs', type: 'num', init: NaN, volatile: true },
  { name: 'first', type: 'num', init: NaN },
]);

export const consumptionJumpEvaluator: Evaluator<ConsumptionJumpRule, JumpParams> = {
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
  layout: () => LAYOUT,
  evaluate(st, o, reading, p) {
    const c = reading.fields[p.metric];
    if (typeof c !== 'number') return null;
    const ts = reading.ts;
    const dt = ts - st[o + LAST_TS]!;
    st[o + LAST_TS] = ts;
    if (!(dt > 0)) return null;
    const rate = (c / dt) * 3_600_000;
    // A state restored from before `first` existed starts its history window now.
    if (!(st[o + FIRST]! <= ts)) st[o + FIRST] = ts;
    const n = st[o + N]!;
    const mean = st[o + MEAN]!;
    const variance = st[o + VARIANCE]!;
    if (n >= p.minSamples && ts - st[o + FIRST]! >= p.minHistoryMs) {
      const limit = Math.max(mean + p.sigmas * Math.sqrt(variance), mean * p.minRatio);
      if (rate > limit && c > p.minAbsolute) {
        // An outlier is not learnt, or a fast meter would soon look normal to itself.
        if (st[o + SEV] !== 0) return null;
        st[o + SEV] = p.sev;
        return {
          type: 'raise',
          severity: severityOf(p.sev),
          value: c,
          ts,
          message: `consumption ${fmt(rate)} per hour, usual ${fmt(mean)}: far outside the meter's history`,
        };
      }
    }
    // Warm-up uses the plain mean so the first readings do not dominate for long.
    const a = Math.max(p.alpha, 1 / (n + 1));
    const diff = rate - mean;
    const inc = a * diff;
    st[o + MEAN] = mean + inc;
    st[o + VARIANCE] = (1 - a) * (variance + diff * inc);
    st[o + N] = n + 1;
    if (st[o + SEV] === 0) return null;
    return clearRaised(st, o, c, ts, 'consumption back within history');
  },
};
