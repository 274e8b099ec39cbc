import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { badRequest } from './validate.js';
import { MODELS } from '../../../../simulators/models/index.js';
import { COMMON_FAULTS, type Kind } from '../../../../simulators/types.js';

/** The faults a device of this kind can be given (its model's and those of every kind). */
export function faultsOfKind(kind: string): string[] {
  const model = (MODELS as Partial<Record<string, (typeof MODELS)[Kind]>>)[kind];
  return [...Object.keys(model?.faults ?? {}), ...Object.keys(COMMON_FAULTS)];
}

export interface DemoRouteDeps {
  tokens: TokenStore;
  /** The simulators' HTTP control while the demo runs; undefined otherwise (the routes answer 404). */
  controlUrl: () => string | null | undefined;
}

const faultBody = z.strictObject({
  fault: z.string().regex(/^[a-z0-9-]{1,64}$/, 'a fault name such as chlorine-loss'),
  forMs: z.number().int().min(1000).max(86_400_000).optional(),
});
const idParam = z.strictObject({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a device id') });
const CONTROL_TIMEOUT_MS = 5000;

/**
 * `npm start` only: the dashboard's Demo panel triggers the simulators' faults through the
 * gateway (one origin, one token) instead of talking to the simulators' own port.
 */
const demoOff = (reply: FastifyReply): FastifyReply =>
  sendError(
    reply,
    404,
    'GW_ERR_DEMO_OFF',
    'the demo is not running (start with --demo, or set GATEWAY_DEMO_CONTROL_URL)',
  );

export function registerDemoRoutes(app: FastifyInstance, deps: DemoRouteDeps): void {
  const viewer = requireRole(deps.tokens, 'viewer');
  const engineer = requireRole(deps.tokens, 'engineer');

  const forward = async (
    reply: FastifyReply,
    path: string,
    init: { method: string; body?: unknown },
  ): Promise<FastifyReply> => {
    const base = deps.controlUrl();
    if (!base) return demoOff(reply);
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method: init.method,
        headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
      });
    } catch (err) {
      return sendError(
        reply,
        502,
        'GW_ERR_DEMO_UNREACHABLE',
        `simulator control at ${base} did not answer: ${(err as Error).message}`,
      );
    }
    const text = await res.text();
    return reply.code(res.status).header('content-type', 'application/json').send(text);
  };

  // Each device with the faults it can be given (`available`) beside those active now (`faults`).
  app.get('/api/demo/devices', { preHandler: viewer }, async (_req, reply) => {
    const base = deps.controlUrl();
    if (!base) return demoOff(reply);
    let devices: Array<{ kind: string }>;
    try {
      const res = await fetch(`${base}/devices`, { signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS) });
      devices = (await res.json()) as Array<{ kind: string }>;
    } catch (err) {
      return sendError(
        reply,
        502,
        'GW_ERR_DEMO_UNREACHABLE',
        `simulator control at ${base}: ${(err as Error).message}`,
      );
    }
    return { devices: devices.map((d) => ({ ...d, available: faultsOfKind(d.kind) })) };
  });

  app.post<{ Params: { id: string } }>(
    '/api/demo/devices/:id/faults',
    { preHandler: engineer },
    async (req, reply) => {
      const p = idParam.safeParse(req.params);
      if (!p.success) return badRequest(reply, p.error, 'params');
      const b = faultBody.safeParse(req.body ?? {});
      if (!b.success) return badRequest(reply, b.error, 'body');
      return forward(reply, `/devices/${p.data.id}/faults`, { method: 'POST', body: b.data });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/demo/devices/:id/faults',
    { preHandler: engineer },
    async (req, reply) => {
      const p = idParam.safeParse(req.params);
      if (!p.success) return badRequest(reply, p.error, 'params');
      return forward(reply, `/devices/${p.data.id}/faults`, { method: 'DELETE' });
    },
  );
}
