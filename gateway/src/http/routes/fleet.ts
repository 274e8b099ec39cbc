import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { GatewayConfig } from '../../config/schema.js';
import type { FleetService } from '../../fleet/service.js';
import { refused } from './fleet-errors.js';
import type { FleetChange, FleetEntity } from '../../fleet/store.js';
import type { DeviceRegistry } from '../../registry/registry.js';
import { HttpError } from '../errors.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import {
  changeParams,
  changeResult,
  changeSchema,
  effectiveQuery,
  effectiveRulesSchema,
  historyQuery,
  overrideBody,
  overrideKeyQuery,
  storedOverride,
} from '../schemas/fleet.js';
import { exportYaml } from './config-export.js';

export interface FleetRouteDeps {
  fleet: FleetService;
  registry: DeviceRegistry;
  /** The config in force: the file with the operators' changes layered on. */
  config(): GatewayConfig;
}

/** What an engineer changes (and so may restore); the rest is the admin's. */
const ENGINEER_ENTITIES = new Set<FleetEntity>(['rule-override', 'schedule', 'pm-occurrence']);

export function changeToJson(c: FleetChange) {
  return { ...c, at: new Date(c.at).toISOString() };
}

/**
 * Runtime configuration (docs/fleet.md): rule overrides per kind, site and device with the
 * effective rule and each value's source (viewer reads, engineer changes), the history of every
 * change with restore, and the effective configuration as YAML (admin: it names every setting).
 */
export const fleetRoutes: FastifyPluginAsyncZod<FleetRouteDeps> = async (app, deps) => {
  const { fleet } = deps;

  app.get(
    '/api/fleet/rules',
    {
      config: { role: 'viewer' },
      schema: {
        summary: "A device's rules with where each value comes from (default, critical, kind, site, device)",
        querystring: effectiveQuery,
        response: { 200: effectiveRulesSchema, 400: errorSchema, 404: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const [site, device] = req.query.device.split('/') as [string, string];
      const e = deps.registry.lookup(site, device);
      if (!e) throw new HttpError('GW_ERR_NOT_FOUND', `no device ${site}/${device}`);
      const subject = { site, device, kind: e.kind, critical: e.critical };
      const rules = fleet.effective(deps.config(), subject);
      const overrides = fleet
        .listOverrides()
        .filter(
          (o) =>
            (o.scope === 'kind' && o.target === e.kind) ||
            (o.scope === 'site' && o.target === site) ||
            (o.scope === 'device' && o.target === `${site}/${device}`),
        );
      return {
        ...subject,
        rules: rules.map((r) => ({ ...r, def: r.def as unknown as Record<string, unknown> })),
        overrides,
      };
    },
  );

  app.get(
    '/api/fleet/overrides',
    {
      config: { role: 'viewer' },
      schema: {
        summary: "The operators' rule overrides (the config file's are in `GET /api/rules`)",
        response: { 200: z.object({ overrides: z.array(storedOverride) }), ...authErrors },
      },
    },
    async () => ({ overrides: fleet.listOverrides() }),
  );

  app.put(
    '/api/fleet/overrides',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Sets the override of one rule for a kind, a site or a device; applied at once',
        body: overrideBody,
        response: { 200: changeResult, 400: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const { note, ...o } = req.body;
      const c = await fleet.setOverride(o, req.principal!.name, note ?? null).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.delete(
    '/api/fleet/overrides',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Removes an override (`?key=scope:target:rule`): the layer below applies again',
        querystring: overrideKeyQuery,
        response: { 200: changeResult, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const c = await fleet
        .removeOverride(req.query.key, req.principal!.name, req.query.note ?? null)
        .catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.get(
    '/api/fleet/history',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Changes of the runtime configuration, newest first: who, when, before and after',
        querystring: historyQuery,
        response: { 200: z.object({ changes: z.array(changeSchema) }), 400: errorSchema, ...authErrors },
      },
    },
    async (req) => ({ changes: (await fleet.history(req.query)).map(changeToJson) }),
  );

  app.post(
    '/api/fleet/history/:id/restore',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Puts back the value a change replaced, recorded as a new change',
        params: changeParams,
        response: { 200: changeResult, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      // Devices and contacts are the admin's: putting one back needs the role that changes it.
      const entity = (await fleet.change(req.params.id))?.entity;
      if (entity !== undefined && !ENGINEER_ENTITIES.has(entity) && req.principal!.role !== 'admin')
        throw new HttpError('GW_ERR_FORBIDDEN', `restoring a ${entity} change needs the admin role`);
      const c = await fleet.restore(req.params.id, req.principal!.name).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.get(
    '/api/config/export',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'The effective configuration (file and runtime changes) as YAML, secrets left out',
        response: {
          200: { description: 'gateway.yaml', content: { 'text/yaml': { schema: z.string() } } },
          ...authErrors,
        },
      },
    },
    async (_req, reply) =>
      reply
        .header('content-type', 'text/yaml; charset=utf-8')
        .header('content-disposition', 'attachment; filename="gateway.yaml"')
        .send(exportYaml(deps.config())),
  );
};
