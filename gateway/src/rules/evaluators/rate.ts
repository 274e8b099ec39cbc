import type { RateRule } from '../schema.js';
import { layoutOf } from '../state-arena.js';
import type { Evaluator } from '../types.js';
import {
  adoptLevels,
  compileLevels,
  feedLevels,
  levelFields,
  levelsPending,
  levelsSize,
  settleLevels,
  type LevelParams,
} from './levels.js';
import { ringRate } from './ring.js';

interface RateParams extends LevelParams {
  windowMs: number;
  minSpanMs: number;
  maxSamples: number;
  /** Where the ring of samples starts in the state: after the level fields. */
  ring: number;
}

export const rateEvaluator: Evaluator<RateRule, RateParams> = {
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
      ring: levelsSize(l),
    };
  },
  layout: (p) => layoutOf([...levelFields(p), { name: 'ring', type: 'ring', cap: p.maxSamples }]),
  evaluate(st, o, reading, p) {
    const v = reading.fields[p.metric];
    if (typeof v !== 'number') return null;
    const rate = ringRate(st, o + p.ring, p.maxSamples, reading.ts, v, p.windowMs, p.minSpanMs);
    return Number.isNaN(rate) ? null : feedLevels(st, o, p, rate, reading.ts);
  },
  tick: (st, o, p, now) => (levelsPending(st, o) ? settleLevels(st, o, p, now) : null),
  adopt: adoptLevels,
};
