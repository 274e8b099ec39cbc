import { z } from 'zod';

/** One recipient of the monthly report: by email or by a webhook of `notifications.webhooks`. */
export const reportRecipientSchema = z
  .strictObject({
    /** Shown in the status and in the overdue ticket. */
    name: z.string().min(1).max(100),
    email: z.email().optional(),
    /** The name of a webhook in `notifications.webhooks` (its URL, secret and headers). */
    webhook: z.string().min(1).max(100).optional(),
    /** This site's report; absent: the overall report (every site). */
    site: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a site id')
      .optional(),
  })
  .refine((r) => (r.email === undefined) !== (r.webhook === undefined), {
    message: 'give email or webhook (one of them)',
    path: ['email'],
  });

/**
 * `workorders.report` beyond its time zone: the monthly report generated after each month ends and
 * delivered by the due day (docs/workorders.md, "The monthly report").
 */
export const reportScheduleFields = {
  /** Generate each month's reports (overall and per site) as soon as the month has ended. */
  generate: z.boolean().default(true),
  recipients: z.array(reportRecipientSchema).default([]),
  /** Delivered before 00:00 on this day of the following month, else a ticket is raised. */
  dueDay: z.number().int().min(2).max(28).default(10),
  /** First wait after a failed delivery; it doubles per attempt, up to an hour. */
  retryMs: z.number().int().min(1000).max(3_600_000).default(300_000),
  /** How often the scheduler looks at the clock. */
  checkMs: z.number().int().min(1000).max(3_600_000).default(60_000),
  /** Site of the ticket raised when a report is overdue. */
  ticketSite: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .default('gateway'),
};

export type ReportRecipient = z.infer<typeof reportRecipientSchema>;
