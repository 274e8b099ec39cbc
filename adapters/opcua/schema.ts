import { z } from 'zod';

/**
 * OPC UA sources: one entry per server endpoint. Mounted at `opcua` in the gateway config.
 * Node ids and browse paths are the server's; (site, device, kind, metric) are ours, so a PLC's
 * tag names never leak into InfluxDB.
 */

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const id = z.string().regex(ID, 'must match [A-Za-z0-9_-]{1,64}');
const ms = z.number().int().nonnegative();

const deadbandSchema = z.strictObject({
  type: z.enum(['none', 'absolute', 'percent']).default('none'),
  /** Absolute: in the value's unit; percent: of the node's EURange (AnalogItemType only). */
  value: z.number().nonnegative().default(0),
});

export const opcuaNodeSchema = z
  .strictObject({
    /** e.g. `ns=2;s=plant.tank-1.ph`, `i=2258` or `nsu=urn:vendor:plant;s=tank-1.ph` (namespace by URI). */
    nodeId: z
      .string()
      .regex(
        /^(?:ns=\d+;|nsu=[^;]+;)?(?:i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=[A-Za-z0-9+/=]+)$/,
        'must be an OPC UA node id: [ns=<index>;|nsu=<namespace URI>;](i=|s=|g=|b=)<identifier>',
      )
      .optional(),
    /** Relative path from the Root folder in OPC UA BNF, e.g. `/Objects/2:plant/2:tank-1/2:ph`. */
    browsePath: z.string().min(1).optional(),
    site: id,
    device: id,
    kind: id,
    metric: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a field name'),
    /** Linear conversion to the metric's unit: value × scale + offset (e.g. °F → °C). */
    scale: z.number().default(1),
    offset: z.number().default(0),
    /** Overrides of the endpoint's subscription settings for this node. */
    samplingIntervalMs: ms.optional(),
    deadband: deadbandSchema.optional(),
  })
  .refine((n) => (n.nodeId === undefined) !== (n.browsePath === undefined), {
    message: 'needs exactly one of nodeId or browsePath',
  });

const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('anonymous') }),
  z.strictObject({ type: z.literal('username'), username: z.string().min(1), password: z.string() }),
  z.strictObject({
    type: z.literal('certificate'),
    /** PEM files of the user certificate and its private key. */
    certificateFile: z.string().min(1),
    privateKeyFile: z.string().min(1),
  }),
]);

export const SECURITY_POLICIES = [
  'None',
  'Basic256Sha256',
  'Aes128_Sha256_RsaOaep',
  'Aes256_Sha256_RsaPss',
] as const;

export const opcuaEndpointSchema = z
  .strictObject({
    /** Names the source in /api/health (`opcua:<name>`). */
    name: id,
    endpointUrl: z.string().regex(/^opc\.tcp:\/\/[^\s]+$/, 'must be an opc.tcp:// URL'),
    securityMode: z.enum(['None', 'Sign', 'SignAndEncrypt']).default('None'),
    securityPolicy: z.enum(SECURITY_POLICIES).default('None'),
    auth: authSchema.default({ type: 'anonymous' }),
    subscription: z
      .strictObject({
        publishingIntervalMs: z.number().int().min(50).default(1000),
        samplingIntervalMs: ms.default(1000),
        queueSize: z.number().int().min(1).max(10_000).default(10),
        discardOldest: z.boolean().default(true),
        deadband: deadbandSchema.prefault({}),
        /** Monitored items per CreateMonitoredItems request: servers refuse huge requests. */
        batchSize: z.number().int().min(1).max(10_000).default(500),
      })
      .prefault({}),
    /** Nodes the server refuses to monitor are read this often instead. */
    pollIntervalMs: z.number().int().min(100).default(5000),
    reconnect: z
      .strictObject({
        initialDelayMs: z.number().int().min(50).default(500),
        maxDelayMs: z.number().int().min(100).default(5000),
      })
      .prefault({}),
    nodes: z.array(opcuaNodeSchema).min(1),
  })
  .refine((e) => (e.securityMode === 'None') === (e.securityPolicy === 'None'), {
    message: 'securityMode None goes with securityPolicy None, and Sign/SignAndEncrypt with a real policy',
    path: ['securityPolicy'],
  });

export const opcuaSchema = z.array(opcuaEndpointSchema).default([]);

export type OpcuaEndpointConfig = z.infer<typeof opcuaEndpointSchema>;
export type OpcuaNodeConfig = z.infer<typeof opcuaNodeSchema>;
export type OpcuaDeadband = z.infer<typeof deadbandSchema>;
