import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { GatewayConfig } from '../../config/schema.js';
import type { FleetService } from '../../fleet/service.js';
import { refused } from './fleet-errors.js';
import { contactsPin } from '../../fleet/pins.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import { chainBody, changeResult, contactsSchema, onCallBody } from '../schemas/fleet.js';
import { changeToJson } from './fleet.js';

export interface FleetContactRouteDeps {
  fleet: FleetService;
  config(): GatewayConfig;
}

/**
 * The escalation chain and the on-call rota (docs/fleet.md): viewer reads, admin changes. The next
 * escalation reaches the new contacts without a restart; every change is in the history.
 */
export const fleetContactRoutes: FastifyPluginAsyncZod<FleetContactRouteDeps> = async (app, deps) => {
  const { fleet } = deps;

  app.get(
    '/api/fleet/contacts',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'The escalation chain in force and the on-call rota',
        response: { 200: contactsSchema, ...authErrors },
      },
    },
    async () => {
      const c = fleet.contacts();
      const week = c.rota.find((r) => r.week === c.week);
      return {
        chain: deps.config().workorders.contacts,
        week: c.week,
        onCall: week?.contact ?? null,
        rota: c.rota,
        configured: fleet.configuredChain(),
        pin: contactsPin(fleet.pins()) ?? null,
      };
    },
  );

  app.put(
    '/api/fleet/contacts',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Replaces the escalation chain (level 1 first); the next escalation uses it',
        body: chainBody,
        response: { 200: changeResult, 400: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const c = await fleet
        .setChain(req.body.contacts, req.principal!.name, req.body.note ?? null)
        .catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.put(
    '/api/fleet/on-call',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Who is on call in an ISO week (default this week): level 1 of the chain that week',
        body: onCallBody,
        response: { 200: changeResult, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const week = req.body.week ?? fleet.contacts().week;
      const c = await fleet
        .setOnCall(week, req.body.contact, req.principal!.name, req.body.note ?? null)
        .catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );
};
