import type { RateRule } from '../schema.js';
import type { Evaluator } from '../types.js';
import {
  compileLevels,
  createLevelState,
  feedLevels,
  levelsPending,
  settleLevels,
  type LevelParams,
  type LevelState,
} from './levels.js';
import { createRing, ringRate, type Ring } from './ring.js';

interface RateParams extends LevelParams {
  windowMs: number;
  minSpanMs: number;
  maxSamples: number;
}

interface RateState extends LevelState {
  ring: Ring;
}

export const rateEvaluator: Evaluator<RateRule, RateParams, RateState> = {
  compile(r) {
    const lv = (x: number | undefined, sign: number) =>
      x === undefined
        ? undefined
        : {
            value: sign * x,
            severity: r.severity,
            hysteresis: r.hysteresis,
            onDelayMs: r.onDelayMs,
            offDelayMs: r.offDelayMs,
          };
    const l = compileLevels(r.id, r.metric, `${r.metric} change per hour`, {
      high: lv(r.risePerHour, 1),
      low: lv(r.fallPerHour, -1),
    });
    return {
      ruleId: l.ruleId,
      metric: l.metric,
      label: l.label,
      levels: l.levels,
      windowMs: r.windowMs,
      minSpanMs: r.minSpanMs,
      maxSamples: r.maxSamples,
    };
  },
  // A literal, not a spread of createLevelState(): spread clones measured 10x slower to access in V8.
  create: (p) => {
    const l = createLevelState(p);
    return {
      sev: 0,
      lvl: 0,
      held: 0,
      since: l.since,
      clearSince: NaN,
      value: NaN,
      ring: createRing(p.maxSamples),
    };
  },
  evaluate(s, reading, p) {
    const v = reading.fields[p.metric];
    if (typeof v !== 'number') return null;
    const rate = ringRate(s.ring, reading.ts, v, p.windowMs, p.minSpanMs);
    return Number.isNaN(rate) ? null : feedLevels(s, p, rate, reading.ts);
  },
  tick: (s, p, now) => (levelsPending(s) ? settleLevels(s, p, now) : null),
};
