import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FleetService } from '../../fleet/service.js';
import { occurrenceKey } from '../../workorders/maintenance-schema.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import { changeResult, retireBody } from '../schemas/fleet.js';
import {
  fleetSchedulesSchema,
  moveOccurrenceBody,
  occurrenceQuery,
  scheduleBody,
  scheduleListQuery,
  scheduleParams,
  skipOccurrenceBody,
} from '../schemas/fleet-schedules.js';
import { changeToJson } from './fleet.js';
import { refused } from './fleet-errors.js';

export interface FleetScheduleRouteDeps {
  fleet: FleetService;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const answers = { 200: changeResult, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...authErrors };

/**
 * Preventive-maintenance schedules from the dashboard (docs/fleet.md): viewer reads, engineer
 * creates, edits and retires schedules, moves one occurrence or skips it with a reason. Applied
 * live to the planner; every change is in the history.
 */
export const fleetScheduleRoutes: FastifyPluginAsyncZod<FleetScheduleRouteDeps> = async (app, deps) => {
  const { fleet } = deps;

  app.get(
    '/api/fleet/schedules',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Maintenance schedules (file and runtime, retired ones) with their next occurrences',
        querystring: scheduleListQuery,
        response: { 200: fleetSchedulesSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const l = fleet.listSchedules(req.query.count);
      return {
        timeZone: l.timeZone,
        schedules: l.schedules.map((s) => ({
          ...s,
          schedule: { ...s.schedule, timeZone: s.schedule.timeZone ?? l.timeZone },
          next: s.next.map((n) => ({ dueAt: iso(n.dueAt)!, skip: n.skip, moveTo: iso(n.moveTo) })),
          occurrences: s.occurrences.map((o) => ({ ...o, at: iso(o.at) })),
        })),
      };
    },
  );

  app.put(
    '/api/fleet/schedules',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Creates or edits a maintenance schedule (a retired one comes back); applied at once',
        body: scheduleBody,
        response: answers,
      },
    },
    async (req) => {
      const { note, ...s } = req.body;
      const c = await fleet
        .putSchedule(s, req.principal!.name, note ?? null)
        .catch((e: unknown) => refused(e, 'body'));
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/schedules/:id/retire',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Retires a schedule: no more work orders from it (kept, with its history)',
        params: scheduleParams,
        body: retireBody,
        response: answers,
      },
    },
    async (req) => {
      const c = await fleet
        .retireSchedule(req.params.id, req.principal!.name, req.body?.note ?? null)
        .catch((e: unknown) => refused(e, 'body'));
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/schedules/:id/move',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Moves one occurrence to another time; the series stays as it is',
        params: scheduleParams,
        body: moveOccurrenceBody,
        response: answers,
      },
    },
    async (req) => {
      const { note, to, ...which } = req.body;
      const c = await fleet
        .setOccurrence({ schedule: req.params.id, ...which, moveTo: to }, req.principal!.name, note ?? null)
        .catch((e: unknown) => refused(e, 'body'));
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/schedules/:id/skip',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Skips one occurrence: no work order for it; the reason is kept and shown',
        params: scheduleParams,
        body: skipOccurrenceBody,
        response: answers,
      },
    },
    async (req) => {
      const { reason, ...which } = req.body;
      const c = await fleet
        .setOccurrence({ schedule: req.params.id, ...which, skip: reason }, req.principal!.name, reason)
        .catch((e: unknown) => refused(e, 'body'));
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.delete(
    '/api/fleet/schedules/:id/occurrences',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Takes back a move or skip not passed yet: the occurrence falls due as its series has it',
        params: scheduleParams,
        querystring: occurrenceQuery,
        response: answers,
      },
    },
    async (req) => {
      const { note, ...which } = req.query;
      const key = occurrenceKey({ schedule: req.params.id, ...which });
      const c = await fleet
        .removeOccurrence(key, req.principal!.name, note ?? null)
        .catch((e: unknown) => refused(e, 'query'));
      return { change: c ? changeToJson(c) : null };
    },
  );
};
