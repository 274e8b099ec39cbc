import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { measurementOf } from '../../ingest/catalogue.js';
import type { DeviceRegistry } from '../../registry/registry.js';
import { bucketMs, QueryError, type InfluxReader } from '../../sinks/influx/query.js';
import { HttpError } from '../errors.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import {
  deviceListQuery,
  deviceListSchema,
  deviceParams,
  deviceSchema,
  historySchema,
  readingsQuery,
} from '../schemas/devices.js';
import { lookupDevice } from './device-lookup.js';

export interface DeviceRouteDeps {
  registry: DeviceRegistry;
  /** Absent when InfluxDB output is disabled: the readings route then answers 503. */
  reader?: InfluxReader | undefined;
}

const QUERY_CODES = { 400: 'GW_ERR_BAD_REQUEST', 502: 'GW_ERR_UPSTREAM', 503: 'GW_ERR_UNAVAILABLE' } as const;

/** The registry (latest values, online/stale) and each metric's history from InfluxDB. */
export const deviceRoutes: FastifyPluginAsyncZod<DeviceRouteDeps> = async (app, deps) => {
  app.get(
    '/api/devices',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Every device with the latest value of each metric',
        querystring: deviceListQuery,
        response: { 200: deviceListSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => ({ devices: deps.registry.list(req.query) }),
  );

  app.get(
    '/api/devices/:id',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'One device (`site/device`, or a bare id that only one site uses)',
        params: deviceParams,
        response: { 200: deviceSchema, 404: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const e = lookupDevice(deps.registry, req.params.id);
      return deps.registry.get(e.key)!;
    },
  );

  app.get(
    '/api/devices/:id/readings',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'History of one metric: raw (oldest first, at most `limit`) or in about `points` buckets',
        params: deviceParams,
        querystring: readingsQuery,
        response: {
          200: historySchema,
          400: errorSchema,
          404: errorSchema,
          409: errorSchema,
          502: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req) => {
      const q = req.query;
      const e = lookupDevice(deps.registry, req.params.id);
      if (!deps.reader) throw new HttpError('GW_ERR_UNAVAILABLE', 'InfluxDB output is disabled: no history');
      const to = q.to ?? Date.now();
      const from = q.from ?? to - 24 * 3600_000;
      const series = {
        measurement: measurementOf(e.kind),
        site: e.site,
        device: e.id,
        metric: q.metric,
        from,
        to,
      };
      try {
        // Values that are not good are never in `points`; `notGood` says where they were, so a
        // chart can mark the gap (ADR 0070).
        if (q.points !== undefined) {
          const interval = bucketMs(from, to, q.points);
          const [points, notGood] = await Promise.all([
            deps.reader.downsampled(series, interval),
            deps.reader.notGoodBuckets(series, interval),
          ]);
          return { device: e.key, metric: q.metric, from, to, interval, points, notGood };
        }
        const h = await deps.reader.history({ ...series, limit: q.limit });
        // Oldest first: a range with more readings than the limit ends early, and says so.
        const truncated = h.rows >= q.limit;
        return {
          device: e.key,
          metric: q.metric,
          from,
          to,
          interval: null,
          truncated,
          points: h.points,
          notGood: h.notGood,
        };
      } catch (err) {
        if (err instanceof QueryError) {
          const code = QUERY_CODES[err.status as keyof typeof QUERY_CODES] ?? 'GW_ERR_UPSTREAM';
          throw new HttpError(code, err.message);
        }
        throw err;
      }
    },
  );
};
