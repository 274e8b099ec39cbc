import { isIP } from 'node:net';
import { z } from 'zod';
import { ID_PATTERN, FIELD_NAME_PATTERN } from '../ingest/catalogue.js';
import { rulesSchema } from '../rules/schema.js';
import { METER_CLASSES } from '../rules/types.js';
import { alarmsSchema } from '../alarms/schema.js';
import { workordersSchema } from '../workorders/schema.js';
import { opcuaSchema } from '../../../adapters/opcua/schema.js';
import { hasMailRecipients, notificationsSchema } from '../notifications/schema.js';
import { sparkplugSchema } from '../../../adapters/mqtt/sparkplug/schema.js';
import { mbusSchema } from '../../../adapters/mbus/schema.js';
import { modbusSchema } from '../../../adapters/modbus/schema.js';
import { fleetConfigSchema } from '../fleet/pin-schema.js';

/**
 * The one configuration schema. Every default lives here; types are inferred from it.
 * Unknown keys are errors everywhere (strictObject), so a typo never silently does nothing.
 */

const id = z.string().regex(ID_PATTERN, 'must match [A-Za-z0-9_-]{1,64}');
const port = z.number().int().min(0).max(65535);
const duration = z.number().int().nonnegative();

/** `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`: what fastify's `trustProxy` (proxy-addr) accepts. */
function isAddressOrCidr(s: string): boolean {
  const [addr = '', bits, ...rest] = s.split('/');
  const v = isIP(addr);
  if (v === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (v === 4 ? 32 : 128);
}

const tlsSchema = z.strictObject({
  /** Paths to PEM files. */
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
  rejectUnauthorized: z.boolean().default(true),
});

export const mqttSchema = z.strictObject({
  /** External broker, e.g. mqtt://host:1883 or mqtts://host:8883. Absent: the embedded broker. */
  url: z
    .string()
    .regex(/^(mqtts?|tcp|tls):\/\/[^\s]+$/, 'must be mqtt://, mqtts://, tcp:// or tls:// URL')
    .optional(),
  clientId: z.string().min(1).max(128).default('facility-gateway'),
  username: z.string().optional(),
  password: z.string().optional(),
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(4),
  topics: z.array(z.string().min(1)).min(1).default(['facility/+/+/+/telemetry']),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(1),
  /** false: a persistent session, so the broker queues messages while the gateway is away. */
  cleanSession: z.boolean().default(false),
  /** MQTT 5 session expiry; 0 ends the session on disconnect. */
  sessionExpirySec: duration.default(7 * 24 * 3600),
  keepaliveSec: z.number().int().min(0).max(65535).default(30),
  /** MQTT 5 receive maximum: how many QoS 1/2 messages the broker may have in flight to us. */
  receiveMaximum: z.number().int().min(1).max(65535).default(65535),
  connectTimeoutMs: duration.default(10_000),
  reconnect: z
    .strictObject({
      minMs: duration.default(500),
      maxMs: duration.default(30_000),
    })
    .prefault({}),
  tls: tlsSchema.optional(),
  rejectedTopicPrefix: z.string().default('facility/_rejected'),
  /** Rejected messages go out at QoS 1, kept in memory until PUBACK, within these bounds (ADR 0071). */
  rejectedQueue: z
    .strictObject({
      maxMessages: z.number().int().min(1).default(1000),
      maxBytes: z
        .number()
        .int()
        .min(4096)
        .default(8 * 1024 * 1024),
      inflight: z.number().int().min(1).max(65535).default(20),
    })
    .prefault({}),
});

export const brokerSchema = z.strictObject({
  host: z.string().default('0.0.0.0'),
  port: port.default(1883),
  username: z.string().optional(),
  password: z.string().optional(),
});

export const ingestSchema = z.strictObject({
  maxPayloadBytes: z
    .number()
    .int()
    .min(64)
    .max(16 * 1024 * 1024)
    .default(64 * 1024),
  /** Readings stamped further in the future than this are rejected. */
  maxFutureMs: duration.default(5 * 60_000),
  /** Readings older than this are rejected (a device with a dead clock). */
  maxAgeMs: duration.default(30 * 24 * 3600_000),
  maxFields: z.number().int().min(1).max(1000).default(64),
});

export const influxSchema = z.strictObject({
  enabled: z.boolean().default(true),
  url: z.url().default('http://127.0.0.1:8086'),
  api: z.enum(['v2', 'v1']).default('v2'),
  token: z.string().optional(),
  org: z.string().default('facility'),
  bucket: z.string().default('facility'),
  db: z.string().default('facility'),
  retentionPolicy: z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  /** Lines per write request (InfluxDB recommends about 5,000). */
  batchLines: z.number().int().min(1).max(100_000).default(5000),
  /**
   * Lines per request at most while a backlog waits (after an outage, a restart, a burst, or
   * InfluxDB slower than the intake): a request then carries every unclaimed line up to this many.
   * InfluxDB spends less per line on larger requests (1.6.7 here: about 24 µs of CPU per line at
   * 5,000, 20 at 20,000, 16.5 at 50,000; worse again at 100,000), which is what a backlog needs.
   * A 413 from the server halves the request. Set it to batchLines to always send batchLines.
   */
  backlogBatchLines: z.number().int().min(1).max(200_000).default(50_000),
  /** Write requests in flight at once (InfluxDB spreads concurrent writes over its cores). */
  concurrency: z.number().int().min(1).max(16).default(2),
  /** A partial batch is written after this long. */
  flushIntervalMs: duration.default(250),
  /** Compress request bodies; `auto` does unless InfluxDB is on this host (loopback gains nothing). */
  gzip: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  timeoutMs: duration.default(15_000),
  retry: z
    .strictObject({
      minMs: duration.default(500),
      maxMs: duration.default(60_000),
    })
    .prefault({}),
});

export const outboxSchema = z.strictObject({
  /** Disk budget for readings waiting for InfluxDB. */
  maxBytes: z
    .number()
    .int()
    .min(1024 * 1024)
    .default(1024 * 1024 * 1024),
  /** What to do at the bound: stop acknowledging (the broker keeps messages) or drop the oldest. */
  whenFull: z.enum(['stop-acking', 'drop-oldest']).default('stop-acking'),
  /** Group commit: at most this long between a reading's arrival and its durable commit. */
  commitIntervalMs: z.number().int().min(0).max(1000).default(5),
  /** Run commits (INSERT + fsync) on a worker thread so the event loop never waits for the disk. */
  commitThread: z.boolean().default(true),
  /** SQLite synchronous mode: full survives power loss, normal survives a process crash. */
  synchronous: z.enum(['full', 'normal']).default('full'),
});

const metricDefSchema = z.strictObject({
  type: z.enum(['number', 'boolean']).default('number'),
  unit: z.string().optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  cumulative: z.boolean().default(false),
});

export const kindSchema = z.strictObject({
  reportIntervalSec: z.number().int().positive().default(300),
  metrics: z.record(z.string().regex(FIELD_NAME_PATTERN), metricDefSchema),
});

export const deviceSchema = z.strictObject({
  id,
  site: id,
  kind: z.string().regex(ID_PATTERN),
  name: z.string().optional(),
  location: z.string().optional(),
  /** Critical assets ("VIP" customers, key areas) get stricter thresholds and priority. */
  critical: z.boolean().default(false),
  reportIntervalSec: z.number().int().positive().optional(),
  /** Rated maximum flow (gas Qmax in m³/h, water Q3 in L/h). */
  ratedMaxFlow: z.number().positive().optional(),
  /** The register's highest value (e.g. 99999.999); the index rolls over to 0 after it. */
  registerMax: z.number().positive().optional(),
  /** For the read-rate targets of DOMAIN.md; meters without one count as the rule's default class. */
  meterClass: z.enum(METER_CLASSES).optional(),
});

const tokenSchema = z
  .strictObject({
    /** Shown as the actor in audit trails (who acknowledged an alarm). */
    name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must match [A-Za-z0-9_.@-]{1,64}'),
    role: z.enum(['viewer', 'engineer', 'admin']),
    token: z.string().min(8, 'must be at least 8 characters').optional(),
    /** sha256 of the token, hex (`printf %s "$TOKEN" | sha256sum`). */
    tokenSha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
      .optional(),
  })
  .refine((t) => (t.token === undefined) !== (t.tokenSha256 === undefined), {
    message: 'needs exactly one of token or tokenSha256',
  });

export const httpSchema = z
  .strictObject({
    host: z.string().default('0.0.0.0'),
    port: port.default(8080),
    adminToken: z.string().min(8, 'must be at least 8 characters').optional(),
    /** The admin token as its sha256 (hex) instead: the config file then holds no secret. */
    adminTokenSha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
      .optional(),
    /** Further API tokens; `tokenSha256` keeps the secret out of the config file. */
    tokens: z.array(tokenSchema).default([]),
    live: z
      .strictObject({
        /** At most one `reading` event per device per this interval; later readings coalesce. */
        readingIntervalMs: z.number().int().min(50).max(60_000).default(1000),
        /** A `ping` event this often: proxies keep an idle stream open, clients see it is alive. */
        keepAliveMs: z.number().int().min(1000).max(300_000).default(15_000),
        /** A client with this many bytes not yet taken by its socket is dropped (it is too slow). */
        maxBufferedBytes: z
          .number()
          .int()
          .min(16 * 1024)
          .default(1024 * 1024),
        maxClients: z.number().int().min(1).max(10_000).default(100),
      })
      .prefault({}),
    /**
     * HTTPS in the gateway itself, for sites without a reverse proxy (docs/security.md): PEM files,
     * read again on SIGHUP and `POST /api/admin/reload`. Absent: plain HTTP.
     */
    tls: z
      .strictObject({
        /** The certificate, with its intermediates after it. */
        cert: z.string().min(1),
        /** Its private key, unencrypted (readable by the gateway's user only). */
        key: z.string().min(1),
        /** Extra CA certificates to send in the chain (optional). */
        ca: z.string().min(1).optional(),
        /** Strict-Transport-Security max-age; 0 turns HSTS off (try HTTPS first with a short one). */
        hstsMaxAgeSec: z.number().int().min(0).max(63_072_000).default(31_536_000),
      })
      .optional(),
    /**
     * Reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDRs, docs/security.md): the
     * sign-in limit per address then counts the client's address, not the proxy's. Empty (default):
     * the header is ignored, since any client can send it.
     */
    trustProxy: z
      .array(
        z.string().refine(isAddressOrCidr, 'must be an IP address or a CIDR such as 10.0.0.0/8 or fd00::/8'),
      )
      .default([]),
    /** The web dashboard served at `/` (docs/dashboard.md). */
    dashboard: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** The built dashboard (`npm run build`); default dist/dashboards/web beside the gateway. */
        dir: z.string().min(1).optional(),
      })
      .prefault({}),
    /**
     * The simulators' HTTP control, when they run beside the gateway as their own process (the
     * compose `simulators` profile): the dashboard's Demo panel then triggers their faults through
     * `/api/demo` (engineer). `--demo` sets it to the simulators it starts itself.
     */
    demo: z.strictObject({ controlUrl: z.url({ protocol: /^https?$/ }).optional() }).prefault({}),
  })
  .refine((h) => h.adminToken === undefined || h.adminTokenSha256 === undefined, {
    path: ['adminTokenSha256'],
    message: 'give adminToken or adminTokenSha256, not both',
  });

