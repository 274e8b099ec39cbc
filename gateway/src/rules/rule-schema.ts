import { z } from 'zod';
import { METER_CLASSES, RULE_CLASSES, SEVERITIES } from './types.js';

/**
 * One rule's schema (every kind) and an override's. The rules config around them (pack, custom,
 * overrides, with the default pack) is in schema.ts, which re-exports all of this; apart, so the
 * default pack is typed by it without a cycle. Mounted by the gateway config at key `rules`. Every
 * number of the default pack (DOMAIN.md) is a default here; unknown keys are errors; overrides are
 * validated by merging them into the rule they name, so a bad override is reported with its own key
 * path at start-up.
 */

const severity = z.enum(SEVERITIES);
const ruleClass = z.enum(RULE_CLASSES);
const ms = z.number().int().nonnegative();
const metric = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must be a metric name');
const ruleId = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,99}$/, 'must match [a-z0-9][a-z0-9_.-]*');
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM');

export function isValidTimeZone(tz: string): boolean {
  if (tz === 'local') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
const timeZone = z.string().refine(isValidTimeZone, 'must be an IANA time zone or "local"');

const common = {
  id: ruleId,
  description: z.string().optional(),
  /** Device kinds the rule applies to; `*` for every kind. */
  kinds: z.array(z.string().min(1)).min(1),
  class: ruleClass,
  enabled: z.boolean().default(true),
  /** Partial settings merged in for critical assets (stricter thresholds); validated like an override. */
  critical: z.record(z.string(), z.unknown()).optional(),
};

const delays = {
  /** The condition must hold this long before the alarm raises. */
  onDelayMs: ms.default(0),
  /** The condition must be gone this long before the alarm clears. */
  offDelayMs: ms.default(0),
};

export const levelSchema = z.strictObject({
  value: z.number(),
  severity,
  /** Deadband: a raised level clears only once the value is this far back on the good side. */
  hysteresis: z.number().nonnegative().default(0),
  ...delays,
});

export const thresholdRuleSchema = z
  .strictObject({
    ...common,
    kind: z.literal('threshold'),
    metric,
    lowLow: levelSchema.optional(),
    low: levelSchema.optional(),
    high: levelSchema.optional(),
    highHigh: levelSchema.optional(),
  })
  .superRefine((r, ctx) => {
    if (!r.lowLow && !r.low && !r.high && !r.highHigh)
      ctx.addIssue({ code: 'custom', message: 'needs at least one of low, lowLow, high, highHigh' });
    if (r.low && r.lowLow && !(r.lowLow.value < r.low.value))
      ctx.addIssue({ code: 'custom', path: ['lowLow', 'value'], message: 'must be below low.value' });
    if (r.high && r.highHigh && !(r.highHigh.value > r.high.value))
      ctx.addIssue({ code: 'custom', path: ['highHigh', 'value'], message: 'must be above high.value' });
  });

export const rateRuleSchema = z
  .strictObject({
    ...common,
    kind: z.literal('rate'),
    metric,
    /** Rate = change over (up to) this window, expressed per hour. */
    windowMs: z.number().int().positive().default(3_600_000),
    /** Needs at least this much history before a rate is trusted (short spans amplify noise). */
    minSpanMs: ms.default(900_000),
    /** Raise when rising faster than this many units per hour. */
    risePerHour: z.number().positive().optional(),
    /** Raise when falling faster than this many units per hour. */
    fallPerHour: z.number().positive().optional(),
    severity,
    hysteresis: z.number().nonnegative().default(0),
    /** Ring-buffer size per device; samples are thinned to windowMs / maxSamples apart. */
    maxSamples: z.number().int().min(4).max(1024).default(32),
    ...delays,
  })
  .refine((r) => r.risePerHour !== undefined || r.fallPerHour !== undefined, {
    message: 'needs risePerHour or fallPerHour',
  });

export const stateRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('state'),
  metric,
  /** The abnormal value of the boolean metric. */
  when: z.boolean().default(true),
  severity,
  ...delays,
});

