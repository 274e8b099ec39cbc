import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ReportScheduler } from '../../workorders/report-schedule.js';
import { OVERALL, type ReportStore } from '../../workorders/report-store.js';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { badRequest } from './validate.js';

export interface ReportStatusDeps {
  tokens: TokenStore;
  scheduler: ReportScheduler;
  store: ReportStore;
}

const month = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be YYYY-MM');
const statusQuery = z.strictObject({ month: month.optional() });
const storedQuery = z.strictObject({
  month,
  site: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .optional(),
  format: z.enum(['json', 'csv', 'html']).default('json'),
});

/**
 * The generated monthly reports (viewer): whether each month's report was generated, delivered or
 * failed (`/status`), and a stored report exactly as generated and sent (`/stored`), with its sha256.
 */
export function registerReportStatusRoutes(app: FastifyInstance, deps: ReportStatusDeps): void {
  const viewer = requireRole(deps.tokens, 'viewer');

  app.get('/api/reports/monthly/status', { preHandler: viewer }, async (req, reply) => {
    const q = statusQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    return deps.scheduler.status(q.data.month);
  });

  app.get('/api/reports/monthly/stored', { preHandler: viewer }, async (req, reply) => {
    const q = storedQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    const r = deps.store.get(q.data.month, q.data.site ?? OVERALL);
    if (!r)
      return sendError(
        reply,
        404,
        'GW_ERR_REPORT_NOT_GENERATED',
        `no ${q.data.site ?? 'overall'} report generated for ${q.data.month}`,
      );
    reply.header('x-report-sha256', r.sha256);
    const name = `service-report-${r.month}${r.site ? `-${r.site}` : ''}`;
    if (q.data.format === 'csv')
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}.csv"`)
        .send(r.csv);
    if (q.data.format === 'html')
      return reply.header('content-type', 'text/html; charset=utf-8').send(r.html);
    return reply.header('content-type', 'application/json; charset=utf-8').send(r.json);
  });
}
