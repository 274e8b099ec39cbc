import type { RatedFlowRule, ThresholdRule } from '../schema.js';
import { layoutOf } from '../state-arena.js';
import type { Evaluator } from '../types.js';
import {
  adoptLevels,
  compileLevels,
  feedLevels,
  levelFields,
  levelsPending,
  settleLevels,
  type LevelParams,
} from './levels.js';

export const thresholdEvaluator: Evaluator<ThresholdRule, LevelParams> = {
  compile: (r) => compileLevels(r.id, r.metric, r.metric, r),
  layout: (p) => layoutOf(levelFields(p)),
  evaluate(st, o, reading, p) {
    const v = reading.fields[p.metric];
    return typeof v === 'number' ? feedLevels(st, o, p, v, reading.ts) : null;
  },
  tick: (st, o, p, now) => (levelsPending(st, o) ? settleLevels(st, o, p, now) : null),
  adopt: adoptLevels,
};

/** The flow a rated-flow rule alarms above: the device's rated maximum times the rule's factor. */
export const ratedFlowLimit = (r: RatedFlowRule, ratedMaxFlow: number): number => ratedMaxFlow * r.factor;

/** A high threshold at the device's own rated maximum flow. */
export const ratedFlowEvaluator: Evaluator<RatedFlowRule, LevelParams> = {
  perDevice: true,
  compile(r, ctx) {
    if (ctx.ratedMaxFlow === undefined) return null;
    const limit = ratedFlowLimit(r, ctx.ratedMaxFlow);
    return compileLevels(r.id, r.metric, `${r.metric} (rated max ${ctx.ratedMaxFlow})`, {
      high: {
        value: limit,
        severity: r.severity,
        hysteresis: (limit * r.hysteresisPct) / 100,
        onDelayMs: r.onDelayMs,
        offDelayMs: r.offDelayMs,
      },
    });
  },
  layout: thresholdEvaluator.layout,
  evaluate: thresholdEvaluator.evaluate,
  tick: thresholdEvaluator.tick!,
  adopt: adoptLevels,
};