export const conditionSchema = z.union([
  z.strictObject({ metric, eq: z.boolean() }),
  z.strictObject({ metric, lt: z.number() }),
  z.strictObject({ metric, gt: z.number() }),
  z.strictObject({
    metric,
    trend: z.enum(['falling', 'rising']),
    windowMs: z.number().int().positive().default(1_800_000),
    minSpanMs: ms.default(600_000),
    /** Rising or falling at least this many units per hour. */
    minPerHour: z.number().positive(),
  }),
]);

export const combinedRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('combined'),
  /** Every condition must hold at once. */
  all: z.array(conditionSchema).min(1).max(8),
  severity,
  ...delays,
});

export const staleRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('stale'),
  /** Offline after this many reporting intervals without a usable reading. */
  intervals: z.number().positive().default(3),
  /**
   * Raise after this many consecutive readings that are not of good quality, bad or uncertain
   * (0: only silence counts). Such readings never reach the other rules.
   */
  badQualityReadings: z.number().int().nonnegative().default(3),
  severity,
});

export const continuousFlowRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('continuous-flow'),
  metric,
  /** A flow at or below this counts as a stop. */
  zeroAt: z.number().nonnegative().default(0),
  /** Raise when no stop was seen for this long. */
  windowMs: z.number().int().positive(),
  severity,
});

export const nightFlowRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('night-flow'),
  metric,
  from: hhmm.default('02:00'),
  to: hhmm.default('04:00'),
  /** IANA zone of the site, or "local" for the gateway's own zone. */
  timeZone: timeZone.default('local'),
  /** Raise when the lowest flow seen during the window stays above this (a leak never stops). */
  above: z.number().nonnegative(),
  /** Fewer readings than this in a window decide nothing. */
  minSamples: z.number().int().min(1).default(2),
  severity,
});

export const ratedFlowRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('rated-flow'),
  metric,
  /** Raise above ratedMaxFlow × factor; devices without a rated flow are skipped. */
  factor: z.number().positive().default(1),
  /** Deadband as a percentage of the limit. */
  hysteresisPct: z.number().nonnegative().max(100).default(5),
  severity,
  ...delays,
});

export const stuckRegisterRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('stuck-register'),
  metric: metric.default('consumption_m3'),
  /** No consumption for this long... */
  windowMs: z
    .number()
    .int()
    .positive()
    .default(7 * 86_400_000),
  /** ...while at least this many other meters of the site consumed in the same window. */
  minPeers: z.number().int().min(1).default(2),
  /** How often a candidate re-counts its peers (bounds the cost on a vacant site). */
  recheckMs: z.number().int().positive().default(3_600_000),
  severity,
});

export const consumptionJumpRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('consumption-jump'),
  metric: metric.default('consumption_m3'),
  /** Raise when the hourly rate exceeds the meter's own mean by this many standard deviations... */
  sigmas: z.number().positive().default(6),
  /** ...and by at least this factor (a meter with a flat history has a tiny deviation). */
  minRatio: z.number().min(1).default(5),
  /** Consumption of one reading below this never counts as a jump (register resolution). */
  minAbsolute: z.number().nonnegative().default(0.01),
  /** Weight of a new reading in the running mean and variance. */
  alpha: z.number().gt(0).lt(1).default(0.02),
  /** Readings learnt before the meter is judged. */
  minSamples: z.number().int().min(2).default(48),
  /**
   * ...over at least this long (default 7 days): a household's use follows the day and the week,
   * and a meter that has only been seen overnight would take its first dinner for a fast meter.
   */
  minHistoryMs: z
    .number()
    .int()
    .nonnegative()
    .default(7 * 86_400_000),
  severity,
});

