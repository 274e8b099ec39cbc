import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { measurementOf } from '../../ingest/catalogue.js';
import type { DeviceRegistry } from '../../registry/registry.js';
import { bucketMs, QueryError, type InfluxReader } from '../../sinks/influx/query.js';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { lookupDevice } from './device-lookup.js';
import { badRequest } from './validate.js';

export interface ReadingRouteDeps {
  registry: DeviceRegistry;
  /** Absent when InfluxDB output is disabled: the route then answers 503. */
  reader?: InfluxReader;
  tokens: TokenStore;
}

/** Epoch milliseconds or an RFC 3339 string. */
const instant = z.union([
  z.coerce.number().int().nonnegative(),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);

const readingsQuery = z
  .strictObject({
    metric: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must be a metric name'),
    from: instant.optional(),
    to: instant.optional(),
    limit: z.coerce.number().int().min(1).max(100_000).default(10_000),
    /** Downsample to about this many buckets (a chart's width in pixels) instead of raw readings. */
    points: z.coerce.number().int().min(10).max(10_000).optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, {
    message: 'from must not be after to',
    path: ['from'],
  });

/**
 * `GET /api/devices/:id/readings?metric=&from=&to=&limit=&points=`: the history of one metric from
 * InfluxDB, raw (at most `limit` readings, oldest first) or, with `points`, in about that many
 * time buckets over the whole range. Only good values; `notGood` lists where the others were.
 */
export function registerReadingRoutes(app: FastifyInstance, deps: ReadingRouteDeps): void {
  const viewer = requireRole(deps.tokens, 'viewer');
  app.get<{ Params: { id: string } }>(
    '/api/devices/:id/readings',
    { preHandler: viewer },
    async (req, reply) => {
      const q = readingsQuery.safeParse(req.query);
      if (!q.success) return badRequest(reply, q.error, 'query');
      const e = lookupDevice(deps.registry, req.params.id, reply);
      if (!e) return reply;
      if (!deps.reader)
        return sendError(reply, 503, 'unavailable', 'InfluxDB output is disabled: no history');
      const to = q.data.to ?? Date.now();
      const from = q.data.from ?? to - 24 * 3600_000;
      const series = {
        measurement: measurementOf(e.kind),
        site: e.site,
        device: e.id,
        metric: q.data.metric,
        from,
        to,
      };
      try {
        // Values that are not good are never in `points`; `notGood` says where they were, so a
        // chart can mark the gap (ADR 0070).
        if (q.data.points !== undefined) {
          const interval = bucketMs(from, to, q.data.points);
          const [points, notGood] = await Promise.all([
            deps.reader.downsampled(series, interval),
            deps.reader.notGoodBuckets(series, interval),
          ]);
          return { device: e.key, metric: q.data.metric, from, to, interval, points, notGood };
        }
        const h = await deps.reader.history({ ...series, limit: q.data.limit });
        // Oldest first: a range with more readings than the limit ends early, and says so.
        const truncated = h.rows >= q.data.limit;
        return {
          device: e.key,
          metric: q.data.metric,
          from,
          to,
          interval: null,
          truncated,
          points: h.points,
          notGood: h.notGood,
        };
      } catch (err) {
        if (err instanceof QueryError) return sendError(reply, err.status, 'query_failed', err.message);
        throw err;
      }
    },
  );
}
