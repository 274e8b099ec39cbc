import { join } from 'node:path';
import type { Db } from '../storage/db.js';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from '../config/schema.js';
import type { Bus } from '../core/events.js';
import { IntervalTask, type Lifecycle } from '../core/lifecycle.js';
import type { Logger } from '../core/log.js';
import type { Component } from '../core/types.js';
import type { AlarmEvent } from '../alarms/types.js';
import type { DeviceRegistry } from '../registry/registry.js';
import { InfluxReader } from '../sinks/influx/query.js';
import { DbComponent } from '../storage/db-component.js';
import type { CheckpointHost } from '../storage/outbox.js';
import { WalCheckpointer } from '../storage/wal-checkpointer.js';
import { createNotificationsModule } from '../notifications/module.js';
import { NOTIFY_MIGRATIONS } from '../notifications/queue.js';
import type { NotificationService } from '../notifications/service.js';
import type { DeliveryFence } from '../notifications/fence.js';
import { TicketLatency } from './latency.js';
import { ticketEventLine } from './line-protocol.js';
import { MaintenancePlanner } from './maintenance.js';
import { WorkOrderService, type TicketEvent } from './service.js';
import { TicketStore, WORKORDER_MIGRATIONS } from './store.js';
import type { Ticket, TicketNumbers } from './types.js';

export interface WorkordersModuleDeps {
  cfg: GatewayConfig;
  log: Logger;
  lifecycle: Lifecycle;
  bus: Bus<{ alarm: AlarmEvent; ticket: TicketEvent }>;
  metrics: Registry;
  registry: DeviceRegistry;
  /** Where committed ticket changes go as line protocol (`ticket_event`); absent with InfluxDB off. */
  sink?: { append(line: string): void };
  /** Cluster mode: wraps a cluster-wide singleton so that only the leader runs it (cluster/leader.ts). */
  lead?: (c: Component) => Component;
  /** Runs workorders.db's WAL checkpoints on its thread (the outbox's commit thread), saving a thread. */
  checkpointHost?: CheckpointHost;
  /**
   * Cluster mode: numbers unique across the cluster, given the next number workorders.db would use
   * (so that a gateway that joins a cluster never reuses one of its own).
   */
  numbers?: (localNext: number) => Promise<TicketNumbers>;
  /**
   * Cluster mode: escalations are written through to the shared view before they commit here
   * (ADR 0160 addendum); resolves to the ticket ids the view accepted.
   */
  confirm?: (tickets: readonly Ticket[], firstEntries?: ReadonlyMap<string, number>) => Promise<Set<string>>;
  /** Cluster mode: false while this member's leases are about to run out (ADR 0173). */
  leaseFresh?: () => boolean;
  /** Cluster mode: the holder the shared view names for a ticket (a fenced action names it). */
  holderOf?: (id: string) => Promise<string | undefined>;
  /**
   * Cluster mode: a queued notification is claimed in the shared view before each attempt, and one
   * another member took over is dropped here (ADR 0179).
   */
  notifyFence?: DeliveryFence;
}

export interface WorkordersModule {
  service: WorkOrderService;
  notifications: NotificationService;
  maintenance: MaintenancePlanner;
  /** workorders.db, open while the gateway runs (the generated monthly reports live there too). */
  db: Db;
}

/**
 * Work orders keep their own database (records that must outlive alarm history) and hear every
 * alarm event after commit; notifications share that database; a timer escalates missed
 * deadlines and plans preventive maintenance. Everything is started here, in order.
 */
