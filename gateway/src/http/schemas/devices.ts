import { z } from 'zod';
import { id, metricValue } from './common.js';
import { named, open } from './registry.js';

export const deviceStateEnum = z.enum(['online', 'stale', 'offline']);

export const latestValueSchema = z.object({
  value: metricValue,
  /** Epoch ms, the reading's own time. */
  ts: z.number(),
  quality: z.enum(['good', 'uncertain', 'bad']).optional(),
});

/** A device as the registry shows it, with the latest value of each metric. Times in epoch ms. */
export const deviceSchema = named(
  open({
    key: z.string().describe('`site/device`, unique across the gateway'),
    id: z.string(),
    site: z.string(),
    kind: z.string(),
    name: z.string().nullable(),
    location: z.string().nullable(),
    critical: z.boolean(),
    discovered: z.boolean(),
    reportIntervalSec: z.number(),
    ratedMaxFlow: z.number().nullable(),
    registerMax: z.number().nullable(),
    meterClass: z.string().nullable(),
    state: deviceStateEnum,
    firstSeen: z.number().nullable(),
    lastSeen: z.number().nullable(),
    latest: z.record(z.string(), latestValueSchema),
  }),
  'Device',
);

export const deviceListQuery = z.strictObject({
  site: z.string().optional(),
  kind: z.string().optional(),
  state: deviceStateEnum.optional(),
});
export const deviceListSchema = z.object({ devices: z.array(deviceSchema) });

/** `:id` of a device route: `site/device` (URL-encoded) or a bare id only one site uses. */
export const deviceParams = z.object({ id });

/** Epoch milliseconds or an RFC 3339 string. */
const instant = z.union([
  z.coerce.number().int().nonnegative(),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);

export const readingsQuery = z
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

/** One reading, or with `points` one bucket: mean, min and max over [ts, ts + interval). */
const historyValue = z.union([z.number(), z.boolean(), z.string()]);
export const pointSchema = open({
  ts: z.number(),
  /** InfluxDB may hold a string field (an extra field a device sent). */
  value: historyValue.nullable(),
  min: historyValue.nullable().optional(),
  max: historyValue.nullable().optional(),
});

export const historySchema = named(
  z.object({
    device: z.string(),
    metric: z.string(),
    from: z.number(),
    to: z.number(),
    /** Bucket length in ms; null for raw readings. */
    interval: z.number().nullable(),
    /** Raw readings only: the range held more than `limit` readings and the answer ends early. */
    truncated: z.boolean().optional(),
    /** Good values only (ADR 0070). */
    points: z.array(pointSchema),
    /**
     * Where the metric had values that are not good, left out of `points`, for a chart to mark:
     * raw `{ts, quality}`, downsampled `{ts, count}`.
     */
    notGood: z
      .array(
        z.object({
          ts: z.number(),
          quality: z.enum(['bad', 'uncertain']).optional(),
          count: z.number().optional(),
        }),
      )
      .optional(),
  }),
  'History',
);

export const componentHealthSchema = open({
  state: z.enum(['ok', 'degraded', 'down', 'starting', 'stopped']),
  detail: z.string().optional(),
});
export const healthSchema = named(
  z.object({
    status: z.enum(['ok', 'degraded', 'down']),
    components: z.record(z.string(), componentHealthSchema),
  }),
  'Health',
  '`down` (503) when the durable outbox is down; `degraded` when any other component is not ok',
);

export type Device = z.infer<typeof deviceSchema>;
export type LatestValue = z.infer<typeof latestValueSchema>;
export type History = z.infer<typeof historySchema>;
export type Point = z.infer<typeof pointSchema>;
export type Health = z.infer<typeof healthSchema>;
