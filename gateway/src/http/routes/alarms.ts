import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { alarmToJson, type AlarmService, type Incident, type Shelf } from '../../alarms/index.js';
import { CompiledRules } from '../../rules/compile.js';
import { rulesForDevice, thresholdsOf } from '../../rules/device-rules.js';
import type { ReadRateEntry, RulesConfig } from '../../rules/index.js';
import type { SharedQuiet } from '../../quiet/types.js';
import type { SharedView } from '../../view/types.js';
import { subjectOf } from '../auth.js';
import { HttpError } from '../errors.js';
import { forwardToHolder, fromView } from '../forward.js';
import {
  ackBody,
  alarmDetailSchema,
  alarmListQuery,
  alarmSchema,
  incidentSchema,
  readRatesSchema,
  rulesQuery,
  rulesSchema,
  shelfSchema,
  shelvesQuery,
  shelveBody,
} from '../schemas/alarms.js';
import { authErrors, errorSchema, id } from '../schemas/common.js';

/** What the routes need of the rules: the effective configuration and read rates now. */
export interface RulesView {
  readonly config: RulesConfig;
  readRates(): ReadRateEntry[];
}

export interface AlarmRouteDeps {
  alarms: AlarmService;
  rules: RulesView;
  /** Device facts for `GET /api/rules?device=`: the kind picks the rules, critical and rated flow their settings. */
  deviceFacts(
    site: string,
    device: string,
  ): { kind: string; critical: boolean; ratedMaxFlow: number | undefined } | undefined;
  /**
   * Cluster mode: lists and records of every instance from the shared view, changes to another
   * instance's alarm forwarded to it (ADR 0155, 0157). Absent: this instance's own, as before.
   */
  view?: SharedView;
  /** Cluster mode: shelves written to PostgreSQL and applied on every instance (ADR 0163). */
  quiet?: SharedQuiet;
}

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
    userSubject: s.userSubject ?? null,
    reason: s.reason,
    createdAt: iso(s.createdAt),
    endedAt: iso(s.endedAt),
    endedBy: s.endedBy,
    endedBySubject: s.endedBySubject ?? null,
  };
}

function incidentToJson(i: Incident) {
  return { ...i, openedAt: iso(i.openedAt), lastAlarmAt: iso(i.lastAlarmAt), closedAt: iso(i.closedAt) };
}

const idParams = z.object({ id });

