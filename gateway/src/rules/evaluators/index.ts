import type { RuleDef, RuleKind } from '../schema.js';
import type { Evaluator } from '../types.js';
import { combinedEvaluator } from './combined.js';
import { consumptionJumpEvaluator } from './consumption-jump.js';
import { consumptionSlowEvaluator } from './consumption-slow.js';
import { continuousFlowEvaluator } from './continuous-flow.js';
import { nightFlowEvaluator } from './night-flow.js';
import { rateEvaluator } from './rate.js';
import { staleEvaluator } from './stale.js';
import { stateEvaluator } from './state.js';
import { stuckRegisterEvaluator } from './stuck-register.js';
import { ratedFlowEvaluator, thresholdEvaluator } from './threshold.js';

/** Evaluators seen through the engine: params and state are opaque to it. */
export type AnyEvaluator = Evaluator<RuleDef, unknown>;

const as = <R, P>(e: Evaluator<R, P>) => e as unknown as AnyEvaluator;

/** One line per rule kind. Read rate is computed across devices by the engine, not per device. */
export const EVALUATORS: Record<Exclude<RuleKind, 'read-rate'>, AnyEvaluator> = {
  threshold: as(thresholdEvaluator),
  rate: as(rateEvaluator),
  state: as(stateEvaluator),
  combined: as(combinedEvaluator),
  stale: as(staleEvaluator),
  'continuous-flow': as(continuousFlowEvaluator),
  'night-flow': as(nightFlowEvaluator),
  'rated-flow': as(ratedFlowEvaluator),
  'stuck-register': as(stuckRegisterEvaluator),
  'consumption-jump': as(consumptionJumpEvaluator),
  'consumption-slow': as(consumptionSlowEvaluator),
};
