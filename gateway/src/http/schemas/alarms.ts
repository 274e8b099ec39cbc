import { z } from 'zod';
import { id, isoTime, metricValue } from './common.js';
import { named, open } from './registry.js';

export const severityEnum = z.enum(['info', 'warning', 'critical']);
export const alarmStateEnum = z.enum([
  'active-unacknowledged',
  'active-acknowledged',
  'cleared-unacknowledged',
  'cleared',
]);

/** An alarm (CONTRACT.md), times in RFC 3339. */
export const alarmSchema = named(
  open({
    id: z.string(),
    device: z.string(),
    site: z.string(),
    kind: z.string(),
    rule: z.string(),
    class: z.enum(['safety', 'key', 'routine']),
    severity: severityEnum,
    state: alarmStateEnum,
    value: metricValue.nullable(),
    message: z.string(),
    raisedAt: isoTime,
    clearedAt: isoTime.nullable(),
    acknowledgedAt: isoTime.nullable(),
    acknowledgedBy: z.string().nullable(),
    ackNote: z.string().nullable(),
    incidentId: z.string().nullable(),
    shelved: z.boolean(),
    /** Raised inside a maintenance window: recorded, no ticket, nobody paged (docs/maintenance-windows.md). */
    suppressed: z.boolean().optional(),
    windowId: z.string().nullable().optional(),
    critical: z.boolean(),
  }),
  'Alarm',
);

export const alarmEventSchema = open({
  type: z.string(),
  ts: isoTime.nullable(),
  severity: z.string(),
  state: z.string(),
  user: z.string().nullable(),
  userSubject: z
    .string()
    .nullable()
    .describe("SSO: the identity provider's subject (`<iss>#<sub>`) beside the name; null otherwise"),
  note: z.string().nullable(),
  shelved: z.boolean(),
});
export const alarmDetailSchema = alarmSchema.extend({ history: z.array(alarmEventSchema) });

export const shelfSchema = named(
  z.object({
    id: z.string(),
    site: z.string().nullable(),
    device: z.string().nullable(),
    rule: z.string().nullable(),
    from: isoTime.nullable(),
    until: isoTime.nullable(),
    user: z.string(),
    userSubject: z
      .string()
      .nullable()
      .describe("SSO: the identity provider's subject (`<iss>#<sub>`) beside the name; null otherwise"),
    reason: z.string(),
    createdAt: isoTime.nullable(),
    endedAt: isoTime.nullable(),
    endedBy: z.string().nullable(),
    endedBySubject: z.string().nullable(),
  }),
  'Shelf',
  'Alarms of a site, device and/or rule kept quiet until a time',
);

export const incidentSchema = open({
  id: z.string(),
  site: z.string(),
  rule: z.string(),
  class: z.string(),
  openedAt: isoTime.nullable(),
  lastAlarmAt: isoTime.nullable(),
  alarmCount: z.number(),
  state: z.enum(['open', 'closed']),
  closedAt: isoTime.nullable(),
});

export const alarmListQuery = z.strictObject({
  state: z.enum(['active', 'all']).default('active'),
  site: id.optional(),
  device: id.optional(),
  limit: z.coerce.number().int().min(1).max(100_000).optional(),
});
export const ackBody = z.strictObject({ note: z.string().max(2000).optional() }).prefault({});
export const shelveBody = z
  .strictObject({
    site: id.optional(),
    device: id.optional(),
    rule: id.optional(),
    /** Epoch ms the shelf ends... */
    untilMs: z.number().int().positive().optional(),
    /** ...or its length from now, in minutes. */
    durationMin: z
      .number()
      .positive()
      .max(366 * 24 * 60)
      .optional(),
    reason: z.string().min(1).max(2000),
  })
  .superRefine((b, ctx) => {
    if (b.site === undefined && b.device === undefined && b.rule === undefined)
      ctx.addIssue({ code: 'custom', path: ['site'], message: 'give at least one of site, device, rule' });
    if ((b.untilMs === undefined) === (b.durationMin === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['untilMs'],
        message: 'give exactly one of untilMs, durationMin',
      });
  });
export const shelvesQuery = z.strictObject({ all: z.enum(['true', 'false']).optional() });
export const rulesQuery = z.strictObject({ site: id.optional(), device: id.optional() });

export const thresholdSchema = open({
  rule: z.string(),
  metric: z.string(),
  level: z.enum(['lowLow', 'low', 'high', 'highHigh']),
  value: z.number(),
  severity: severityEnum,
});
export const ruleSchema = open({
  id: z.string(),
  kind: z.string(),
  metric: z.string().optional(),
  description: z.string().optional(),
});
/** `GET /api/rules`: the rule pack and overrides; with `?device=` what applies to that one device. */
export const rulesSchema = z.union([
  open({
    site: z.string(),
    device: z.string(),
    kind: z.string(),
    critical: z.boolean(),
    rules: z.array(ruleSchema),
    thresholds: z.array(thresholdSchema),
  }),
  open({ rules: z.array(ruleSchema), overrides: z.unknown() }),
]);
export const deviceRulesSchema = rulesSchema.options[0];

export const readRatesSchema = z.object({ at: isoTime, rates: z.array(open({ site: z.string() })) });

export type Severity = z.infer<typeof severityEnum>;
export type Alarm = z.infer<typeof alarmSchema>;
export type AlarmDetail = z.infer<typeof alarmDetailSchema>;
export type Shelf = z.infer<typeof shelfSchema>;
export type Threshold = z.infer<typeof thresholdSchema>;
export type DeviceRules = z.infer<typeof deviceRulesSchema>;
export type ShelveBody = z.input<typeof shelveBody>;
