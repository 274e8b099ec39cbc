import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from './config/schema.js';
import { ConfigError, loadConfig, type ConfigProblem } from './config/load.js';
import type { Logger } from './core/log.js';
import type { Component, ComponentHealth } from './core/types.js';
import { createMetrics, registerIngestMetrics, registerOutboxMetrics } from './core/metrics.js';
import { Outbox } from './storage/outbox.js';
import { DeviceRegistry } from './registry/registry.js';
import { Deriver } from './ingest/derive.js';
import { IngestPipeline, type RejectPublisher } from './ingest/pipeline.js';
import { InfluxWriter } from './sinks/influx/index.js';
import { InfluxReader } from './sinks/influx/query.js';
import { buildApp, type AppDeps } from './http/app.js';
import { TokenStore } from './http/auth.js';
import { TokenDb } from './http/token-db.js';
import { TicketLatency } from './workorders/latency.js';
import { openDb, type Db } from './storage/db.js';
import { WalCheckpointer } from './storage/wal-checkpointer.js';
import { ALARM_MIGRATIONS, AlarmService, alarmToJson, type AlarmEvent } from './alarms/index.js';
import { alarmEventLine } from './alarms/line-protocol.js';
import { RulesRuntime } from './rules/runtime.js';
import { readRatesFromHistory } from './rules/read-rate.js';
import { measurementOf } from './ingest/catalogue.js';
import { RegistryFacts, factsOf } from './registry/facts.js';
import { LiveHub } from './live/hub.js';
import { ReadingThrottle } from './live/reading-throttle.js';
import {
  MaintenancePlanner,
  WORKORDER_MIGRATIONS,
  WorkOrderService,
  maintenanceCalendar,
  ticketEventLine,
  ticketToJson,
} from './workorders/index.js';
import { NotificationService, NotifyQueue, registerNotificationMetrics } from './notifications/index.js';
import { ReportScheduler } from './workorders/report-schedule.js';
import { ReportStore } from './workorders/report-store.js';
import { SmtpAndWebhookSender } from './workorders/report-delivery.js';
import type { EmbeddedBroker } from '../../adapters/broker/embedded.js';
import { MqttSource } from '../../adapters/mqtt/source.js';
import type { OpcuaSource } from '../../adapters/opcua/source.js';
import type { SparkplugIngest } from '../../adapters/mqtt/sparkplug/ingest.js';

/**
 * The optional adapters, loaded only when the config uses them: node-opcua alone adds about
 * 25 MB of heap and 80 MB of resident memory to a process, aedes and the Sparkplug B protobuf
 * codec a few MB more, which a gateway that does not use them should not carry.
 */
const optionalAdapters = {
  broker: () => import('../../adapters/broker/embedded.js'),
  opcua: () => import('../../adapters/opcua/source.js'),
  sparkplug: async () => ({
    ...(await import('../../adapters/mqtt/sparkplug/ingest.js')),
    ...(await import('../../adapters/mqtt/sparkplug/metrics.js')),
  }),
};

/**
 * The composition root: builds every stage from the config, wires them one way
 * (sources → ingest → outbox → InfluxDB; ingest → registry), starts them in order and stops
 * them in reverse. Constructors only store dependencies; I/O happens in start().
 */
