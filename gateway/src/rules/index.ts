export { RuleEngine, type RuleEngineOptions, type RuleEngineStats } from './engine.js';
export { rulesSchema, parseRules, type RulesConfig, type RulesConfigInput, type RuleDef } from './schema.js';
export { DEFAULT_RULE_PACK } from './default-pack.js';
export { computeReadRates, type ReadRateEntry } from './read-rate.js';
export type { EngineSnapshot } from './snapshot.js';
export * from './types.js';
