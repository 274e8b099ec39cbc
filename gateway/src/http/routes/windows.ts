import type { FastifyInstance, FastifyReply } from 'fastify';
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { AlarmError, type AlarmService } from '../../alarms/index.js';
import { nextOccurrence, occurrenceAt, type MaintenanceWindow } from '../../alarms/windows.js';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { badRequest } from './validate.js';

export interface WindowRouteDeps {
  alarms: AlarmService;
  tokens: TokenStore;
  now?: () => number;
}

const id = z.string().min(1).max(200);
const duration = z
  .number()
  .positive()
  .max(31 * 24 * 60);
const schedule = z.discriminatedUnion('type', [
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
const createBody = z
  .strictObject({
    site: id.optional(),
    device: id.optional(),
    kind: id.optional(),
    rule: id.optional(),
    schedule,
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
const listQuery = z.strictObject({ all: z.enum(['true', 'false']).optional() });

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
    schedule: s.type === 'once' ? { type: s.type, from: iso(s.fromMs), to: iso(s.toMs) } : s,
    reason: w.reason,
    createdBy: w.createdBy,
    createdAt: iso(w.createdAt),
    endedAt: iso(w.endedAt),
    endedBy: w.endedBy,
    /** Whether an occurrence covers now, and which. */
    active: cur !== undefined,
    current: cur ? { from: iso(cur.from), to: iso(cur.to) } : null,
    next: next ? { from: iso(next.from), to: iso(next.to) } : null,
  };
}

function alarmError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof AlarmError) return sendError(reply, err.status, err.code, err.message);
  throw err;
}

/**
 * Maintenance windows (docs/maintenance-windows.md): list, set in advance (engineer), end early
 * (engineer). Self-contained: its schemas, its JSON shape and its errors are all here.
 */
export function registerWindowRoutes(app: FastifyInstance, deps: WindowRouteDeps): void {
  const viewer = requireRole(deps.tokens, 'viewer');
  const engineer = requireRole(deps.tokens, 'engineer');
  const now = deps.now ?? Date.now;
  const { alarms } = deps;

  app.get('/api/windows', { preHandler: viewer }, async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    const t = now();
    return { windows: alarms.listWindows(q.data.all === 'true').map((w) => windowToJson(w, t)) };
  });

  app.post('/api/windows', { preHandler: engineer }, async (req, reply) => {
    const b = createBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(reply, b.error, 'body');
    const { schedule: s, ...rest } = b.data;
    try {
      const w = alarms.createWindow({
        ...rest,
        schedule:
          s.type === 'once' ? { type: 'once', fromMs: Date.parse(s.from), toMs: Date.parse(s.to) } : s,
        user: req.principal!.name,
      });
      return reply.code(201).send(windowToJson(w, now()));
    } catch (err) {
      return alarmError(reply, err);
    }
  });

  app.post<{ Params: { id: string } }>(
    '/api/windows/:id/end',
    { preHandler: engineer },
    async (req, reply) => {
      try {
        const { window, events } = alarms.endWindow(req.params.id, req.principal!.name);
        return { ...windowToJson(window, now()), released: events.map((e) => e.alarm.id) };
      } catch (err) {
        return alarmError(reply, err);
      }
    },
  );
}