export const consumptionSlowRuleSchema = z
  .strictObject({
    ...common,
    kind: z.literal('consumption-slow'),
    metric: metric.default('consumption_m3'),
    /** Days of the meter's own history whose median is its baseline. */
    historyDays: z.number().int().min(3).max(31).default(7),
    /** Complete days learnt before the meter is judged. */
    minHistoryDays: z.number().int().min(1).max(31).default(5),
    /** A day below this share of the baseline is low. */
    ratio: z.number().gt(0).lt(1).default(0.3),
    /** Meters whose baseline is below this per day are not judged (too little to tell). */
    minBaseline: z.number().nonnegative().default(0.1),
    /** At least this many other meters of the site had a normal day... */
    minPeers: z.number().int().min(1).default(2),
    /** ...and at least this share of the site's judged meters (a site-wide dip is no fault). */
    peerShare: z.number().min(0).max(1).default(0.75),
    /** A day counts only if the meter reported within this many intervals of both its ends. */
    gapIntervals: z.number().positive().default(3),
    /** IANA zone of the site's day, or "local" for the gateway's own zone. */
    timeZone: timeZone.default('local'),
    severity,
  })
  .refine((r) => r.minHistoryDays <= r.historyDays, {
    path: ['minHistoryDays'],
    message: 'must not exceed historyDays',
  });

const readRateTarget = z.strictObject({
  /** The period: a meter counts as read if it reported within this many days. */
  windowDays: z.number().positive(),
  /** Share of meters that must have reported, 0..1. */
  min: z.number().min(0).max(1),
});

export const readRateRuleSchema = z.strictObject({
  ...common,
  kind: z.literal('read-rate'),
  targets: z
    .strictObject({
      commercial: readRateTarget.default({ windowDays: 30, min: 1 }),
      residential: readRateTarget.default({ windowDays: 30, min: 0.98 }),
      'in-home': readRateTarget.default({ windowDays: 91, min: 0.7 }),
    })
    .prefault({}),
  /** Meters whose registry entry has no meter class. */
  defaultClass: z.enum(METER_CLASSES).default('residential'),
  /** Computed at most this often by tick(); on demand any time. */
  evaluateEveryMs: z.number().int().positive().default(3_600_000),
  severity,
});

export const ruleSchema = z.discriminatedUnion('kind', [
  thresholdRuleSchema,
  rateRuleSchema,
  stateRuleSchema,
  combinedRuleSchema,
  staleRuleSchema,
  continuousFlowRuleSchema,
  nightFlowRuleSchema,
  ratedFlowRuleSchema,
  stuckRegisterRuleSchema,
  consumptionJumpRuleSchema,
  consumptionSlowRuleSchema,
  readRateRuleSchema,
]);

export const overrideSchema = z
  .strictObject({
    /** The rule id the override changes. */
    rule: ruleId,
    /** Every device of this kind (for rules that apply to several kinds, `*` say). */
    kind: z.string().optional(),
    site: z.string().optional(),
    device: z.string().optional(),
    /** true: applies to critical assets only. */
    critical: z.boolean().optional(),
    /** Partial rule settings, merged deeply (a level keeps the keys not given). */
    set: z.record(z.string(), z.unknown()),
  })
  .refine(
    (o) => o.site !== undefined || o.device !== undefined || o.critical !== undefined || o.kind !== undefined,
    { message: 'needs kind, site, device or critical' },
  );

export type RuleDef = z.infer<typeof ruleSchema>;
export type RuleInput = z.input<typeof ruleSchema>;
export type RuleKind = RuleDef['kind'];
export type LevelDef = z.infer<typeof levelSchema>;
export type ThresholdRule = z.infer<typeof thresholdRuleSchema>;
export type RateRule = z.infer<typeof rateRuleSchema>;
export type StateRule = z.infer<typeof stateRuleSchema>;
export type CombinedRule = z.infer<typeof combinedRuleSchema>;
export type ConditionDef = z.infer<typeof conditionSchema>;
export type StaleRule = z.infer<typeof staleRuleSchema>;
export type ContinuousFlowRule = z.infer<typeof continuousFlowRuleSchema>;
export type NightFlowRule = z.infer<typeof nightFlowRuleSchema>;
export type RatedFlowRule = z.infer<typeof ratedFlowRuleSchema>;
export type StuckRegisterRule = z.infer<typeof stuckRegisterRuleSchema>;
export type ConsumptionJumpRule = z.infer<typeof consumptionJumpRuleSchema>;
export type ConsumptionSlowRule = z.infer<typeof consumptionSlowRuleSchema>;
export type ReadRateRule = z.infer<typeof readRateRuleSchema>;
export type OverrideDef = z.infer<typeof overrideSchema>;
