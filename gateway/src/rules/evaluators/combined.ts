import type { CombinedRule } from '../schema.js';
import { layoutOf, ringSize } from '../state-arena.js';
import { severityRank, type Evaluator } from '../types.js';
import { COND_SIZE, condFields, condPending, feedCond, settleCond, type CondParams } from './condition.js';
import { ringRate } from './ring.js';

const EQ = 0;
const LT = 1;
const GT = 2;
const TREND = 3;

interface CompiledCond {
  metric: string;
  op: number;
  /** eq: 1/0; lt/gt: the limit; trend: signed minimum rate per hour (negative = falling). */
  x: number;
  windowMs: number;
  minSpanMs: number;
  /** Where the condition's ring starts in the state for a trend, -1 otherwise. */
  ring: number;
}

interface CombinedParams extends CondParams {
  conds: CompiledCond[];
  rings: number;
  what: string;
}

/** After the condition's fields: each condition's latest value (a trend's: rate per hour); NaN = unknown. */
const VALS = COND_SIZE;
const TREND_SAMPLES = 16;

export const combinedEvaluator: Evaluator<CombinedRule, CombinedParams> = {
  compile(r) {
    let rings = 0;
    const conds = r.all.map((c): CompiledCond => {
      const plain = (op: number, x: number): CompiledCond => ({
        metric: c.metric,
        op,
        x,
        windowMs: 0,
        minSpanMs: 0,
        ring: -1,
      });
      if ('eq' in c) return plain(EQ, c.eq ? 1 : 0);
      if ('lt' in c) return plain(LT, c.lt);
      if ('gt' in c) return plain(GT, c.gt);
      return {
        metric: c.metric,
        op: TREND,
        x: c.trend === 'falling' ? -c.minPerHour : c.minPerHour,
        windowMs: c.windowMs,
        minSpanMs: c.minSpanMs,
        ring: VALS + r.all.length + ringSize(TREND_SAMPLES) * rings++,
      };
    });
    return {
      conds,
      rings,
      sev: severityRank(r.severity),
      onDelayMs: r.onDelayMs,
      offDelayMs: r.offDelayMs,
      what: r.description ?? r.id,
    };
  },
  layout: (p) =>
    layoutOf([
      ...condFields(),
      { name: 'vals', type: 'nums', n: p.conds.length, volatile: true },
      { name: 'rings', type: 'rings', n: p.rings, cap: TREND_SAMPLES },
    ]),
  evaluate(st, o, reading, p) {
    const conds = p.conds;
    let touched = false;
    for (let i = 0; i < conds.length; i++) {
      const c = conds[i]!;
      const raw = reading.fields[c.metric];
      if (raw === undefined) continue;
      touched = true;
      const v = typeof raw === 'boolean' ? (raw ? 1 : 0) : raw;
      if (c.op === TREND) {
        const rate = ringRate(st, o + c.ring, TREND_SAMPLES, reading.ts, v, c.windowMs, c.minSpanMs);
        if (!Number.isNaN(rate)) st[o + VALS + i] = rate;
      } else st[o + VALS + i] = v;
    }
    if (!touched) return null;
    let holds = true;
    for (let i = 0; i < conds.length && holds; i++) {
      const c = conds[i]!;
      const v = st[o + VALS + i]!;
      // NaN (unknown) fails every comparison, so an unknown metric never completes the condition.
      if (c.op === EQ) holds = v === c.x;
      else if (c.op === LT) holds = v < c.x;
      else if (c.op === GT) holds = v > c.x;
      else holds = c.x < 0 ? v <= c.x : v >= c.x;
    }
    return feedCond(st, o, p, holds, reading.ts, null, p.what);
  },
  tick: (st, o, p, now) => (condPending(st, o) ? settleCond(st, o, p, now, null, p.what) : null),
};
