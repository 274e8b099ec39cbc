import { mkdirSync } from 'node:fs';
import { configSchema, type GatewayConfig } from './config/schema.js';
import { restartNeeded as restartPaths } from './config/restart.js';
import { ConfigError, loadConfig, type ConfigProblem } from './config/load.js';
import type { Logger } from './core/log.js';
import type { ComponentHealth } from './core/types.js';
import { Lifecycle } from './core/lifecycle.js';
import { registerIngestMetrics } from './ingest/metrics.js';
import { registerOutboxMetrics } from './storage/outbox-metrics.js';
import { createBus, type GatewayBus } from './events.js';
import { GatewayParts } from './gateway-parts.js';
import { Deriver } from './ingest/derive.js';
import { IngestPipeline } from './ingest/pipeline.js';
import { InfluxWriter } from './sinks/influx/index.js';
import { InfluxReader } from './sinks/influx/query.js';
import { buildApp } from './http/app.js';
import { readTlsFiles, secureContextOptions, ServedCertificate, type SecureServer } from './http/tls.js';
import { startAccess } from './access.js';
import { createAlarmsModule } from './alarms/module.js';
import { createRulesModule } from './rules/module.js';
import { connectLive } from './live/module.js';
import { ReadingThrottle } from './live/reading-throttle.js';
import { startWorkordersModule } from './workorders/module.js';
import { reportDeps, startReportScheduler } from './reports.js';
import { SourcesModule } from './sources/module.js';
import { SOURCES, type SourceRegistry } from './sources/registry.js';
import { SharedDb } from './storage/sql/shared-db.js';
import type { SharedMigration } from './storage/sql/migrations.js';
import { CLUSTER_MIGRATIONS, createCluster } from './cluster/module.js';
import {
  createClusterView,
  IncidentSync,
  incidentMetrics,
  PartitionRecords,
  VIEW_STEPS,
} from './view/module.js';
import { createClusterQuiet, QUIET_STEPS } from './quiet/module.js';
import { ACCOUNT_STEPS } from './accounts/tables.js';
import { startAccounts } from './accounts/module.js';
import { FLEET_STEPS } from './fleet/migrations.js';
import { FleetService } from './fleet/service.js';
import { FleetStore } from './fleet/store.js';
import { factsOf } from './registry/facts.js';
import { TOKEN_STEPS } from './http/shared-tokens.js';
import { INBOUND_KEY_STEPS, SharedInboundKeys } from './http/inbound-keys.js';

/**
 * The tables of the shared state store (storage/sql), each module's migrations in one list. A
 * module that keeps shared state (accounts, runtime configuration, …) adds its steps here.
 */
const SHARED_STEPS: readonly SharedMigration[] = [
  ...CLUSTER_MIGRATIONS,
  ...ACCOUNT_STEPS,
  ...FLEET_STEPS,
  ...VIEW_STEPS,
  ...TOKEN_STEPS,
  ...INBOUND_KEY_STEPS,
  ...QUIET_STEPS,
];

/** Where lines go with InfluxDB off: nowhere, while acks still follow the (then empty) commits. */
const NO_SINK = { append: (): void => {}, appendBytes: (): void => {} };

/**
 * The composition root: builds each module from the config, wires them one way (sources → ingest
 * → outbox → InfluxDB; ingest → registry, rules, live; alarm → work orders → notifications, over
 * the event bus), starts them in order and stops them in reverse (core/lifecycle.ts).
 */
export class Gateway extends GatewayParts {
  /** The config file the gateway was started with: what a reload reads again (undefined: defaults and environment only). */
  configPath: string | undefined;
  private readonly lifecycle: Lifecycle;
  private readonly bus: GatewayBus;
  private readonly sourceRegistry: SourceRegistry;
  private readonly prepare: (cfg: GatewayConfig) => GatewayConfig;
  /** The HTTPS certificate being served (undefined: plain HTTP). */
  certificate?: ServedCertificate;
  /** The config as the file gives it; operators' changes (fleet/) are layered over it. */
  private fileCfg: GatewayConfig;

  constructor(
    cfg: GatewayConfig,
    private readonly log: Logger,
    opts: GatewayOptions = {},
  ) {
    super(cfg, log);
    this.configPath = opts.configPath;
    this.fileCfg = cfg;
    this.prepare = opts.prepare ?? ((c) => c);
    this.sourceRegistry = opts.sources ?? SOURCES;
    this.lifecycle = new Lifecycle(log);
    this.bus = createBus(log);
  }

