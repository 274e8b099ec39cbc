import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { FleetService } from '../../fleet/service.js';
import { refused } from './fleet-errors.js';
import { devicePin } from '../../fleet/pins.js';
import type { DeviceRegistry } from '../../registry/registry.js';
import { HttpError } from '../errors.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import {
  changeResult,
  deviceBody,
  deviceKeyParams,
  fleetDeviceSchema,
  importBody,
  importResult,
  moveBody,
  retireBody,
} from '../schemas/fleet.js';
import { changeToJson } from './fleet.js';

export interface FleetDeviceRouteDeps {
  fleet: FleetService;
  registry: DeviceRegistry;
}

const answers = { 200: changeResult, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...authErrors };

/**
 * Devices from the dashboard (docs/fleet.md), admin: create and edit, retire (kept, never
 * deleted), move to another site, adopt a discovered device, import many from CSV with a dry run.
 * Each applies live to the registry and the rules.
 */
export const fleetDeviceRoutes: FastifyPluginAsyncZod<FleetDeviceRouteDeps> = async (app, deps) => {
  const { fleet } = deps;

  app.get(
    '/api/fleet/devices',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Declared devices (file and runtime), retired ones included',
        response: { 200: z.object({ devices: z.array(fleetDeviceSchema) }), ...authErrors },
      },
    },
    async () => {
      const pins = fleet.pins();
      return {
        devices: fleet
          .listDevices()
          .map((d) => ({ ...d, pin: devicePin(pins, `${d.device.site}/${d.device.id}`) ?? null })),
      };
    },
  );

  app.put(
    '/api/fleet/devices',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Creates or edits a device (a retired one comes back); applied at once',
        body: deviceBody,
        response: answers,
      },
    },
    async (req) => {
      const { note, ...d } = req.body;
      const c = await fleet.putDevice(d, req.principal!.name, note ?? null).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/devices/:site/:id/retire',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Retires a device: out of the registry and the rules; its declaration and history kept',
        params: deviceKeyParams,
        body: retireBody,
        response: answers,
      },
    },
    async (req) => {
      const key = `${req.params.site}/${req.params.id}`;
      const c = await fleet.retireDevice(key, req.principal!.name, req.body.note ?? null).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/devices/:site/:id/move',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Moves a device to another site (declared there, retired here)',
        params: deviceKeyParams,
        body: moveBody,
        response: answers,
      },
    },
    async (req) => {
      const key = `${req.params.site}/${req.params.id}`;
      const c = await fleet.moveDevice(key, req.body.site, req.principal!.name).catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/devices/:site/:id/adopt',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Adopts a discovered device: declared with the kind it reports as',
        params: deviceKeyParams,
        response: answers,
      },
    },
    async (req) => {
      const e = deps.registry.lookup(req.params.site, req.params.id);
      if (!e) throw new HttpError('GW_ERR_NOT_FOUND', `no device ${req.params.site}/${req.params.id}`);
      if (!e.discovered) throw new HttpError('GW_ERR_BAD_REQUEST', `${e.key} is declared already`);
      const c = await fleet
        .putDevice({ site: e.site, id: e.id, kind: e.kind }, req.principal!.name, 'adopted')
        .catch(refused);
      return { change: c ? changeToJson(c) : null };
    },
  );

  app.post(
    '/api/fleet/devices/import',
    {
      config: { role: 'admin' },
      bodyLimit: 6 * 1024 * 1024,
      schema: {
        summary:
          'Devices from CSV: `dryRun` (default) lists every bad row; otherwise the good rows are imported',
        body: importBody,
        response: { 200: importResult, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => fleet.importDevices(req.body.csv, req.body.dryRun, req.principal!.name).catch(refused),
  );
};