/**
 * Several instances as one gateway (ADR 0150): on when `storage.postgres` is set. Devices are hashed
 * into `partitions`, each leased by one live member through PostgreSQL; a dead member's partitions
 * are taken over within `failoverMs`, replaying what it had not written to InfluxDB yet.
 */
export const clusterSchema = z.strictObject({
  /**
   * This instance's name (GATEWAY_INSTANCE_ID), unique per instance; required in cluster mode. When
   * set and `mqtt.clientId` is not, the MQTT client id becomes `facility-gateway-<instanceId>`, so
   * two instances on one broker never take over each other's session.
   */
  instanceId: id.optional(),
  /** Device partitions, fixed for the life of a cluster (recorded in PostgreSQL; a mismatch refuses to start). */
  partitions: z.number().int().min(1).max(4096).default(64),
  /** A dead member's partitions are taken over within this long (its lease length). */
  failoverMs: z.number().int().min(1000).max(600_000).default(15_000),
  /** How far back readings of partitions owned by others are kept for a takeover (default 4 × failoverMs). */
  replayWindowMs: duration.optional(),
  /** The replay window's byte arena (payloads of readings owned by others). */
  replayBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(1024 * 1024 * 1024)
    .default(32 * 1024 * 1024),
  /** Replay starts this much before the dead owner's durable watermark (clock-offset error). */
  replaySlackMs: duration.default(2_000),
});