export class Gateway {
  readonly metrics: Registry;
  readonly outbox: Outbox;
  readonly registry: DeviceRegistry;
  readonly tokens = new TokenStore();
  /** Tokens created over `/api/admin/tokens` (tokens.db). */
  tokenDb?: TokenDb;
  broker?: EmbeddedBroker;
  mqtt?: MqttSource;
  /** One per configured OPC UA endpoint; each connects and retries on its own. */
  opcua: OpcuaSource[] = [];
  /** Sparkplug B on the MQTT connection, when `sparkplug.enabled`. */
  sparkplug?: SparkplugIngest;
  influx?: InfluxWriter;
  pipeline?: IngestPipeline;
  alarms?: AlarmService;
  rules?: RulesRuntime;
  workorders?: WorkOrderService;
  maintenance?: MaintenancePlanner;
  /** Ticket webhooks and email, queued in workorders.db with the ticket changes. */
  notifications?: NotificationService;
  /** The monthly report, generated and delivered after each month (workorders.report). */
  reports?: ReportScheduler;
  /** Live events (readings, alarms, tickets) for the HTTP stream and any other subscriber. */
  readonly hub: LiveHub;
  app?: FastifyInstance;
  /** The admin token in force (from the config or generated on first start); unknown when configured as a hash. */
  adminToken?: string;
  /** The simulators' HTTP control in demo mode: the dashboard's Demo panel reaches it through `/api/demo`. */
  demoControlUrl?: string | null;
  private started: Component[] = [];
  private httpAddress?: string;
  private alarmsDb?: Db;
  private workordersDb?: Db;
  private workordersTimer?: NodeJS.Timeout;
  private unsubscribe: Array<() => void> = [];
  private current: GatewayConfig;
  /** The config file the gateway was started with: what a reload reads again (undefined: defaults and environment only). */
  configPath: string | undefined;
  private readonly prepare: (cfg: GatewayConfig) => GatewayConfig;

