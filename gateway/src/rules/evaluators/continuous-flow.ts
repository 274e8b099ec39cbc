import type { ContinuousFlowRule } from '../schema.js';
import { layoutOf } from '../state-arena.js';
import { SEV, clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';
import { fmt } from './levels.js';

interface ContinuousFlowParams {
  metric: string;
  zeroAt: number;
  windowMs: number;
  sev: number;
}

/** Last reading with no flow; the first reading when none was seen yet (history before is unknown). */
const LAST_ZERO = 1;
const LAST_TS = 2;
const FLOWING = 3;
const VALUE = 4;

const LAYOUT = layoutOf([
  { name: 'sev', type: 'num', init: 0 },
  { name: 'lastZero', type: 'num', init: NaN, volatile: true },
  { name: 'lastTs', type: 'num', init: NaN, volatile: true },
  { name: 'flowing', type: 'bool' },
  { name: 'value', type: 'num', init: NaN, volatile: true },
]);

/** A device silent for longer than this many intervals proves nothing about flow; the stale rule speaks. */
const MAX_SILENT_INTERVALS = 3;

function raise(st: Float64Array, o: number, p: ContinuousFlowParams) {
  st[o + SEV] = p.sev;
  const value = st[o + VALUE]!;
  return {
    type: 'raise' as const,
    severity: severityOf(p.sev),
    value,
    ts: st[o + LAST_ZERO]! + p.windowMs,
    message: `flow never stopped for ${fmt(p.windowMs / 3_600_000)} h (${p.metric} ${fmt(value)})`,
  };
}

export const continuousFlowEvaluator: Evaluator<ContinuousFlowRule, ContinuousFlowParams> = {
  compile: (r) => ({
    metric: r.metric,
    zeroAt: r.zeroAt,
    windowMs: r.windowMs,
    sev: severityRank(r.severity),
  }),
  layout: () => LAYOUT,
  evaluate(st, o, reading, p) {
    const v = reading.fields[p.metric];
    if (typeof v !== 'number') return null;
    const ts = reading.ts;
    st[o + LAST_TS] = ts;
    st[o + VALUE] = v;
    if (Number.isNaN(st[o + LAST_ZERO])) st[o + LAST_ZERO] = ts;
    if (v <= p.zeroAt) {
      st[o + LAST_ZERO] = ts;
      st[o + FLOWING] = 0;
      if (st[o + SEV] === 0) return null;
      return clearRaised(st, o, v, ts, `${p.metric} stopped`);
    }
    st[o + FLOWING] = 1;
    return st[o + SEV] === 0 && ts - st[o + LAST_ZERO]! >= p.windowMs ? raise(st, o, p) : null;
  },
  tick(st, o, p, now, ctx) {
    if (st[o + SEV] !== 0 || st[o + FLOWING] === 0 || now - st[o + LAST_ZERO]! < p.windowMs) return null;
    if (now - st[o + LAST_TS]! > MAX_SILENT_INTERVALS * ctx.reportIntervalMs) return null;
    return raise(st, o, p);
  },
};