export const storageSchema = z.strictObject({
  /** Shared state in PostgreSQL (GATEWAY_POSTGRES_URL): `postgres://user:pass@host:5432/db`. */
  postgres: z
    .string()
    .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL')
    .optional(),
});

/** Single sign-on with an OpenID Connect provider (authorization code with PKCE; docs/security.md). */
export const oidcSchema = z.strictObject({
  /** The provider's issuer URL (its discovery document is at `<issuer>/.well-known/openid-configuration`). */
  issuer: z.url({ protocol: /^https?$/ }),
  clientId: z.string().min(1),
  /** Absent: a public client (PKCE only). Or GATEWAY_OIDC_CLIENT_SECRET. */
  clientSecret: z.string().min(1).optional(),
  /** The gateway's address as browsers reach it; the provider redirects to `<publicUrl>/api/session/oidc/callback`. */
  publicUrl: z.url({ protocol: /^https?$/ }),
  scopes: z.string().default('openid profile email'),
  /** The claim holding the person's groups or roles (a string or a list of strings). */
  roleClaim: z.string().min(1).default('groups'),
  /** A value of that claim → the gateway's role; the strongest match wins; no match: refused. */
  roles: z.record(z.string(), z.enum(['viewer', 'engineer', 'admin'])),
  /** The claim that becomes the username (lower-cased). */
  usernameClaim: z.string().min(1).default('preferred_username'),
  /** The sign-in button's text. */
  label: z.string().min(1).max(60).default('Single sign-on'),
});

