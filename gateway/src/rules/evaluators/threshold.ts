import type { RatedFlowRule, ThresholdRule } from '../schema.js';
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

export const thresholdEvaluator: Evaluator<ThresholdRule, LevelParams, LevelState> = {
  compile: (r) => compileLevels(r.id, r.metric, r.metric, r),
  create: (p) => createLevelState(p),
  evaluate(s, reading, p) {
    const v = reading.fields[p.metric];
    return typeof v === 'number' ? feedLevels(s, p, v, reading.ts) : null;
  },
  tick: (s, p, now) => (levelsPending(s) ? settleLevels(s, p, now) : null),
};

/** The flow a rated-flow rule alarms above: the device's rated maximum times the rule's factor. */
export const ratedFlowLimit = (r: RatedFlowRule, ratedMaxFlow: number): number => ratedMaxFlow * r.factor;

/** A high threshold at the device's own rated maximum flow. */
export const ratedFlowEvaluator: Evaluator<RatedFlowRule, LevelParams, LevelState> = {
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
  create: (p) => createLevelState(p),
  evaluate: thresholdEvaluator.evaluate,
  tick: thresholdEvaluator.tick!,
};