  async start(): Promise<void> {
    const { log, lifecycle, bus, outbox, registry, metrics } = this;
    const file = this.fileCfg;
    // First: a missing or broken certificate stops the start before anything else has started.
    const tlsCfg = file.http.tls;
    const tls = tlsCfg ? readTlsFiles(tlsCfg) : undefined;
    mkdirSync(file.dataDir, { recursive: true });
    this.shared = await lifecycle.start(
      new SharedDb(
        {
          dataDir: file.dataDir,
          postgresUrl: file.storage.postgres,
          log: log.child({ module: 'shared-db' }),
        },
        SHARED_STEPS,
      ),
    );
    // Operators' changes from the shared store, layered over the file before anything is built from it.
    const fleet = new FleetService(
      new FleetStore(this.shared.db),
      { fileConfig: () => this.fileCfg, apply: (next) => this.applyLayered(next) },
      log.child({ module: 'fleet' }),
    );
    this.fleet = await lifecycle.start(fleet);
    const cfg = (this.current = fleet.layered(file));
    const accounts = await startAccounts({ cfg, shared: this.shared, log, metrics });
    this.accounts = accounts.service;
    const access = await startAccess({
      cfg,
      tokens: this.tokens,
      log,
      lifecycle,
      shared: this.shared,
      metrics,
    });
    this.access = access.config;
    this.tokenDb = access.tokenDb;
    await lifecycle.start(outbox);
    // Cluster mode only (storage.postgres): membership, partition leases and the leader, before any
    // source reads the broker, so a duplicate instance id refuses to start without touching it.
    const cluster = createCluster({
      cfg,
      log,
      metrics,
      outbox,
      shared: () => this.shared!,
      httpUrl: () => this.httpAddress,
    });
    const lead = cluster?.lead;
    // Cluster mode only: this instance's alarm and ticket changes copied to PostgreSQL, the others'
    // read from there (ADR 0155). Started before the alarms and work orders so that it stops after
    // them and their last changes are written.
    const view = createClusterView({
      cfg,
      log,
      metrics,
      hub: this.hub,
      shared: () => this.shared!,
      partitionOf: cluster?.partitionOf,
    });
    if (view) {
      await lifecycle.start(view.writer);
      lifecycle.onStopped(bus.on('alarm', view.writer.onAlarm), bus.on('ticket', view.writer.onTicket));
    }
    // Clustered, the meters' indices and the rule state go through the tracker that moves them with
    // their partition (ADR 0151); otherwise straight to the outbox, as before.
    const deriver = new Deriver(cluster?.state ?? outbox, registry);
    deriver.load();
    const sink = cfg.influx.enabled ? outbox : NO_SINK;
    const alarms = (
      await createAlarmsModule({
        cfg,
        log,
        lifecycle,
        bus,
        sink,
        checkpointHost: outbox,
        sharedGrouping: view !== undefined,
        // Cluster mode: an ack is in the shared view before it is answered (ADR 0173).
        confirm: view && cluster ? (a, e) => view.writer.writeThroughAlarms(a, undefined, e) : undefined,
        leaseFresh: cluster ? () => cluster.member.leaseFresh() : undefined,
        holderOf: view ? async (id) => (await view.reader.holder('alarm', id))?.instanceId : undefined,
      })
    ).service;
    this.alarms = alarms;
    lifecycle.onStopped(...connectLive(bus, this.hub));
    // Before the alarms, so they stop after them: the alarms' last transitions at shutdown still
    // reach a running work-order service, which handles them as it stops.
    if (cfg.workorders.enabled) {
      const woSink = cfg.influx.enabled ? outbox : undefined;
      this.wo = await startWorkordersModule({
        cfg,
        log,
        lifecycle,
        bus,
        metrics,
        registry,
        sink: woSink,
        lead,
        checkpointHost: outbox,
        numbers: view?.numbers,
        // Cluster mode: an escalation reaches the shared view before its notification is queued
        // here, so a member cut off from PostgreSQL escalates nothing the next holder repeats; a
        // person's action is there before it is answered (ADR 0173).
        confirm: view && cluster ? (t, first) => view.writer.writeThrough(t, undefined, first) : undefined,
        leaseFresh: cluster ? () => cluster.member.leaseFresh() : undefined,
        holderOf: view ? async (id) => (await view.reader.holder('ticket', id))?.instanceId : undefined,
        // Cluster mode: a member back from a crash does not resend what another member took over,
        // and no two members attempt one notification (ADR 0179).
        notifyFence: view && cluster ? view.claims : undefined,
      });
    }
    await lifecycle.start(alarms);
    if (view) {
      // Cluster mode: incidents grouped over every member's raises (ADR 0170), started before the
      // rules raise anything and stopped after them.
      const incidents = new IncidentSync({
        store: view.incidents,
        copied: (ms) => view.writer.flushed(ms),
        alarms,
        tickets: this.wo?.service,
        grouping: () => this.current?.alarms.grouping ?? cfg.alarms.grouping,
        log: log.child({ module: 'cluster-incidents' }),
      });
      incidentMetrics(metrics, incidents);
      await lifecycle.start(incidents);
      lifecycle.onStopped(bus.on('alarm', incidents.onAlarm));
    }
    // An active alarm whose ticket a power cut took (workorders.db commits without an fsync on the
    // event loop, ADR 0091) gets it now, before the rules run. Clustered, this runs on the alarms
    // taken back when their partition is claimed (ADR 0160): the others may be held elsewhere now.
    if (!cluster) this.wo?.service.reconcileAlarms(alarms.activeAlarms());
    if (view) {
      // What a crash during a PostgreSQL outage took from the writer's queue, copied again (rows
      // another instance holds now are fenced, ADR 0160).
      view.writer.resync(
        alarms.list({ state: 'active' }),
        alarms.listIncidents().filter((i) => i.state === 'open'),
        this.wo?.service.unclosed() ?? [],
      );
      if (this.wo && cluster) {
        // The notification queue is copied too, so that the next holder of a ticket can deliver
        // what this instance leaves undelivered if it dies (ADR 0160 addendum 2).
        view.writer.resyncNotifications(this.wo.notifications.queue.list('pending', undefined, 10_000));
        lifecycle.onStopped(this.wo.notifications.onQueueChange(view.writer.onNotification));
      }
      await lifecycle.start(view.feed);
    }
    // Cluster mode only: shelves and maintenance windows set through any instance apply here too
    // (ADR 0163); loaded before the rules run, so the first alarms already honour them.
    const quiet = createClusterQuiet({ cfg, log, shared: () => this.shared!, alarms });
    if (quiet) await lifecycle.start(quiet.sync);
    if (view && cluster) {
      // Records live only on the owner of their device's partition (ADR 0160): this instance owns
      // none yet, so it holds none; claiming partitions brings theirs back (from here or elsewhere).
      const records = new PartitionRecords({
        instanceId: cfg.cluster.instanceId!,
        partitionOf: cluster.partitionOf,
        alarms,
        tickets: this.wo?.service,
        writer: view.writer,
        log: log.child({ module: 'cluster-records' }),
        owns: cluster.owns,
        owned: () => cluster.gate.ownedList(),
        db: () => this.shared!.db,
        leased: cluster.leased,
        // A dead holder's undelivered notifications are delivered from here (ADR 0160 addendum 2).
        live: cluster.live,
        notifications: this.wo?.notifications,
        // The adoption's wait for this instance's own queue runs inside a take, with no renewal
        // meanwhile: well within the lease (a take that outlasts it gives its partitions back).
        flushMs: Math.min(5000, Math.floor(cfg.cluster.failoverMs / 4)),
      });
      records.evict();
      if (this.wo) lifecycle.onStopped(this.wo.service.onChange(records.onTicket));
      cluster.attachRecords(records);
      await lifecycle.start(records);
    }
    const { rules, off } = createRulesModule({
      cfg,
      log,
      registry,
      alarms,
      durable: cluster?.state ?? outbox,
      owns: cluster?.owns,
    });
    this.rules = rules;
    lifecycle.onStopped(off);
    await lifecycle.start(rules);
    const live = await lifecycle.start(new ReadingThrottle(this.hub, cfg.http.live.readingIntervalMs));

    const sources = await SourcesModule.load(cfg, this.sourceRegistry);
    this.sources = sources;
    const pipeline = new IngestPipeline(cfg, registry, deriver, sink, sources.rejects, log);
    pipeline.addListener(registry);
    // After the registry, so a reading's device facts are known before its rules run.
    pipeline.addListener(rules);
    pipeline.addListener(live);
    this.pipeline = pipeline;
    // Clustered, the sources reach the pipeline through the ownership gate; otherwise directly, as before.
    cluster?.gate.attach(pipeline);
    // A takeover's replay writes zero consumption at the slots a meter's chain skipped (ADR 0177).
    cluster?.gate.attachMeters({
      chainEnd: (site, kind, device) => deriver.chainEnd(kind, `${site}/${device}`),
      zeroConsumption: (site, kind, device, ts) => pipeline.writeZeroConsumption(site, kind, device, ts),
    });
    registerIngestMetrics(metrics, () => this.pipeline);
    registerOutboxMetrics(metrics, outbox);
    this.influx = await lifecycle.start(new InfluxWriter(cfg.influx, outbox, log, metrics));
    if (cluster) {
      // Membership, leases and the leader, before any source reads the broker (a duplicate
      // instance id refuses to start without touching it), and after the deriver and the rules
      // exist: taking a partition restores its devices' state into them (ADR 0151). Stopped before
      // the writer, so a partition given back at stop has its readings in InfluxDB first.
      cluster.state.attach({
        restoreMeters: (m) => deriver.restore(m),
        restoreRules: (rows) => rules.replaceDevices(rows),
        parkRules: (which, on) => rules.park(which, on),
      });
      await lifecycle.start(cluster.member);
    }
    // Each source under its supervisor: one that fails to start or fails later shows as down in
    // health and is retried; it never stops the gateway or the other sources.
    const ctx = {
      pipeline: cluster?.gate ?? pipeline,
      outbox,
      presence: registry,
      log,
      metrics,
      dataDir: cfg.dataDir,
    };
    for (const s of sources.supervise(ctx, log)) await lifecycle.start(s);

    // The monthly report generated after each month and delivered by the due day.
    const reports = reportDeps(cfg, alarms, rules, this.wo, view?.reader);
    const reportStatus =
      this.wo && reports
        ? await startReportScheduler({ cfg, log, lifecycle, registry, wo: this.wo, sources: reports, lead })
        : undefined;
    this.reports = reportStatus?.scheduler;

    this.app = buildApp({
      log,
      metrics,
      tokens: this.tokens,
      registry,
      health: () => this.health(),
      alarms: { service: alarms, rules },
      tickets: this.workorders,
      view: view?.reader,
      inboundKeys: view ? new SharedInboundKeys(view.reader.instanceId, () => this.shared!.db) : undefined,
      quiet: quiet?.service,
      notifications: this.notifications,
      reports,
      reportStatus,
      tokenDb: this.tokenDb,
      accounts: {
        service: accounts.service,
        secureCookie: cfg.accounts.sessions.secureCookie,
        oidc: accounts.oidc,
      },
      live: { hub: this.hub, cfg: cfg.http.live },
      admin: { reload: () => this.reloadFromFile() },
      fleet: { fleet, config: () => this.current },
      reader: cfg.influx.enabled ? new InfluxReader(cfg.influx) : undefined,
      dashboard: cfg.http.dashboard,
      demo: { controlUrl: () => this.demoControlUrl ?? cfg.http.demo.controlUrl },
      trustProxy: cfg.http.trustProxy,
      https:
        tls && tlsCfg
          ? { options: secureContextOptions(tls), hstsMaxAgeSec: tlsCfg.hstsMaxAgeSec }
          : undefined,
    });
    this.httpAddress = await this.app.listen({ host: cfg.http.host, port: cfg.http.port });
    if (tls && tlsCfg)
      // Fastify built an https.Server from the `https` option; its type only says http.Server.
      this.certificate = new ServedCertificate(
        tlsCfg,
        tls,
        this.app.server as unknown as SecureServer,
        log,
        metrics,
      );
    log.info(
      { url: this.httpAddress, fingerprint256: tls?.fingerprint256 },
      tls ? 'HTTPS API listening' : 'HTTP API listening',
    );
  }