/** Personal accounts: session timeouts and the limits on guessing passwords (docs/security.md). */
export const accountsSchema = z.strictObject({
  sessions: z
    .strictObject({
      /** A session unused this long ends (30 min). */
      idleSeconds: z
        .number()
        .int()
        .min(10)
        .max(7 * 86_400)
        .default(1800),
      /** A session ends this long after sign-in, used or not (12 h: one shift). */
      absoluteSeconds: z
        .number()
        .int()
        .min(60)
        .max(30 * 86_400)
        .default(43_200),
      /** `auto`: the cookie is Secure when the request came over HTTPS; `always` behind a TLS proxy. */
      secureCookie: z.enum(['auto', 'always', 'never']).default('auto'),
    })
    .prefault({}),
  signIn: z
    .strictObject({
      /** Failed sign-ins of one account within the window that lock it. */
      maxFailuresPerAccount: z.number().int().min(1).max(1000).default(5),
      /** Failed sign-ins from one address (any account) within the window that lock the address. */
      maxFailuresPerAddress: z.number().int().min(1).max(10_000).default(30),
      windowSeconds: z.number().int().min(1).max(86_400).default(900),
      /** How long a lock lasts. */
      lockSeconds: z.number().int().min(1).max(86_400).default(900),
    })
    .prefault({}),
  /** OpenID Connect sign-in beside the local accounts (absent: local accounts only). */
  oidc: oidcSchema.optional(),
});

