import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { FastifyReply } from 'fastify';
import { MODELS } from '../../../../simulators/models/index.js';
import { COMMON_FAULTS, type Kind } from '../../../../simulators/types.js';
import { HttpError } from '../errors.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import { demoDevicesSchema, demoParams, demoResultSchema, faultBody } from '../schemas/demo.js';

/** The faults a device of this kind can be given (its model's and those of every kind). */
export function faultsOfKind(kind: string): string[] {
  const model = (MODELS as Partial<Record<string, (typeof MODELS)[Kind]>>)[kind];
  return [...Object.keys(model?.faults ?? {}), ...Object.keys(COMMON_FAULTS)];
}

export interface DemoRouteDeps {
  /** The simulators' HTTP control while the demo runs; undefined otherwise (the routes answer 404). */
  controlUrl: () => string | null | undefined;
}

const CONTROL_TIMEOUT_MS = 5000;

const demoOff = (): HttpError =>
  new HttpError(
    'GW_ERR_DEMO_OFF',
    'the demo is not running (start with --demo, or set GATEWAY_DEMO_CONTROL_URL)',
  );

const demoErrors = { 400: errorSchema, 404: errorSchema, 502: errorSchema, ...authErrors } as const;

/**
 * `npm start` only: the dashboard's Demo panel triggers the simulators' faults through the
 * gateway (one origin, one token) instead of talking to the simulators' own port.
 */
export const demoRoutes: FastifyPluginAsyncZod<DemoRouteDeps> = async (app, deps) => {
  /** The simulators' answer, status and body as they are. */
  const forward = async (
    reply: FastifyReply,
    path: string,
    init: { method: string; body?: unknown },
  ): Promise<FastifyReply> => {
    const base = deps.controlUrl();
    if (!base) throw demoOff();
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method: init.method,
        headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
      });
    } catch (err) {
      throw new HttpError(
        'GW_ERR_DEMO_UNREACHABLE',
        `simulator control at ${base} did not answer: ${(err as Error).message}`,
      );
    }
    const text = await res.text();
    return reply.code(res.status).header('content-type', 'application/json').send(text);
  };

  // Each device with the faults it can be given (`available`) beside those active now (`faults`).
  app.get(
    '/api/demo/devices',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Demo: the simulated devices with their active and available faults',
        response: { 200: demoDevicesSchema, ...demoErrors },
      },
    },
    async () => {
      const base = deps.controlUrl();
      if (!base) throw demoOff();
      let devices: Array<{ id: string; site: string; kind: string; faults: string[] }>;
      try {
        const res = await fetch(`${base}/devices`, { signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS) });
        devices = (await res.json()) as typeof devices;
      } catch (err) {
        throw new HttpError(
          'GW_ERR_DEMO_UNREACHABLE',
          `simulator control at ${base}: ${(err as Error).message}`,
        );
      }
      return { devices: devices.map((d) => ({ ...d, available: faultsOfKind(d.kind) })) };
    },
  );

  app.post(
    '/api/demo/devices/:id/faults',
    {
      config: { role: 'engineer' },
      schema: {
        summary: "Demo: give a simulated device a fault (the simulators' answer passed through)",
        params: demoParams,
        body: faultBody,
        response: { 200: demoResultSchema, ...demoErrors },
      },
    },
    async (req, reply) =>
      forward(reply, `/devices/${req.params.id}/faults`, { method: 'POST', body: req.body }),
  );

  app.delete(
    '/api/demo/devices/:id/faults',
    {
      config: { role: 'engineer' },
      schema: {
        summary: "Demo: clear a simulated device's faults",
        params: demoParams,
        response: { 200: demoResultSchema, ...demoErrors },
      },
    },
    async (req, reply) => forward(reply, `/devices/${req.params.id}/faults`, { method: 'DELETE' }),
  );
};
