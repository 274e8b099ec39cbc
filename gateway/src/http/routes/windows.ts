import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AlarmService } from '../../alarms/index.js';
import { nextOccurrence, occurrenceAt, type MaintenanceWindow } from '../../alarms/windows.js';
import type { SharedQuiet } from '../../quiet/types.js';
import { subjectOf } from '../auth.js';
import { authErrors, errorSchema, id } from '../schemas/common.js';
import { windowBody, windowListQuery, windowSchema } from '../schemas/windows.js';

export interface WindowRouteDeps {
  alarms: AlarmService;
  /** Cluster mode: windows written to PostgreSQL and applied on every instance (ADR 0163). */
  quiet?: SharedQuiet;
  now?: () => number;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function windowToJson(w: MaintenanceWindow, now: number) {
  const cur = occurrenceAt(w, now);
  const next = nextOccurrence(w, now);
  const s = w.schedule;
  return {
    id: w.id,
    site: w.site,
    device: w.device,
    kind: w.kind,
    rule: w.rule,
    schedule: s.type === 'once' ? { type: s.type, from: iso(s.fromMs)!, to: iso(s.toMs)! } : s,
    reason: w.reason,
    createdBy: w.createdBy,
    createdBySubject: w.createdBySubject ?? null,
    createdAt: iso(w.createdAt)!,
    endedAt: iso(w.endedAt),
    endedBy: w.endedBy,
    endedBySubject: w.endedBySubject ?? null,
    active: cur !== undefined,
    current: cur ? { from: iso(cur.from)!, to: iso(cur.to)! } : null,
    next: next ? { from: iso(next.from)!, to: iso(next.to)! } : null,
  };
}

/**
 * Maintenance windows (docs/maintenance-windows.md): list (viewer), set in advance (engineer), end
 * early (engineer). The alarm service's errors (unknown window, already ended, a schedule with no
 * occurrence) reach the one error handler with their catalogue codes.
 */
export const windowRoutes: FastifyPluginAsyncZod<WindowRouteDeps> = async (app, deps) => {
  const now = deps.now ?? Date.now;
  const { alarms, quiet } = deps;

  app.get(
    '/api/windows',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Maintenance windows in force or to come (`all=true`: ended ones too)',
        querystring: windowListQuery,
        response: {
          200: z.object({ windows: z.array(windowSchema) }),
          400: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req) => {
      const t = now();
      const all = req.query.all === 'true';
      const list = quiet ? await quiet.listWindows(all) : alarms.listWindows(all);
      return { windows: list.map((w) => windowToJson(w, t)) };
    },
  );

  app.post(
    '/api/windows',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Set a maintenance window (once, RRULE or cron) for a site, device, kind and/or rule',
        body: windowBody,
        response: { 201: windowSchema, 400: errorSchema, 503: errorSchema, ...authErrors },
      },
    },
    async (req, reply) => {
      const { schedule: s, ...rest } = req.body;
      const windowReq = {
        ...rest,
        schedule:
          s.type === 'once'
            ? { type: 'once' as const, fromMs: Date.parse(s.from), toMs: Date.parse(s.to) }
            : s,
        user: req.principal!.name,
        ...subjectOf(req.principal!),
      };
      const w = quiet ? await quiet.createWindow(windowReq) : alarms.createWindow(windowReq);
      return reply.code(201).send(windowToJson(w, now()));
    },
  );

  app.post(
    '/api/windows/:id/end',
    {
      config: { role: 'engineer' },
      schema: {
        summary:
          'End a maintenance window now; alarms it held back whose condition is still present are raised',
        params: z.object({ id }),
        response: {
          200: windowSchema.and(z.object({ released: z.array(z.string()) })),
          404: errorSchema,
          409: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req) => {
      const p = req.principal!;
      const [id, subject] = [req.params.id, p.subject ?? undefined];
      const { window, events } = quiet
        ? await quiet.endWindow(id, p.name, subject)
        : alarms.endWindow(id, p.name, subject);
      return { ...windowToJson(window, now()), released: events.map((e) => e.alarm.id) };
    },
  );
};