/** MQTT topic filters that spread one subscription's messages over several clients. */
const SHARED_SUBSCRIPTION = /^\$(share|queue)\//;

/**
 * The whole config. A key marked `.meta({ restart: true })` is built into sockets, files or the ingest
 * pipeline at start: a reload reports its change as needing a restart (config/restart.ts). Unmarked
 * keys (`devices`, `rules`, `rulesFile`) and `alarms.grouping` are applied by Gateway.reload().
 */
export const configSchema = z
  .strictObject({
    dataDir: z.string().default('./data').meta({ restart: true }),
    cluster: clusterSchema.prefault({}).meta({ restart: true }),
    storage: storageSchema.prefault({}).meta({ restart: true }),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .meta({ restart: true }),
    http: httpSchema.prefault({}).meta({ restart: true }),
    /** Personal accounts, sessions and sign-in limits (docs/security.md). */
    accounts: accountsSchema.prefault({}).meta({ restart: true }),
    mqtt: mqttSchema.prefault({}).meta({ restart: true }),
    broker: brokerSchema.prefault({}).meta({ restart: true }),
    ingest: ingestSchema.prefault({}).meta({ restart: true }),
    influx: influxSchema.prefault({}).meta({ restart: true }),
    outbox: outboxSchema.prefault({}).meta({ restart: true }),
    kinds: z.record(z.string().regex(ID_PATTERN), kindSchema).default({}).meta({ restart: true }),
    /** Applied live by Gateway.reload (registry and rules); operators change them from the dashboard too. */
    devices: z.array(deviceSchema).default([]),
    /** The rule pack (DOMAIN.md defaults), custom rules and overrides per site, device or critical asset. */
    rules: rulesSchema.prefault({}),
    /**
     * A YAML file holding what `rules` holds, read by loadConfig (relative to the config file) and
     * validated as `rules`; use one or the other.
     */
    rulesFile: z.string().min(1).optional(),
    alarms: alarmsSchema.prefault({}).meta({ restart: true }),
    /** Work orders from alarms: creation policy, priorities, service levels, contact chain (docs/workorders.md). */
    workorders: workordersSchema.prefault({}).meta({ restart: true }),
    /** OPC UA servers to subscribe to (adapters/opcua, docs/opcua.md); none by default. */
    opcua: opcuaSchema.meta({ restart: true }),
    /** Ticket webhooks (outgoing, inbound from a CMMS) and email; all off by default (docs/workorders.md). */
    notifications: notificationsSchema.prefault({}).meta({ restart: true }),
    /** Sparkplug B edge nodes on the MQTT connection (adapters/mqtt/sparkplug, docs/sparkplug.md); off by default. */
    sparkplug: sparkplugSchema.prefault({}).meta({ restart: true }),
    /** Wired M-Bus meters over a serial port or a serial-to-TCP converter (adapters/mbus, docs/mbus.md); none by default. */
    mbus: mbusSchema.meta({ restart: true }),
    /** Modbus TCP/RTU devices polled by the gateway (adapters/modbus, docs/modbus.md); on when it has connections. */
    modbus: modbusSchema.prefault({}).meta({ restart: true }),
    /**
     * What operators may not change from the dashboard or the API (docs/fleet.md "Pinning"); read on
     * every change, so a reload applies it.
     */
    fleet: fleetConfigSchema.prefault({}).meta({ restart: false }),
  })
  .superRefine((c, ctx) => {
    const clustered = c.storage.postgres !== undefined;
    if (clustered) {
      if (c.cluster.instanceId === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['cluster', 'instanceId'],
          message:
            'cluster mode (storage.postgres) needs a unique name per instance: set cluster.instanceId or GATEWAY_INSTANCE_ID',
        });
      if (c.mqtt.url === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['mqtt', 'url'],
          message:
            'cluster mode (storage.postgres) needs an external broker that every instance reads: the embedded ' +
            'broker lives in one instance and dies with it; set mqtt.url or GATEWAY_MQTT_URL (README: "Running several instances")',
        });
      // Sparkplug B is fine: every member decodes every message, its readings pass the ownership
      // gate like polled ones, and one member asks for a rebirth (ADR 0181).
      // Every member polls every device (ADR 0177); a serial line has one master, and a port
      // exists on one machine only: its devices would be processed only while that member owns them.
      c.modbus.connections.forEach((m, i) => {
        if (m.transport === 'rtu')
          ctx.addIssue({
            code: 'custom',
            path: ['modbus', 'connections', i, 'transport'],
            message:
              'in cluster mode every member polls every Modbus device, and a serial RTU line takes one master: ' +
              'connect it through a Modbus TCP gateway (transport tcp) that every member reaches (docs/deployment.md "Polled sources in a cluster")',
          });
      });
      c.mbus.connections.forEach((m, i) => {
        if (m.serial !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: ['mbus', 'connections', i, 'serial'],
            message:
              'in cluster mode every member polls every M-Bus meter, and a serial M-Bus line takes one master: ' +
              'connect it through a serial-to-TCP converter (tcp) that every member reaches and that serialises their connections (docs/deployment.md "Polled sources in a cluster")',
          });
      });
    }
    c.mqtt.topics.forEach((t, i) => {
      if (SHARED_SUBSCRIPTION.test(t))
        ctx.addIssue({
          code: 'custom',
          path: ['mqtt', 'topics', i],
          message: clustered
            ? 'cluster mode hands each device to one member itself and needs every member to read every ' +
              'message (ADR 0150); subscribe without $share/$queue'
            : "a shared subscription hands one device's readings to several instances in turn: consumption " +
              'would be booked twice, rules would see half of each device and every instance would raise its ' +
              'own alarms; subscribe without $share/$queue, or run a cluster (storage.postgres, README: "Running several instances")',
        });
    });
    // An escalation contact's channels must exist, or its escalations would go nowhere unnoticed.
    const hooks = new Set(c.notifications.webhooks.map((w) => w.name));
    const mail = c.notifications.email;
    if (mail.enabled && !hasMailRecipients(mail) && !c.workorders.contacts.some((k) => k.email))
      ctx.addIssue({
        code: 'custom',
        path: ['notifications', 'email', 'to'],
        message: 'email is enabled but has no recipients (to, byPriority, safety or a contact email)',
      });
    c.workorders.contacts.forEach((k, i) => {
      if (k.webhook !== undefined && !hooks.has(k.webhook))
        ctx.addIssue({
          code: 'custom',
          path: ['workorders', 'contacts', i, 'webhook'],
          message: `no webhook named ${k.webhook} under notifications.webhooks`,
        });
      if (k.email !== undefined && !c.notifications.email.enabled)
        ctx.addIssue({
          code: 'custom',
          path: ['workorders', 'contacts', i, 'email'],
          message: 'needs notifications.email.enabled (and its smtp settings)',
        });
    });
  });

export type GatewayConfig = z.infer<typeof configSchema>;
export type MqttConfig = z.infer<typeof mqttSchema>;
export type BrokerConfig = z.infer<typeof brokerSchema>;
export type IngestConfig = z.infer<typeof ingestSchema>;
export type InfluxConfig = z.infer<typeof influxSchema>;
export type OutboxConfig = z.infer<typeof outboxSchema>;
export type DeviceConfig = z.infer<typeof deviceSchema>;
export type KindConfig = z.infer<typeof kindSchema>;
export type TokenConfig = z.infer<typeof tokenSchema>;
export type LiveConfig = z.infer<typeof httpSchema>['live'];
export type DashboardConfig = z.infer<typeof httpSchema>['dashboard'];
export type TlsConfig = NonNullable<z.infer<typeof httpSchema>['tls']>;
