import { z } from 'zod';

/**
 * Sparkplug B ingestion, mounted at `sparkplug` in the gateway config. Sparkplug names things by
 * group / edge node / device and metric name; the mapping turns them into our site, device id,
 * kind and DOMAIN.md metric names, so a PLC's tag names never reach InfluxDB.
 */

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const id = z.string().regex(ID, 'must match [A-Za-z0-9_-]{1,64}');
/** Sparkplug ids may hold any UTF-8 except the MQTT separators and wildcards. */
const spbId = z.string().regex(/^[^/+#]{1,255}$/, 'must be 1-255 characters without / + #');
const field = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must be a field name');

const metricMapSchema = z.strictObject({
  /** The DOMAIN.md metric this Sparkplug metric is stored as. */
  metric: field,
  /** Linear conversion into the metric's unit: value × scale + offset (e.g. °F → °C). */
  scale: z.number().default(1),
  offset: z.number().default(0),
});

export const sparkplugDeviceSchema = z.strictObject({
  group: spbId,
  /** The edge node id. */
  node: spbId,
  /** The Sparkplug device id; absent: the edge node's own metrics (NBIRTH/NDATA). */
  device: spbId.optional(),
  /** Default: the edge node id. */
  site: id.optional(),
  /** Default: the Sparkplug device id (or the edge node id for node metrics). */
  id: id.optional(),
  /** Default: the birth's `Properties/Kind` string metric; without either the device is refused. */
  kind: id.optional(),
  /** Sparkplug metric name → metric. Unmapped names are used as they are (last `/` segment). */
  metrics: z.record(z.string().min(1), metricMapSchema).default({}),
});

export const sparkplugSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Sparkplug group ids to subscribe to (`spBv1.0/<group>/#` each). */
  groups: z.array(spbId).min(1).default(['facility']),
  /**
   * The gateway's Sparkplug host id. With it, the gateway acts as a Sparkplug 3.0 host application:
   * it publishes its STATE (`spBv1.0/STATE/<hostId>`, retained) online once subscribed, with an
   * offline will, so edge nodes that name it as their primary host know when it is there.
   */
  hostId: spbId.optional(),
  /** At most one `Node Control/Rebirth` command per edge node this often. */
  rebirthMinIntervalMs: z.number().int().min(0).default(5000),
  /** Sparkplug devices (and edge nodes) mapped onto our ids, kinds and metric names. */
  devices: z.array(sparkplugDeviceSchema).default([]),
});

export type SparkplugConfig = z.infer<typeof sparkplugSchema>;
export type SparkplugDeviceConfig = z.infer<typeof sparkplugDeviceSchema>;
