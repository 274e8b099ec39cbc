import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from './config/schema.js';
import type { Logger } from './core/log.js';
import { createMetrics } from './core/metrics.js';
import { Outbox } from './storage/outbox.js';
import { DeviceRegistry } from './registry/registry.js';
import type { IngestPipeline } from './ingest/pipeline.js';
import type { InfluxWriter } from './sinks/influx/index.js';
import { TokenStore } from './http/auth.js';
import type { TokenAdmin } from './http/token-db.js';
import type { ConfigTokens } from './access.js';
import type { AlarmService } from './alarms/index.js';
import type { RulesRuntime } from './rules/runtime.js';
import { LiveHub } from './live/hub.js';
import type { WorkordersModule } from './workorders/module.js';
import type { SourcesModule } from './sources/module.js';
import type { ReportScheduler } from './workorders/report-schedule.js';
import type { Source } from './core/source.js';
import type { SharedDb } from './storage/sql/shared-db.js';
import type { AccountService } from './accounts/service.js';
import type { FleetService } from './fleet/service.js';
import type { EmbeddedBroker } from '../../adapters/broker/embedded.js';
import type { MqttSource } from '../../adapters/mqtt/source.js';
import type { OpcuaSource } from '../../adapters/opcua/source.js';
import type { SparkplugIngest } from '../../adapters/mqtt/sparkplug/ingest.js';

/**
 * What the running gateway shows of itself (the HTTP layer, the demo and tests read it): the
 * shared parts, and typed views of the modules and sources the composition root started.
 */
export abstract class GatewayParts {
  readonly metrics: Registry = createMetrics();
  readonly outbox: Outbox;
  readonly registry: DeviceRegistry;
  readonly tokens = new TokenStore();
  /** Tokens created over `/api/admin/tokens` (tokens.db; the shared table in cluster mode). */
  tokenDb?: TokenAdmin;
  influx?: InfluxWriter;
  /** The shared state store: `<dataDir>/shared.db`, or PostgreSQL with `storage.postgres` (storage/sql). */
  shared?: SharedDb;
  /** Personal accounts and their sessions, in the shared store (docs/security.md). */
  accounts?: AccountService;
  /** Runtime configuration: what operators changed from the dashboard, layered over the config file. */
  fleet?: FleetService;
  pipeline?: IngestPipeline;
  alarms?: AlarmService;
  rules?: RulesRuntime;
  /** The monthly report, generated and delivered after each month (workorders.report). */
  reports?: ReportScheduler;
  /** Live events (readings, alarms, tickets) for the HTTP stream and any other subscriber. */
  readonly hub: LiveHub;
  app?: FastifyInstance;
  /** The simulators' HTTP control in demo mode: the dashboard's Demo panel reaches it through `/api/demo`. */
  demoControlUrl?: string | null;
  protected access?: ConfigTokens;
  protected wo?: WorkordersModule;
  protected sources?: SourcesModule;
  protected httpAddress?: string;
  protected current: GatewayConfig;

  constructor(cfg: GatewayConfig, log: Logger) {
    this.current = cfg;
    this.outbox = new Outbox(cfg.outbox, cfg.dataDir, log.child({ module: 'outbox' }));
    this.registry = new DeviceRegistry(cfg.devices, {
      kinds: cfg.kinds,
      log: log.child({ module: 'registry' }),
    });
    this.hub = new LiveHub(log.child({ module: 'live' }));
  }

  /** The config in force: as started, with the rules and alarm grouping of the last reload. */
  get cfg(): GatewayConfig {
    return this.current;
  }
  get httpUrl(): string | undefined {
    return this.httpAddress;
  }
  get mqttUrl(): string {
    return this.cfg.mqtt.url ?? `mqtt://127.0.0.1:${this.broker?.port ?? this.cfg.broker.port}`;
  }
  /** The admin token in force (from the config or generated on first start); unknown when configured as a hash. */
  get adminToken(): string | undefined {
    return this.access?.adminToken;
  }
  get workorders(): WorkordersModule['service'] | undefined {
    return this.wo?.service;
  }
  get maintenance(): WorkordersModule['maintenance'] | undefined {
    return this.wo?.maintenance;
  }
  /** Ticket webhooks and email, queued in workorders.db with the ticket changes. */
  get notifications(): WorkordersModule['notifications'] | undefined {
    return this.wo?.notifications;
  }
  // The sources by the names their adapters give them (adapters/*/index.ts); the types are theirs.
  get broker(): EmbeddedBroker | undefined {
    return this.sources?.byName('broker') as EmbeddedBroker | undefined;
  }
  get mqtt(): MqttSource | undefined {
    return this.sources?.byName('mqtt') as MqttSource | undefined;
  }
  /** Sparkplug B on the MQTT connection, when `sparkplug.enabled`. */
  get sparkplug(): SparkplugIngest | undefined {
    return this.sources?.byName('sparkplug') as SparkplugIngest | undefined;
  }
  /** One per configured OPC UA endpoint; each connects and retries on its own. */
  get opcua(): OpcuaSource[] {
    return (this.sources?.sources ?? []).filter((s) => s.name.startsWith('opcua:')) as OpcuaSource[];
  }
  /** One per configured M-Bus connection (serial port or serial-to-TCP converter). */
  get mbus(): Source[] {
    return (this.sources?.sources ?? []).filter((s) => s.name.startsWith('mbus:'));
  }
}