export async function startWorkordersModule(d: WorkordersModuleDeps): Promise<WorkordersModule> {
  const { cfg, log, lifecycle, bus, registry } = d;
  // Like alarms.db (ADR 0082): with rule state committed with the readings, a ticket an alarm raised
  // is raised again at start if a power cut took it (`WorkOrderService.reconcileAlarms`), so those
  // commits skip the fsync on the event loop; people's actions still wait for the disk (ADR 0091).
  const file = join(cfg.dataDir, 'workorders.db');
  const fast = cfg.alarms.ruleState === 'with-readings';
  const db = (
    await lifecycle.start(
      new DbComponent(
        'workorders.db',
        file,
        [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS],
        fast ? 'normal' : 'full',
      ),
      {
        report: false,
      },
    )
  ).db;
  if (fast)
    await lifecycle.start(
      new WalCheckpointer(db, file, log.child({ module: 'workorders' }), undefined, d.checkpointHost),
    );
  const rules = new Map([...cfg.rules.pack, ...cfg.rules.custom].map((r) => [r.id, r]));
  const notifications = createNotificationsModule({
    db,
    config: cfg.notifications,
    log,
    metrics: d.metrics,
    fence: d.notifyFence,
  });
  const reader = cfg.influx.enabled ? new InfluxReader(cfg.influx) : undefined;
  const numbers = d.numbers ? await d.numbers(new TicketStore(db).nextSeq()) : undefined;
  const service = new WorkOrderService({
    numbers,
    confirm: d.confirm,
    leaseFresh: d.leaseFresh,
    holderOf: d.holderOf,
    inTransaction: notifications.enqueue,
    db,
    config: cfg.workorders,
    log: log.child({ module: 'workorders' }),
    ruleInfo: (id) => {
      const r = rules.get(id);
      const metric = r && 'metric' in r && typeof r.metric === 'string' ? r.metric : undefined;
      return r ? { description: r.description, metric } : undefined;
    },
    // One measurement per kind, `-` as `_` (CONTRACT.md).
    history: reader ? (q) => reader.readings({ ...q, measurement: q.kind.replace(/-/g, '_') }) : undefined,
    deviceInfo: (site, device) => {
      const dev = registry.lookup(site, device);
      return dev ? { location: dev.location, latest: Object.fromEntries(dev.latest) } : undefined;
    },
  });
  const latency = new TicketLatency(d.metrics);
  const sink = d.sink;
  lifecycle.onStopped(
    bus.on('alarm', latency.onAlarm),
    bus.on('ticket', latency.onTicket),
    bus.on('alarm', service.onAlarmEvent),
    ...(sink ? [bus.on('ticket', (e) => sink.append(ticketEventLine(e)))] : []),
    service.onChange((e) => bus.emit('ticket', e)),
    // A contact who cannot be reached is skipped at once ("逐级向上联系").
    notifications.onFailure(service.onDeliveryFailure),
  );
  await lifecycle.start(service);
  // Cluster mode: what works from the cluster's shared inputs (preventive maintenance from the
  // device list, the monthly report) runs on the leader only. The escalation tick works on the
  // tickets this member holds (those of the partitions it owns, ADR 0160) and notification delivery
  // on the queue in its workorders.db: each member runs them for its own (ADR 0150).
  const lead = d.lead ?? ((c: Component) => c);
  await lifecycle.start(notifications);
  const maintenance = new MaintenancePlanner({
    service,
    db,
    config: cfg.workorders.maintenance,
    targets: () =>
      registry
        .list()
        .map((x) => ({ site: x.site, device: x.id, kind: x.kind, location: x.location ?? undefined })),
    log: log.child({ module: 'maintenance' }),
  });
  await lifecycle.start(lead(maintenance));
  const timer = { report: false, stopFirst: true };
  if (!d.lead) {
    const tick = () => {
      maintenance.tick();
      service.tick();
    };
    await lifecycle.start(
      new IntervalTask('work-order escalation tick', cfg.workorders.tickMs, tick, log),
      timer,
    );
  } else {
    const pm = () => void maintenance.tick();
    const escalate = () => service.tick();
    await lifecycle.start(lead(new IntervalTask('maintenance tick', cfg.workorders.tickMs, pm, log)), timer);
    await lifecycle.start(
      new IntervalTask('work-order escalation tick', cfg.workorders.tickMs, escalate, log),
      timer,
    );
  }
  return { service, notifications, maintenance, db };
}
