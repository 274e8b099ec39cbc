import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ReadRateEntry } from '../../rules/read-rate.js';
import { monthlyReport, monthlyReportCsv, monthRange, type ReportAlarm } from '../../workorders/report.js';
import type { CalendarEntry } from '../../workorders/maintenance-calendar.js';
import type { WorkOrderService } from '../../workorders/index.js';
import { LANGUAGES } from '../../workorders/types.js';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { badRequest } from './validate.js';

export interface ReportRouteDeps {
  tokens: TokenStore;
  tickets: WorkOrderService;
  /** Alarms raised in `[from, to)` (absent: the report counts no alarms). */
  alarmsBetween?: (from: number, to: number) => ReportAlarm[];
  /** Read rates as the read-rate rule computes them now, for the running month (absent: none). */
  readRates?: () => ReadRateEntry[];
  /**
   * Read rates of a month that has ended, from InfluxDB's history (absent: none; the registry keeps
   * only each meter's latest reading).
   */
  readRatesEnded?: (from: number, to: number) => Promise<ReadRateEntry[]>;
  /** The report's time zone (`workorders.report.timeZone`). */
  timeZone: string;
  /** Preventive occurrences in `[from, to)` (absent: no calendar route). */
  calendar?: (from: number, to: number) => CalendarEntry[];
  now?: () => number;
}

const id = z.string().min(1).max(200);
const monthlyQuery = z.strictObject({
  month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM'),
  site: id.optional(),
  format: z.enum(['json', 'csv']).default('json'),
  /** The CSV's headers and labels in the reader's language (`zh` or `en`, as the dashboard). */
  lang: z.enum(LANGUAGES).default('en'),
});
const time = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).transform((v) => Date.parse(v));
const calendarQuery = z
  .strictObject({ from: time.optional(), to: time.optional() })
  .refine((q) => q.from === undefined || q.to === undefined || q.from < q.to, {
    path: ['to'],
    message: 'must be after from',
  });

const DAY = 86_400_000;
/** The longest calendar window one request may ask for. */
const MAX_CALENDAR_DAYS = 400;

/**
 * The monthly service report (CONTRACT.md, viewer) and the maintenance calendar (viewer). Read-only:
 * both are computed from the stores on each request.
 */
export function registerReportRoutes(app: FastifyInstance, deps: ReportRouteDeps): void {
  const viewer = requireRole(deps.tokens, 'viewer');
  const now = deps.now ?? Date.now;

  app.get('/api/reports/monthly', { preHandler: viewer }, async (req, reply) => {
    const q = monthlyQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    const range = monthRange(q.data.month, deps.timeZone);
    if (!range.ok) return sendError(reply, 400, 'bad_request', `query.month: ${range.message}`);
    const t = now();
    let readRates: ReadRateEntry[] = [];
    if (t >= range.from && t < range.to) readRates = deps.readRates?.() ?? [];
    else if (t >= range.to && deps.readRatesEnded) {
      try {
        readRates = await deps.readRatesEnded(range.from, range.to);
      } catch (err) {
        return sendError(
          reply,
          502,
          'GW_ERR_REPORT_READ_RATES',
          `read rates from InfluxDB: ${(err as Error).message}`,
        );
      }
    }
    const r = monthlyReport({
      month: q.data.month,
      timeZone: deps.timeZone,
      site: q.data.site ?? null,
      generatedAt: t,
      tickets: deps.tickets.reportTickets(range.to),
      alarms: deps.alarmsBetween?.(range.from, range.to) ?? [],
      readRates,
    });
    if ('ok' in r) return sendError(reply, 400, 'bad_request', `query.month: ${r.message}`);
    if (q.data.format === 'csv') {
      const name = `service-report-${r.month}${r.site ? `-${r.site}` : ''}.csv`;
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(monthlyReportCsv(r, q.data.lang));
    }
    return r;
  });

  const calendar = deps.calendar;
  if (calendar) {
    app.get('/api/maintenance/calendar', { preHandler: viewer }, async (req, reply) => {
      const q = calendarQuery.safeParse(req.query);
      if (!q.success) return badRequest(reply, q.error, 'query');
      const t = now();
      const from = q.data.from ?? t - 30 * DAY;
      const to = q.data.to ?? Math.max(from, t) + 60 * DAY;
      if (to <= from) return sendError(reply, 400, 'bad_request', 'query.to: must be after from');
      if (to - from > MAX_CALENDAR_DAYS * DAY)
        return sendError(reply, 400, 'bad_request', `query.to: at most ${MAX_CALENDAR_DAYS} days after from`);
      return {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        occurrences: calendar(from, to).map((e) => ({ ...e, dueAt: new Date(e.dueAt).toISOString() })),
      };
    });
  }
}