/** Alarms, shelves, incidents, the effective rules and read rates (CONTRACT.md). */
export const alarmRoutes: FastifyPluginAsyncZod<AlarmRouteDeps> = async (app, deps) => {
  const { alarms, view, quiet } = deps;

  app.get(
    '/api/alarms',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Alarms: those that need attention (`state=active`) or all',
        querystring: alarmListQuery,
        response: { 200: z.object({ alarms: z.array(alarmSchema) }), 400: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      if (!view) return { alarms: alarms.list(req.query).map(alarmToJson) };
      const limit = Math.min(req.query.limit ?? alarms.listLimit, alarms.listLimit);
      return { alarms: (await fromView(view.listAlarms({ ...req.query, limit }))).map(alarmToJson) };
    },
  );

  app.get(
    '/api/alarms/shelves',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Active shelves (`all=true`: ended ones too)',
        querystring: shelvesQuery,
        response: {
          200: z.object({ shelves: z.array(shelfSchema) }),
          400: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req) => {
      const activeOnly = req.query.all !== 'true';
      const list = quiet ? await quiet.listShelves(activeOnly) : alarms.listShelves(activeOnly);
      return { shelves: list.map(shelfToJson) };
    },
  );

  app.post(
    '/api/alarms/shelve',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Shelve the alarms of a site, device and/or rule until a time or for a while',
        body: shelveBody,
        response: { 201: shelfSchema, 400: errorSchema, 503: errorSchema, ...authErrors },
      },
    },
    async (req, reply) => {
      const { durationMin, untilMs, ...rest } = req.body;
      const shelveReq = {
        ...rest,
        untilMs: untilMs ?? Date.now() + durationMin! * 60_000,
        user: req.principal!.name,
        ...subjectOf(req.principal!),
      };
      const shelf = quiet ? await quiet.shelve(shelveReq) : alarms.shelve(shelveReq);
      return reply.code(201).send(shelfToJson(shelf));
    },
  );

  app.delete(
    '/api/alarms/shelves/:id',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'End a shelf now',
        params: idParams,
        response: { 200: shelfSchema, 404: errorSchema, 503: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const [id, user, subject] = [req.params.id, req.principal!.name, req.principal!.subject ?? undefined];
      return shelfToJson(
        quiet ? await quiet.unshelve(id, user, subject) : alarms.unshelve(id, user, subject),
      );
    },
  );

  app.get(
    '/api/alarms/:id',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'One alarm with its history',
        params: idParams,
        response: { 200: alarmDetailSchema, 404: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const a = alarms.get(req.params.id);
      if (!a && view) {
        // Another instance's alarm (this instance's own is freshest in its own store).
        const shared = await fromView(view.getAlarm(req.params.id));
        if (shared) {
          const history = shared.history.map((e) => ({ ...e, ts: iso(e.ts), shelved: e.shelved === 1 }));
          return { ...alarmToJson(shared.alarm), history };
        }
      }
      if (!a) throw new HttpError('GW_ERR_ALARM_NOT_FOUND', `alarm ${req.params.id} not found`);
      const history = alarms.history(a.id).map((e) => ({ ...e, ts: iso(e.ts), shelved: e.shelved === 1 }));
      return { ...alarmToJson(a), history };
    },
  );

  app.post(
    '/api/alarms/:id/ack',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Acknowledge an alarm',
        params: idParams,
        body: ackBody,
        response: {
          200: alarmSchema,
          400: errorSchema,
          404: errorSchema,
          409: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req, reply) => {
      if (view && !alarms.get(req.params.id)) {
        // Another instance's record: the change is made where it is held.
        await forwardToHolder(req, reply, view, 'alarm', req.params.id);
        return;
      }
      const [user, subject] = [req.principal!.name, req.principal!.subject ?? undefined];
      // Cluster mode: answered once the ack is in the shared view (ADR 0173); alone, as before.
      return alarmToJson(
        alarms.writesThrough
          ? await alarms.ackThrough(req.params.id, user, req.body.note, subject)
          : alarms.ack(req.params.id, user, req.body.note, subject),
      );
    },
  );

  app.get(
    '/api/incidents',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Incidents: alarms of one rule at one site grouped',
        response: { 200: z.object({ incidents: z.array(incidentSchema) }), ...authErrors },
      },
    },
    async () => ({
      incidents: (view ? await fromView(view.listIncidents()) : alarms.listIncidents()).map(incidentToJson),
    }),
  );

  app.get(
    '/api/rules',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'The rule pack and overrides; with `device` the rules as they apply to that device',
        querystring: rulesQuery,
        response: { 200: rulesSchema, 400: errorSchema, 404: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const cfg = deps.rules.config;
      if (req.query.device === undefined) {
        return { rules: [...cfg.pack, ...cfg.custom], overrides: cfg.overrides };
      }
      // The rules as they apply to one device: critical-asset settings and overrides merged in.
      let site = req.query.site;
      let device = req.query.device;
      const slash = device.indexOf('/');
      if (slash >= 0) [site, device] = [device.slice(0, slash), device.slice(slash + 1)];
      if (site === undefined)
        throw new HttpError('GW_ERR_BAD_REQUEST', 'query.site: needed with a bare device id');
      const facts = deps.deviceFacts(site, device);
      if (!facts) throw new HttpError('GW_ERR_NOT_FOUND', `no device ${site}/${device}`);
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
    },
  );

  app.get(
    '/api/reports/read-rate',
    {
      config: { role: 'viewer' },
      schema: { summary: 'Read rates of the meters now', response: { 200: readRatesSchema, ...authErrors } },
    },
    async () => ({ at: new Date().toISOString(), rates: deps.rules.readRates() }),
  );
};
