import type { ContinuousFlowRule } from '../schema.js';
import { clearRaised, severityOf, severityRank, type Evaluator } from '../types.js';
import { fmt } from './levels.js';

interface ContinuousFlowParams {
  metric: string;
  zeroAt: number;
  windowMs: number;
  sev: number;
}

interface ContinuousFlowState {
  sev: number;
  /** Last reading with no flow; the first reading when none was seen yet (history before is unknown). */
  lastZero: number;
  lastTs: number;
  flowing: boolean;
  value: number;
}

/** A device silent for longer than this many intervals proves nothing about flow; the stale rule speaks. */
const MAX_SILENT_INTERVALS = 3;

function raise(s: ContinuousFlowState, p: ContinuousFlowParams) {
  s.sev = p.sev;
  return {
    type: 'raise' as const,
    severity: severityOf(p.sev),
    value: s.value,
    ts: s.lastZero + p.windowMs,
    message: `flow never stopped for ${fmt(p.windowMs / 3_600_000)} h (${p.metric} ${fmt(s.value)})`,
  };
}

export const continuousFlowEvaluator: Evaluator<
  ContinuousFlowRule,
  ContinuousFlowParams,
  ContinuousFlowState
> = {
  compile: (r) => ({
    metric: r.metric,
    zeroAt: r.zeroAt,
    windowMs: r.windowMs,
    sev: severityRank(r.severity),
  }),
  create: () => ({ sev: 0, lastZero: NaN, lastTs: NaN, flowing: false, value: NaN }),
  evaluate(s, reading, p) {
    const v = reading.fields[p.metric];
    if (typeof v !== 'number') return null;
    const ts = reading.ts;
    s.lastTs = ts;
    s.value = v;
    if (Number.isNaN(s.lastZero)) s.lastZero = ts;
    if (v <= p.zeroAt) {
      s.lastZero = ts;
      s.flowing = false;
      if (s.sev === 0) return null;
      return clearRaised(s, v, ts, `${p.metric} stopped`);
    }
    s.flowing = true;
    return s.sev === 0 && ts - s.lastZero >= p.windowMs ? raise(s, p) : null;
  },
  tick(s, p, now, ctx) {
    if (s.sev !== 0 || !s.flowing || now - s.lastZero < p.windowMs) return null;
    if (now - s.lastTs > MAX_SILENT_INTERVALS * ctx.reportIntervalMs) return null;
    return raise(s, p);
  },
};
