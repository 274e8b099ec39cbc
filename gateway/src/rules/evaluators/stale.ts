import type { StaleRule } from '../schema.js';
import { layoutOf } from '../state-arena.js';
import { SEV, clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';

interface StaleParams {
  intervals: number;
  badN: number;
  sev: number;
}

/** Time of the last reading of good quality (or when the device became known). */
const LAST_GOOD = 1;
/** Consecutive readings that were bad or uncertain. */
const BAD_RUN = 2;

const LAYOUT = layoutOf([
  { name: 'sev', type: 'num', init: 0 },
  { name: 'lastGood', type: 'num', init: NaN, volatile: true },
  { name: 'badRun', type: 'num', init: 0 },
]);

export const staleEvaluator: Evaluator<StaleRule, StaleParams> = {
  seesNotGood: true,
  compile: (r) => ({ intervals: r.intervals, badN: r.badQualityReadings, sev: severityRank(r.severity) }),
  layout: () => LAYOUT,
  init(st, o, _p, _ctx, now) {
    st[o + LAST_GOOD] = now;
  },
  evaluate(st, o, reading, p) {
    if (reading.quality === 'bad' || reading.quality === 'uncertain') {
      const badRun = st[o + BAD_RUN]! + 1;
      st[o + BAD_RUN] = badRun;
      if (st[o + SEV] !== 0 || p.badN === 0 || badRun < p.badN) return null;
      st[o + SEV] = p.sev;
      return {
        type: 'raise',
        severity: severityOf(p.sev),
        value: null,
        ts: reading.ts,
        message: `${badRun} consecutive readings not of good quality (last: ${reading.quality})`,
      };
    }
    st[o + BAD_RUN] = 0;
    if (reading.ts > st[o + LAST_GOOD]!) st[o + LAST_GOOD] = reading.ts;
    if (st[o + SEV] === 0) return null;
    return clearRaised(st, o, null, reading.ts, 'reporting again');
  },
  tick(st, o, p, now, ctx) {
    if (st[o + SEV] !== 0) return null;
    const limit = p.intervals * ctx.reportIntervalMs;
    const lastGood = st[o + LAST_GOOD]!;
    if (now - lastGood < limit) return null;
    st[o + SEV] = p.sev;
    return {
      type: 'raise',
      severity: severityOf(p.sev),
      value: null,
      ts: lastGood + limit,
      message: `no data for ${p.intervals} reporting intervals (${Math.round(limit / 60_000)} min)`,
    };
  },
};