  constructor(
    cfg: GatewayConfig,
    private readonly log: Logger,
    opts: GatewayOptions = {},
  ) {
    this.current = cfg;
    this.configPath = opts.configPath;
    this.prepare = opts.prepare ?? ((c) => c);
    this.metrics = createMetrics();
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

  async start(): Promise<void> {
    const { cfg, log } = this;
    mkdirSync(cfg.dataDir, { recursive: true });
    if (cfg.http.adminTokenSha256 !== undefined)
      this.tokens.addHash('admin', 'admin', cfg.http.adminTokenSha256);
    else {
      this.adminToken = this.loadAdminToken();
      this.tokens.add('admin', 'admin', this.adminToken);
    }
    for (const t of cfg.http.tokens) {
      if (t.token !== undefined) this.tokens.add(t.name, t.role, t.token);
      else this.tokens.addHash(t.name, t.role, t.tokenSha256!);
    }
    // Tokens created over the API, hashed in tokens.db, beside the config's.
    this.tokenDb = new TokenDb({
      file: join(cfg.dataDir, 'tokens.db'),
      tokens: this.tokens,
      configTokens: () => [
        { name: 'admin', role: 'admin' },
        ...cfg.http.tokens.map((t) => ({ name: t.name, role: t.role })),
      ],
      log: log.child({ module: 'tokens' }),
    });
    await this.startComponent(this.tokenDb);

    await this.startComponent(this.outbox);
    const deriver = new Deriver(this.outbox, this.registry);
    deriver.load();
    // With InfluxDB off nothing needs to wait for InfluxDB: lines are not stored, acks still
    // follow the (then empty) commits so the ack path stays the same.
    const sink = cfg.influx.enabled ? this.outbox : { append: () => {}, appendBytes: () => {} };

    // Alarms keep their own database: their history must not share the fate of the outbox,
    // which is emptied as InfluxDB confirms.
    // With rule state committed with the readings, a rule's raise is durable there and an alarm lost
    // from alarms.db is raised again at start: its transitions commit without an fsync on the event
    // loop (synchronous=NORMAL, checkpoints on a thread); people's actions still wait for the disk (ADR 0082).
    const alarmsFile = join(cfg.dataDir, 'alarms.db');
    const alarmsFast = cfg.alarms.ruleState === 'with-readings';
    this.alarmsDb = openDb(alarmsFile, ALARM_MIGRATIONS, alarmsFast ? 'normal' : 'full');
    if (alarmsFast)
      await this.startComponent(
        new WalCheckpointer(this.alarmsDb, alarmsFile, log.child({ module: 'alarms' })),
      );
    const alarms = new AlarmService({
      db: this.alarmsDb,
      config: cfg.alarms,
      log: log.child({ module: 'alarms' }),
    });
    this.alarms = alarms;
    // Every alarm transition goes through the outbox like a reading, so it is as durable.
    this.unsubscribe.push(
      alarms.onEvent((e) => {
        sink.append(alarmEventLine(e));
        this.hub.publish('alarm', liveAlarm(e), e.alarm.site);
      }),
    );
    // Before the alarms, so they stop after them: the alarms' last transitions at shutdown still
    // reach a running work-order service, which handles them as it stops.
    if (cfg.workorders.enabled) await this.startWorkorders(alarms);
    await this.startComponent(alarms);
    const rules = new RulesRuntime({
      rules: cfg.rules,
      facts: new RegistryFacts(this.registry),
      store: alarms,
      listener: alarms.handle,
      tickMs: cfg.alarms.tickMs,
      saveStateMs: cfg.alarms.saveRuleStateMs,
      log: log.child({ module: 'rules' }),
      onTick: (now) => alarms.tick(now),
      // Rule state committed with the readings that changed it (ADR 0080).
      durable: cfg.alarms.ruleState === 'with-readings' ? this.outbox : undefined,
    });
    this.rules = rules;
    this.unsubscribe.push(this.registry.onChange((e) => rules.registerDevice(factsOf(e))));
    await this.startComponent(rules);
    const live = new ReadingThrottle(this.hub, cfg.http.live.readingIntervalMs);
    await this.startComponent(live);

    if (!cfg.mqtt.url) {
      const { EmbeddedBroker } = await optionalAdapters.broker();
      this.broker = new EmbeddedBroker(cfg.broker, log.child({ module: 'broker' }));
      await this.startComponent(this.broker);
    }
    const mqttCfg = { ...cfg.mqtt, url: this.mqttUrl };
    if (this.broker && mqttCfg.username === undefined) {
      // Our own subscriber signs in to the embedded broker like a device would.
      mqttCfg.username = cfg.broker.username;
      mqttCfg.password = cfg.broker.password;
    }
    // Sparkplug B: decoded on the MQTT source's connection, readings into the same pipeline.
    const spb = cfg.sparkplug.enabled ? await optionalAdapters.sparkplug() : undefined;
    const sparkplug = spb
      ? new spb.SparkplugIngest(
          cfg.sparkplug,
          (): IngestPipeline => pipeline,
          this.registry,
          log.child({ module: 'sparkplug' }),
        )
      : undefined;
    const mqtt: MqttSource = new MqttSource(
      mqttCfg,
      (): IngestPipeline => pipeline,
      this.outbox,
      log.child({ module: 'mqtt' }),
      sparkplug,
    );
    const rejects: RejectPublisher = mqtt;
    const pipeline: IngestPipeline = new IngestPipeline(cfg, this.registry, deriver, sink, rejects, log);
    pipeline.addListener(this.registry);
    // After the registry, so a reading's device facts are known before its rules run.
    pipeline.addListener(rules);
    pipeline.addListener(live);
    this.pipeline = pipeline;
    registerIngestMetrics(this.metrics, () => this.pipeline);
    registerOutboxMetrics(this.metrics, this.outbox);

    this.influx = new InfluxWriter(cfg.influx, this.outbox, log, this.metrics);
    await this.startComponent(this.influx);

    if (spb && sparkplug) {
      this.sparkplug = sparkplug;
      spb.registerSparkplugMetrics(this.metrics, () => this.sparkplug);
      await this.startComponent(sparkplug);
    }
    this.mqtt = mqtt;
    await this.startComponent(mqtt);

    // start() only prepares the PKI and returns: an unreachable server shows in health and is
    // retried in the background, it never holds up or stops the gateway.
    this.opcua = [];
    if (cfg.opcua.length) {
      const { OpcuaSource } = await optionalAdapters.opcua();
      for (const ep of cfg.opcua) {
        const src = new OpcuaSource(
          ep,
          () => pipeline,
          cfg.dataDir,
          log.child({ module: 'opcua', endpoint: ep.name }),
        );
        this.opcua.push(src);
        await this.startComponent(src);
      }
    }

    // The monthly report generated after each month and delivered by the due day.
    const reportStore = this.workordersDb ? new ReportStore(this.workordersDb) : undefined;
    const reportSources = this.reportDeps(alarms, rules);
    if (reportStore && reportSources && this.workorders) {
      const wo = this.workorders;
      this.reports = new ReportScheduler({
        store: reportStore,
        config: cfg.workorders.report,
        sources: reportSources,
        sender: new SmtpAndWebhookSender(cfg.notifications.email, cfg.notifications.webhooks),
        sites: () => new Set(this.registry.list().map((d) => d.site)),
        raiseTicket: (title, note, site) => wo.create({ title, site, class: 'key', note }, 'system').id,
        log: log.child({ module: 'reports' }),
      });
      await this.startComponent(this.reports);
    }

    this.app = buildApp({
      log,
      metrics: this.metrics,
      tokens: this.tokens,
      registry: this.registry,
      health: () => this.health(),
      alarms: { service: alarms, rules },
      tickets: this.workorders,
      notifications: this.notifications,
      reports: reportSources,
      reportStatus: this.reports && reportStore ? { scheduler: this.reports, store: reportStore } : undefined,
      tokenDb: this.tokenDb,
      live: { hub: this.hub, cfg: cfg.http.live },
      admin: { reload: () => this.reloadFromFile() },
      reader: cfg.influx.enabled ? new InfluxReader(cfg.influx) : undefined,
      dashboard: cfg.http.dashboard,
      demo: { controlUrl: () => this.demoControlUrl ?? cfg.http.demo.controlUrl },
    });
    this.httpAddress = await this.app.listen({ host: cfg.http.host, port: cfg.http.port });
    log.info({ url: this.httpAddress }, 'HTTP API listening');
  }

  /**
   * Reads the config file again (the same loader as at start, environment on top) and applies it.
   * An invalid file changes nothing: the gateway keeps running on the config in force.
   */
  reloadFromFile(): ReloadResult {
    let next: GatewayConfig;
    try {
      next = this.prepare(loadConfig(this.configPath));
    } catch (err) {
      const problems: ConfigProblem[] =
        err instanceof ConfigError ? err.problems : [{ path: '(file)', message: (err as Error).message }];
      this.log.error(
        { file: this.configPath ?? null, problems },
        `config reload rejected, still running on the previous config: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
      );
      return { ok: false, problems };
    }
    return { ok: true, ...this.reload(next) };
  }

  /**
   * Applies what can change while running: the rules (every unchanged (device, rule) keeps its
   * state: running delays, active alarms) and the alarm grouping. Everything else is only reported,
   * because sockets, files and the ingest pipeline are built from it at start.
   */
  reload(next: GatewayConfig): ReloadOutcome {
    if (!this.rules || !this.alarms) throw new Error('the gateway is not running');
    const cur = this.current;
    const applied: string[] = [];
    if (!sameJson(cur.rules, next.rules)) {
      this.rules.reload(next.rules);
      applied.push('rules');
    }
    if (!sameJson(cur.alarms.grouping, next.alarms.grouping)) {
      this.alarms.setGrouping(next.alarms.grouping);
      applied.push('alarms.grouping');
    }
    this.current = { ...cur, rules: next.rules, alarms: { ...cur.alarms, grouping: next.alarms.grouping } };
    const restartNeeded = changedPaths(this.current, next, '', 2);
    if (restartNeeded.length > 0)
      this.log.warn(
        { restartNeeded },
        `config reloaded; changed, restart needed to apply: ${restartNeeded.join(', ')}`,
      );
    this.log.info({ file: this.configPath ?? null, applied }, 'config reloaded');
    return { applied, restartNeeded };
  }

  /**
   * Work orders keep their own database (records that must outlive alarm history) and hear every
   * alarm event after commit; a timer escalates missed deadlines.
   */
  private async startWorkorders(alarms: AlarmService): Promise<void> {
    const { cfg, log } = this;
    this.workordersDb = openDb(join(cfg.dataDir, 'workorders.db'), WORKORDER_MIGRATIONS);
    const rules = new Map([...cfg.rules.pack, ...cfg.rules.custom].map((r) => [r.id, r]));
    const notifications = new NotificationService({
      queue: new NotifyQueue(this.workordersDb),
      config: cfg.notifications,
      log: log.child({ module: 'notifications' }),
    });
    this.notifications = notifications;
    registerNotificationMetrics(this.metrics, () => this.notifications);
    const wo = new WorkOrderService({
      inTransaction: notifications.enqueue,
      db: this.workordersDb,
      config: cfg.workorders,
      log: log.child({ module: 'workorders' }),
      ruleInfo: (id) => {
        const r = rules.get(id);
        const metric = r && 'metric' in r && typeof r.metric === 'string' ? r.metric : undefined;
        return r ? { description: r.description, metric } : undefined;
      },
      history: cfg.influx.enabled
        ? (() => {
            const reader = new InfluxReader(cfg.influx);
            // One measurement per kind, `-` as `_` (CONTRACT.md).
            return (q) => reader.readings({ ...q, measurement: q.kind.replace(/-/g, '_') });
          })()
        : undefined,
      deviceInfo: (site, device) => {
        const d = this.registry.lookup(site, device);
        return d ? { location: d.location, latest: Object.fromEntries(d.latest) } : undefined;
      },
    });
    this.workorders = wo;
    const latency = new TicketLatency(this.metrics);
    this.unsubscribe.push(alarms.onEvent(latency.onAlarm), wo.onChange(latency.onTicket));
    this.unsubscribe.push(alarms.onEvent(wo.onAlarmEvent));
    this.unsubscribe.push(
      wo.onChange((e) =>
        this.hub.publish(
          'ticket',
          { event: e.type, ticket: ticketToJson(e.ticket, false), entries: e.entries },
          e.ticket.site,
        ),
      ),
    );
    // Every committed ticket change reaches InfluxDB (`ticket_event`) through the outbox, like alarm events.
    if (cfg.influx.enabled) this.unsubscribe.push(wo.onChange((e) => this.outbox.append(ticketEventLine(e))));
    await this.startComponent(wo);
    // After the work orders, so it stops before them: no delivery is in flight when their database closes.
    await this.startComponent(notifications);
    const planner = new MaintenancePlanner({
      service: wo,
      db: this.workordersDb,
      config: cfg.workorders.maintenance,
      targets: () =>
        this.registry
          .list()
          .map((d) => ({ site: d.site, device: d.id, kind: d.kind, location: d.location ?? undefined })),
      log: log.child({ module: 'maintenance' }),
    });
    this.maintenance = planner;
    await this.startComponent(planner);
    this.workordersTimer = setInterval(() => {
      try {
        planner.tick();
        wo.tick();
      } catch (err) {
        log.error({ err }, 'work-order escalation tick failed');
      }
    }, cfg.workorders.tickMs);
    this.workordersTimer.unref();
  }

  /** The monthly report reads tickets, alarms and read rates; the calendar the planner and tickets. */
  private reportDeps(alarms: AlarmService, rules: RulesRuntime): AppDeps['reports'] {
    const wo = this.workorders;
    const planner = this.maintenance;
    if (!wo) return undefined;
    return {
      tickets: wo,
      timeZone: this.cfg.workorders.report.timeZone,
      alarmsBetween: (from, to) => alarms.raisedBetween(from, to),
      readRates: () => rules.readRates(),
      readRatesEnded: this.cfg.influx.enabled
        ? (from, to) => {
            const reader = new InfluxReader(this.cfg.influx);
            return readRatesFromHistory(rules.readRateSubjects(), from, to, (kind, start, end) =>
              reader.reportedDevices(measurementOf(kind), start, end),
            );
          }
        : undefined,
      calendar: planner
        ? (from, to) =>
            maintenanceCalendar(wo.maintenanceDue(from, to), planner.upcoming(from, to), (id) =>
              planner.titleOf(id),
            )
        : undefined,
    };
  }

  private async startComponent(c: Component): Promise<void> {
    await c.start();
    this.started.push(c);
  }

  /** Every component's health, by name. */
  health(): Record<string, ComponentHealth> {
    const out: Record<string, ComponentHealth> = {};
    for (const c of this.started) out[c.name] = c.health();
    if (this.pipeline) {
      const c = this.pipeline.counters;
      const rejected = Object.values(c.rejected).reduce((a, b) => a + b, 0);
      out.ingest = { state: 'ok', messages: c.messages, accepted: c.accepted, rejected, readings: c.values };
    }
    out.registry = { state: 'ok', devices: this.registry.size };
    return out;
  }

  /**
   * Stops in reverse order: HTTP first, then the sources (which wait until everything they
   * handed over is durable and acknowledged), then the writer, the live stream, the rules (timers,
   * then a last save of their state), the alarms (their last transitions reach the outbox) and
   * the outbox itself.
   */
  async stop(): Promise<void> {
    await this.app?.close();
    clearInterval(this.workordersTimer);
    this.workordersTimer = undefined;
    for (const c of [...this.started].reverse()) {
      try {
        await c.stop();
      } catch (err) {
        this.log.error({ err, component: c.name }, 'component failed to stop cleanly');
      }
    }
    this.started = [];
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    this.alarmsDb?.close();
    this.alarmsDb = undefined;
    this.workordersDb?.close();
    this.workordersDb = undefined;
  }

  private loadAdminToken(): string {
    if (this.cfg.http.adminToken) return this.cfg.http.adminToken;
    const file = join(resolve(this.cfg.dataDir), 'admin-token');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    const token = randomBytes(24).toString('base64url');
    writeFileSync(file, token + '\n', { mode: 0o600 });
    this.log.warn({ file }, 'no admin token configured: generated one and stored it in this file');
    return token;
  }
}

export interface GatewayOptions {
  /** The config file to read again on reload. */
  configPath?: string;
  /** Applied to a reloaded config as it was to the first one (demo devices, say). */
  prepare?: (cfg: GatewayConfig) => GatewayConfig;
}

/** What a reload did: settings applied now, and settings that changed but need a restart. */
export interface ReloadOutcome {
  applied: string[];
  restartNeeded: string[];
}

export type ReloadResult = ({ ok: true } & ReloadOutcome) | { ok: false; problems: ConfigProblem[] };

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Key paths (down to `depth` levels) whose values differ; `rulesFile` is covered by `rules`. */
function changedPaths(a: unknown, b: unknown, prefix: string, depth: number): string[] {
  if (sameJson(a, b)) return [];
  if (depth === 0 || !isPlainObject(a) || !isPlainObject(b)) return [prefix];
  const out: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (prefix === '' && k === 'rulesFile') continue;
    out.push(...changedPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k, depth - 1));
  }
  return out;
}

/** An alarm event as the live stream sends it: the alarm as the API shows it, and what happened. */
function liveAlarm(e: AlarmEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    event: e.type,
    ts: new Date(e.ts).toISOString(),
    alarm: alarmToJson(e.alarm),
  };
  if (e.user !== undefined) out.user = e.user;
  if (e.note !== undefined) out.note = e.note;
  return out;
}
