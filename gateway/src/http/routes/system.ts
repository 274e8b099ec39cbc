import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ComponentHealth } from '../../core/types.js';
import { healthSchema } from '../schemas/devices.js';

export interface SystemRouteDeps {
  metrics: Registry;
  health: () => Record<string, ComponentHealth>;
}

export type OverallStatus = 'ok' | 'degraded' | 'down';

/** ok when every component is ok; down when the durable store is down; degraded otherwise. */
export function overallStatus(components: Record<string, ComponentHealth>): OverallStatus {
  if (components.outbox?.state === 'down') return 'down';
  for (const c of Object.values(components)) if (c.state !== 'ok') return 'degraded';
  return 'ok';
}

/** Health and metrics (open, for load balancers and Prometheus). */
export const systemRoutes: FastifyPluginAsyncZod<SystemRouteDeps> = async (app, deps) => {
  app.get(
    '/api/health',
    {
      config: { role: 'public' },
      schema: {
        summary: 'Health of the gateway and each component (503 when down)',
        response: { 200: healthSchema, 503: healthSchema },
      },
    },
    async (_req, reply) => {
      const components = deps.health();
      const status = overallStatus(components);
      return reply.code(status === 'down' ? 503 : 200).send({ status, components });
    },
  );

  app.get(
    '/metrics',
    {
      config: { role: 'public' },
      schema: {
        summary: 'Prometheus metrics (text format)',
        response: {
          200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } },
        },
      },
    },
    async (_req, reply) => {
      const body = await deps.metrics.metrics();
      return reply.header('content-type', deps.metrics.contentType).send(body);
    },
  );
};
