import { z } from 'zod';
import { id } from './common.js';
import { named, open } from './registry.js';

const countBy = open({
  total: z.number(),
  byPriority: z.record(z.string(), z.number()),
  bySite: z.record(z.string(), z.number()),
});
const timeFigures = open({
  count: z.number(),
  meanMin: z.number().nullable(),
  p90Min: z.number().nullable(),
});
const slaFigure = open({ met: z.number(), total: z.number(), rate: z.number().nullable() });

/** The monthly service report (`format=json`); `format=csv` answers the same figures as text/csv. */
export const monthlyReportSchema = named(
  open({
    month: z.string(),
    timeZone: z.string(),
    from: z.string(),
    to: z.string(),
    generatedAt: z.string(),
    site: z.string().nullable(),
    tickets: open({ opened: countBy, closed: countBy }),
    response: timeFigures,
    resolution: timeFigures,
    sla: open({ response: slaFigure, resolution: slaFigure }),
    escalations: open({ total: z.number(), byLevel: z.record(z.string(), z.number()) }),
    repeats: open({ count: z.number(), rate: z.number().nullable() }),
    preventive: open({
      due: z.number(),
      doneOnTime: z.number(),
      late: z.number(),
      open: z.number(),
      onTimeRate: z.number().nullable(),
    }),
    alarms: open({
      total: z.number(),
      bySeverity: z.record(z.string(), z.number()),
      byRule: z.record(z.string(), z.number()),
      bySite: z.record(z.string(), z.number()),
    }),
    readRates: z.array(
      open({
        site: z.string(),
        meterClass: z.string(),
        period: z.string(),
        expected: z.number(),
        reported: z.number(),
        rate: z.number().nullable(),
        target: z.number(),
        met: z.boolean(),
      }),
    ),
  }),
  'MonthlyReport',
);

export const monthlyQuery = z.strictObject({
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM'),
  site: id.optional(),
  format: z.enum(['json', 'csv']).default('json'),
  /** The CSV's headers and labels in the reader's language (`zh` or `en`, as the dashboard). */
  lang: z.enum(['en', 'zh']).default('en'),
});

const time = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).transform((v) => Date.parse(v));
export const calendarQuery = z
  .strictObject({ from: time.optional(), to: time.optional() })
  .refine((q) => q.from === undefined || q.to === undefined || q.from < q.to, {
    path: ['to'],
    message: 'must be after from',
  });

export type MonthlyReport = z.infer<typeof monthlyReportSchema>;

const reportMonth = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM');
export const reportStatusQuery = z.strictObject({ month: reportMonth.optional() });
export const storedReportQuery = z.strictObject({
  month: reportMonth,
  site: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
  format: z.enum(['json', 'csv', 'html']).default('json'),
});

/** `GET /api/reports/monthly/status`: a month's generated reports and their deliveries. */
export const reportStatusSchema = named(
  z.object({
    month: z.string(),
    /** When every delivery must have succeeded; a failure still open then raises a ticket. */
    dueAt: z.string(),
    reports: z.array(z.object({ site: z.string().nullable(), generatedAt: z.string(), sha256: z.string() })),
    deliveries: z.array(
      z.object({
        recipient: z.string(),
        site: z.string().nullable(),
        channel: z.string(),
        status: z.enum(['pending', 'delivered', 'failed']),
        attempts: z.number(),
        lastError: z.string().nullable(),
        lastAttemptAt: z.string().nullable(),
        deliveredAt: z.string().nullable(),
      }),
    ),
    /** The ticket raised because a delivery missed the due time. */
    overdueTicket: z.string().nullable(),
  }),
  'MonthlyReportStatus',
);
export type ReportStatus = z.infer<typeof reportStatusSchema>;