  /**
   * Reads the config file again (the same loader as at start, environment on top) and applies it.
   * An invalid file changes nothing: the gateway keeps running on the config in force.
   */
  reloadFromFile(): ReloadResult {
    // The certificate files first, whatever the config file holds: a renewed certificate must not
    // wait for a valid config (a failure is logged and counted by ServedCertificate).
    const cert = this.certificate?.reload();
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
    this.fileCfg = next;
    const outcome = this.reload(this.fleet ? this.fleet.layered(next) : next);
    if (cert === 'changed') outcome.applied.push('http.tls (certificate)');
    return { ok: true, ...outcome };
  }

  /** An operator's change (fleet/): applied live, or taken as the config in force before the rules run. */
  private applyLayered(next: GatewayConfig): void {
    if (!this.rules || !this.alarms) {
      this.current = next;
      return;
    }
    this.reload(next);
  }

  /**
   * Applies what can change while running: the rules (every unchanged (device, rule) keeps its
   * state: running delays, active alarms), the declared devices (registry and rule facts) and the
   * alarm grouping. Everything else is only reported,
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
    if (!sameJson(cur.devices, next.devices)) {
      // Devices live: the registry takes the declared settings, the rules bind to the new facts
      // (a device's rule state is kept where its effective rules did not change).
      this.applyDevices(cur.devices, next.devices);
      if (!applied.includes('rules')) this.rules.reload(next.rules);
      applied.push('devices');
    }
    if (!sameJson(cur.workorders.contacts, next.workorders.contacts)) {
      // The next escalation reaches the new chain (an operator's change, or the on-call rota).
      this.wo?.service.setContacts(next.workorders.contacts);
      applied.push('workorders.contacts');
    }
    if (!sameJson(cur.workorders.maintenance, next.workorders.maintenance)) {
      // Preventive maintenance from the next tick on (schedules and moved or skipped occurrences).
      this.wo?.maintenance.setConfig(next.workorders.maintenance);
      applied.push('workorders.maintenance');
    }
    for (const k of ['webhooks', 'email'] as const)
      if (!sameJson(cur.notifications[k], next.notifications[k])) applied.push(`notifications.${k}`);
    // The next notification goes out through the new channels (webhooks, email; docs/fleet.md).
    if (applied.some((a) => a.startsWith('notifications.')))
      this.wo?.notifications.setChannels(next.notifications);
    if (!sameJson(cur.alarms.grouping, next.alarms.grouping)) {
      this.alarms.setGrouping(next.alarms.grouping);
      applied.push('alarms.grouping');
    }
    this.current = {
      ...cur,
      rules: next.rules,
      devices: next.devices,
      workorders: {
        ...cur.workorders,
        contacts: next.workorders.contacts,
        maintenance: next.workorders.maintenance,
      },
      alarms: { ...cur.alarms, grouping: next.alarms.grouping },
      notifications: {
        ...cur.notifications,
        webhooks: next.notifications.webhooks,
        email: next.notifications.email,
      },
    };
    // What else changed is reported by the schema's restart marks, not by a list kept here.
    const restartNeeded = restartPaths(configSchema, this.current, next);
    if (restartNeeded.length > 0)
      this.log.warn(
        { restartNeeded },
        `config reloaded; changed, restart needed to apply: ${restartNeeded.join(', ')}`,
      );
    this.log.info({ file: this.configPath ?? null, applied }, 'config reloaded');
    return { applied, restartNeeded };
  }

  /** Declared devices added, changed or removed in the registry (ingest tags follow the topic). */
  private applyDevices(cur: GatewayConfig['devices'], next: GatewayConfig['devices']): void {
    const keep = new Set(next.map((d) => `${d.site}/${d.id}`));
    for (const d of cur)
      if (!keep.has(`${d.site}/${d.id}`)) {
        this.registry.forget(d.site, d.id);
        this.rules?.removeDevice(d.site, d.id);
      }
    for (const d of next) {
      const known = this.registry.lookup(d.site, d.id) !== undefined;
      this.registry.declare(d);
      // A new device's clock starts now, so one that never reports still goes offline.
      const e = this.registry.lookup(d.site, d.id);
      if (!known && e) this.rules?.registerDevice(factsOf(e));
    }
  }

  /** Every component's health, by name. */
  health(): Record<string, ComponentHealth> {
    const out = this.lifecycle.health();
    if (this.pipeline) {
      const c = this.pipeline.counters;
      const rejected = Object.values(c.rejected).reduce((a, b) => a + b, 0);
      out.ingest = { state: 'ok', messages: c.messages, accepted: c.accepted, rejected, readings: c.values };
    }
    out.registry = { state: 'ok', devices: this.registry.size };
    return out;
  }

  /**
   * Stops in reverse order: HTTP first, then the timers, the sources (which wait until everything
   * they handed over is durable and acknowledged), the writer, the live stream, the rules (timers,
   * then a last save of their state), the alarms (their last transitions reach the outbox), the
   * work orders, their databases and the outbox itself.
   */
  async stop(): Promise<void> {
    await this.app?.close();
    await this.lifecycle.stop();
  }
}

export interface GatewayOptions {
  /** The config file to read again on reload. */
  configPath?: string;
  /** Applied to a reloaded config as it was to the first one (demo devices, say). */
  prepare?: (cfg: GatewayConfig) => GatewayConfig;
  /** The source adapters to use (default: all of sources/registry.ts); tests add their own. */
  sources?: SourceRegistry;
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
