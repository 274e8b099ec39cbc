import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ReportScheduler } from '../../workorders/report-schedule.js';
import { OVERALL, type ReportStore } from '../../workorders/report-store.js';
import { HttpError } from '../errors.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import { reportStatusQuery, reportStatusSchema, storedReportQuery } from '../schemas/reports.js';

export interface ReportStatusDeps {
  scheduler: ReportScheduler;
  store: ReportStore;
}

/**
 * The generated monthly reports (viewer): whether each month's report was generated, delivered or
 * failed (`/status`), and a stored report exactly as generated and sent (`/stored`), with its sha256.
 */
export const reportStatusRoutes: FastifyPluginAsyncZod<ReportStatusDeps> = async (app, deps) => {
  app.get(
    '/api/reports/monthly/status',
    {
      config: { role: 'viewer' },
      schema: {
        summary: "A month's generated reports and their deliveries (default: the month that ended last)",
        querystring: reportStatusQuery,
        response: { 200: reportStatusSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => deps.scheduler.status(req.query.month),
  );

  app.get(
    '/api/reports/monthly/stored',
    {
      config: { role: 'viewer' },
      schema: {
        summary:
          'A generated report exactly as stored and sent (json, csv or html), its sha256 in x-report-sha256',
        querystring: storedReportQuery,
        response: {
          200: {
            description: 'The stored report',
            content: {
              'application/json': { schema: z.looseObject({}) },
              'text/csv': { schema: z.string() },
              'text/html': { schema: z.string() },
            },
          },
          400: errorSchema,
          404: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const r = deps.store.get(q.month, q.site ?? OVERALL);
      if (!r)
        throw new HttpError(
          'GW_ERR_REPORT_NOT_GENERATED',
          `no ${q.site ?? 'overall'} report generated for ${q.month}`,
        );
      reply.header('x-report-sha256', r.sha256);
      const name = `service-report-${r.month}${r.site ? `-${r.site}` : ''}`;
      if (q.format === 'csv')
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${name}.csv"`)
          .send(r.csv);
      if (q.format === 'html') return reply.header('content-type', 'text/html; charset=utf-8').send(r.html);
      return reply.header('content-type', 'application/json; charset=utf-8').send(r.json);
    },
  );
};
