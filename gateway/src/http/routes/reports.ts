import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ReadRateEntry } from '../../rules/read-rate.js';
import { monthlyReport, monthlyReportCsv, monthRange, type ReportAlarm } from '../../workorders/report.js';
import type { CalendarEntry } from '../../workorders/maintenance-calendar.js';
import { localReportSource, type ReportSource } from '../../workorders/report-source.js';
import type { WorkOrderService } from '../../workorders/index.js';
import { HttpError } from '../errors.js';
import { fromView } from '../forward.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import { calendarQuery, monthlyQuery, monthlyReportSchema } from '../schemas/reports.js';
import { calendarSchema } from '../schemas/tickets.js';

export interface ReportRouteDeps {
  tickets: WorkOrderService;
  /** Alarms raised in `[from, to)` (absent: the report counts no alarms). */
  alarmsBetween?: (from: number, to: number) => ReportAlarm[];
  /**
   * Where tickets and alarms are read instead of `tickets` and `alarmsBetween` (cluster mode: the
   * shared view of every member's; absent: this instance's stores).
   */
  source?: ReportSource;
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

const DAY = 86_400_000;
/** The longest calendar window one request may ask for. */
const MAX_CALENDAR_DAYS = 400;

/**
 * The monthly service report (CONTRACT.md, viewer) and the maintenance calendar (viewer). Read-only:
 * both are computed from the stores on each request.
 */
export const reportRoutes: FastifyPluginAsyncZod<ReportRouteDeps> = async (app, deps) => {
  const now = deps.now ?? Date.now;
  const source = deps.source ?? localReportSource(deps.tickets, deps.alarmsBetween);
  // The shared view may be unreachable (503, retryable); the local stores answer or fail as before.
  const read = <T>(p: Promise<T>): Promise<T> => (deps.source ? fromView(p) : p);

  app.get(
    '/api/reports/monthly',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'The monthly service report: JSON, or CSV with `format=csv`',
        querystring: monthlyQuery,
        response: {
          200: {
            description: 'The report',
            content: {
              'application/json': { schema: monthlyReportSchema },
              'text/csv': { schema: z.string() },
            },
          },
          400: errorSchema,
          502: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const range = monthRange(q.month, deps.timeZone);
      if (!range.ok) throw new HttpError('GW_ERR_BAD_REQUEST', `query.month: ${range.message}`);
      const t = now();
      let readRates: ReadRateEntry[] = [];
      if (t >= range.from && t < range.to) readRates = deps.readRates?.() ?? [];
      else if (t >= range.to && deps.readRatesEnded) {
        try {
          readRates = await deps.readRatesEnded(range.from, range.to);
        } catch (err) {
          throw new HttpError(
            'GW_ERR_REPORT_READ_RATES',
            `read rates from InfluxDB: ${(err as Error).message}`,
          );
        }
      }
      const r = monthlyReport({
        month: q.month,
        timeZone: deps.timeZone,
        site: q.site ?? null,
        generatedAt: t,
        tickets: await read(source.tickets(range.to)),
        alarms: await read(source.alarms(range.from, range.to)),
        readRates,
      });
      if ('ok' in r) throw new HttpError('GW_ERR_BAD_REQUEST', `query.month: ${r.message}`);
      if (q.format === 'csv') {
        const name = `service-report-${r.month}${r.site ? `-${r.site}` : ''}.csv`;
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${name}"`)
          .send(monthlyReportCsv(r, q.lang));
      }
      return r;
    },
  );

  const calendar = deps.calendar;
  if (!calendar) return;
  app.get(
    '/api/maintenance/calendar',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Preventive maintenance occurrences in a window (default: 30 days back, 60 ahead)',
        querystring: calendarQuery,
        response: { 200: calendarSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const t = now();
      const from = req.query.from ?? t - 30 * DAY;
      const to = req.query.to ?? Math.max(from, t) + 60 * DAY;
      if (to <= from) throw new HttpError('GW_ERR_BAD_REQUEST', 'query.to: must be after from');
      if (to - from > MAX_CALENDAR_DAYS * DAY)
        throw new HttpError('GW_ERR_BAD_REQUEST', `query.to: at most ${MAX_CALENDAR_DAYS} days after from`);
      return {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        occurrences: calendar(from, to).map((e) => ({ ...e, dueAt: new Date(e.dueAt).toISOString() })),
      };
    },
  );
};
