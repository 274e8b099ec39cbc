import { IANAZone } from 'luxon';
import { z } from 'zod';
import { id, isoTime } from './common.js';
import { named } from './registry.js';

/** Longest occurrence of a recurring window: a month. */
const duration = z
  .number()
  .positive()
  .max(31 * 24 * 60);

/** Once (from/to), an RRULE with a DTSTART, or cron in a time zone; the recurring ones with a duration. */
export const windowScheduleBody = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('once'),
    from: z.iso.datetime({ offset: true }),
    to: z.iso.datetime({ offset: true }),
  }),
  z.strictObject({ type: z.literal('rrule'), rrule: z.string().min(1).max(2000), durationMin: duration }),
  z.strictObject({
    type: z.literal('cron'),
    cron: z.string().min(1).max(200),
    timeZone: z
      .string()
      .refine((tz) => IANAZone.isValidZone(tz), 'must be an IANA time zone such as UTC or Asia/Shanghai')
      .default('UTC'),
    durationMin: duration,
  }),
]);

export const windowBody = z
  .strictObject({
    site: id.optional(),
    device: id.optional(),
    kind: id.optional(),
    rule: id.optional(),
    schedule: windowScheduleBody,
    reason: z.string().min(1).max(2000),
  })
  .superRefine((b, ctx) => {
    if ([b.site, b.device, b.kind, b.rule].every((x) => x === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['site'],
        message: 'give at least one of site, device, kind, rule',
      });
  });
export type WindowBody = z.input<typeof windowBody>;

export const windowListQuery = z.strictObject({ all: z.enum(['true', 'false']).optional() });

const span = z.object({ from: isoTime, to: isoTime });

export const windowSchema = named(
  z.looseObject({
    id: z.string(),
    site: z.string().nullable(),
    device: z.string().nullable(),
    kind: z.string().nullable(),
    rule: z.string().nullable(),
    schedule: z.discriminatedUnion('type', [
      z.object({ type: z.literal('once'), from: isoTime, to: isoTime }),
      z.object({ type: z.literal('rrule'), rrule: z.string(), durationMin: z.number() }),
      z.object({
        type: z.literal('cron'),
        cron: z.string(),
        timeZone: z.string().optional(),
        durationMin: z.number(),
      }),
    ]),
    reason: z.string(),
    createdBy: z.string(),
    createdBySubject: z
      .string()
      .nullable()
      .describe("SSO: the identity provider's subject (`<iss>#<sub>`) beside the name; null otherwise"),
    createdAt: isoTime,
    endedAt: isoTime.nullable(),
    endedBy: z.string().nullable(),
    endedBySubject: z.string().nullable(),
    /** Whether an occurrence covers now, and which. */
    active: z.boolean(),
    current: span.nullable(),
    next: span.nullable(),
  }),
  'MaintenanceWindow',
  'A maintenance window: alarms raised inside one of its occurrences are recorded as suppressed and page nobody.',
);
export type WindowJson = z.infer<typeof windowSchema>;
