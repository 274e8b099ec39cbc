import type { StateRule } from '../schema.js';
import { layoutOf } from '../state-arena.js';
import { severityRank, type Evaluator } from '../types.js';
import { COND_SIZE, condFields, condPending, feedCond, settleCond, type CondParams } from './condition.js';

interface StateParams extends CondParams {
  metric: string;
  when: boolean;
  what: string;
}

/** Last value as 1/0 (-1: none yet). */
const LAST = COND_SIZE;

export const stateEvaluator: Evaluator<StateRule, StateParams> = {
  compile: (r) => ({
    metric: r.metric,
    when: r.when,
    sev: severityRank(r.severity),
    onDelayMs: r.onDelayMs,
    offDelayMs: r.offDelayMs,
    what: r.description ?? `${r.metric} is ${r.when}`,
  }),
  layout: () => layoutOf([...condFields(), { name: 'last', type: 'num', init: -1, volatile: true }]),
  evaluate(st, o, reading, p) {
    const v = reading.fields[p.metric];
    if (v === undefined) return null;
    // Devices sometimes send 0/1 for a boolean; anything non-zero is true.
    const b = typeof v === 'boolean' ? v : v !== 0;
    st[o + LAST] = b ? 1 : 0;
    return feedCond(st, o, p, b === p.when, reading.ts, b, p.what);
  },
  tick: (st, o, p, now) =>
    condPending(st, o) ? settleCond(st, o, p, now, st[o + LAST] === 1, p.what) : null,
};
