import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { AlarmError, alarmToJson, type AlarmService, type Incident, type Shelf } from '../../alarms/index.js';
import { CompiledRules } from '../../rules/compile.js';
import { rulesForDevice, thresholdsOf } from '../../rules/device-rules.js';
import type { ReadRateEntry, RulesConfig } from '../../rules/index.js';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { badRequest } from './validate.js';

/** What the routes need of the rules: the effective configuration and read rates now. */
export interface RulesView {
  readonly config: RulesConfig;
  readRates(): ReadRateEntry[];
}

export interface AlarmRouteDeps {
  alarms: AlarmService;
  rules: RulesView;
  tokens: TokenStore;
  /** Device facts for `GET /api/rules?device=`: the kind picks the rules, critical and rated flow their settings. */
  deviceFacts(
    site: string,
    device: string,
  ): { kind: string; critical: boolean; ratedMaxFlow: number | undefined } | undefined;
}

const id = z.string().min(1).max(200);
const listQuery = z.strictObject({
  state: z.enum(['active', 'all']).default('active'),
  site: id.optional(),
  device: id.optional(),
  limit: z.coerce.number().int().min(1).max(100_000).optional(),
});
const ackBody = z.strictObject({ note: z.string().max(2000).optional() }).prefault({});
const shelveBody = z
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
const shelvesQuery = z.strictObject({ all: z.enum(['true', 'false']).optional() });
const rulesQuery = z.strictObject({ site: id.optional(), device: id.optional() });

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function shelfToJson(s: Shelf) {
  return {
    id: s.id,
    site: s.site,
    device: s.device,
    rule: s.rule,
    from: iso(s.fromMs),
    until: iso(s.untilMs),
    user: s.user,
    reason: s.reason,
    createdAt: iso(s.createdAt),
    endedAt: iso(s.endedAt),
    endedBy: s.endedBy,
  };
}

function incidentToJson(i: Incident) {
  return { ...i, openedAt: iso(i.openedAt), lastAlarmAt: iso(i.lastAlarmAt), closedAt: iso(i.closedAt) };
}

function alarmError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof AlarmError) return sendError(reply, err.status, err.code, err.message);
  throw err;
}

/** Alarms, shelves, incidents, the effective rules and read rates (CONTRACT.md). */
export function registerAlarmRoutes(app: FastifyInstance, deps: AlarmRouteDeps): void {
  const viewer = requireRole(deps.tokens, 'viewer');
  const engineer = requireRole(deps.tokens, 'engineer');
  const { alarms } = deps;

  app.get('/api/alarms', { preHandler: viewer }, async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    return { alarms: alarms.list(q.data).map(alarmToJson) };
  });

  app.get('/api/alarms/shelves', { preHandler: viewer }, async (req, reply) => {
    const q = shelvesQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    return { shelves: alarms.listShelves(q.data.all !== 'true').map(shelfToJson) };
  });

  app.post('/api/alarms/shelve', { preHandler: engineer }, async (req, reply) => {
    const b = shelveBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(reply, b.error, 'body');
    const { durationMin, untilMs, ...rest } = b.data;
    try {
      const shelf = alarms.shelve({
        ...rest,
        untilMs: untilMs ?? Date.now() + durationMin! * 60_000,
        user: req.principal!.name,
      });
      return reply.code(201).send(shelfToJson(shelf));
    } catch (err) {
      return alarmError(reply, err);
    }
  });

  app.delete<{ Params: { id: string } }>(
    '/api/alarms/shelves/:id',
    { preHandler: engineer },
    async (req, reply) => {
      try {
        return shelfToJson(alarms.unshelve(req.params.id, req.principal!.name));
      } catch (err) {
        return alarmError(reply, err);
      }
    },
  );

  app.get<{ Params: { id: string } }>('/api/alarms/:id', { preHandler: viewer }, async (req, reply) => {
    const a = alarms.get(req.params.id);
    if (!a) return sendError(reply, 404, 'GW_ERR_ALARM_NOT_FOUND', `alarm ${req.params.id} not found`);
    const history = alarms.history(a.id).map((e) => ({ ...e, ts: iso(e.ts), shelved: e.shelved === 1 }));
    return { ...alarmToJson(a), history };
  });

  app.post<{ Params: { id: string } }>(
    '/api/alarms/:id/ack',
    { preHandler: engineer },
    async (req, reply) => {
      const b = ackBody.safeParse(req.body ?? {});
      if (!b.success) return badRequest(reply, b.error, 'body');
      try {
        return alarmToJson(alarms.ack(req.params.id, req.principal!.name, b.data.note));
      } catch (err) {
        return alarmError(reply, err);
      }
    },
  );

  app.get('/api/incidents', { preHandler: viewer }, async () => ({
    incidents: alarms.listIncidents().map(incidentToJson),
  }));

  app.get('/api/rules', { preHandler: viewer }, async (req, reply) => {
    const q = rulesQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    const cfg = deps.rules.config;
    if (q.data.device === undefined) {
      return { rules: [...cfg.pack, ...cfg.custom], overrides: cfg.overrides };
    }
    // The rules as they apply to one device: critical-asset settings and overrides merged in.
    let site = q.data.site;
    let device = q.data.device;
    const slash = device.indexOf('/');
    if (slash >= 0) [site, device] = [device.slice(0, slash), device.slice(slash + 1)];
    if (site === undefined)
      return sendError(reply, 400, 'bad_request', 'query.site: needed with a bare device id');
    const facts = deps.deviceFacts(site, device);
    if (!facts) return sendError(reply, 404, 'not_found', `no device ${site}/${device}`);
    const subject = { site, device, ...facts };
    const rules = rulesForDevice(new CompiledRules(cfg), subject);
    return {
      site,
      device,
      kind: facts.kind,
      critical: facts.critical,
      rules,
      thresholds: thresholdsOf(rules, subject),
    };
  });

  app.get('/api/reports/read-rate', { preHandler: viewer }, async () => ({
    at: new Date().toISOString(),
    rates: deps.rules.readRates(),
  }));
}
