import type { GatewayConfig } from './config/schema.js';
import type { AppDeps } from './http/app.js';
import type { AlarmService } from './alarms/index.js';
import { measurementOf } from './ingest/catalogue.js';
import { readRatesFromHistory } from './rules/read-rate.js';
import type { RulesRuntime } from './rules/runtime.js';
import { InfluxReader } from './sinks/influx/query.js';
import { maintenanceCalendar } from './workorders/index.js';
import type { WorkordersModule } from './workorders/module.js';
import type { Lifecycle } from './core/lifecycle.js';
import type { Logger } from './core/log.js';
import type { Component } from './core/types.js';
import type { DeviceRegistry } from './registry/registry.js';
import { ReportScheduler } from './workorders/report-schedule.js';
import type { ReportSource } from './workorders/report-source.js';
import { ReportStore } from './workorders/report-store.js';
import type { ViewReader } from './view/reader.js';
import { SmtpAndWebhookSender } from './notifications/report-delivery.js';

/** The monthly report reads tickets, alarms and read rates; the calendar the planner and tickets. */
export function reportDeps(
  cfg: GatewayConfig,
  alarms: AlarmService,
  rules: RulesRuntime,
  wo: WorkordersModule | undefined,
  /** Cluster mode: the shared view, read instead of the local stores so the report covers every member. */
  view?: ViewReader,
): AppDeps['reports'] {
  if (!wo) return undefined;
  const { service, maintenance: planner } = wo;
  return {
    tickets: service,
    timeZone: cfg.workorders.report.timeZone,
    alarmsBetween: (from, to) => alarms.raisedBetween(from, to),
    ...(view ? { source: viewReportSource(view) } : {}),
    readRates: () => rules.readRates(),
    readRatesEnded: cfg.influx.enabled
      ? (from, to) => {
          const reader = new InfluxReader(cfg.influx);
          return readRatesFromHistory(rules.readRateSubjects(), from, to, (kind, start, end) =>
            reader.reportedDevices(measurementOf(kind), start, end),
          );
        }
      : undefined,
    calendar: (from, to) =>
      maintenanceCalendar(service.maintenanceDue(from, to), planner.upcoming(from, to), (id) =>
        planner.titleOf(id),
      ),
  };
}

/** The monthly report's tickets and alarms from the cluster's shared view (ADR 0155), every member's. */
export function viewReportSource(view: ViewReader): ReportSource {
  return {
    tickets: (to) => view.reportTickets(to),
    alarms: (from, to) => view.alarmsRaisedBetween(from, to),
  };
}

/**
 * The monthly report generated after each month (overall and per site), stored immutably in
 * workorders.db and delivered by the due day; a delivery still failing then raises a ticket (ADR 0081).
 */
export async function startReportScheduler(d: {
  cfg: GatewayConfig;
  log: Logger;
  lifecycle: Lifecycle;
  registry: DeviceRegistry;
  wo: WorkordersModule;
  sources: NonNullable<AppDeps['reports']>;
  /** Cluster mode: only the leader generates and delivers the monthly report. */
  lead?: (c: Component) => Component;
}): Promise<{ scheduler: ReportScheduler; store: ReportStore }> {
  const { cfg, wo } = d;
  const store = new ReportStore(wo.db);
  const scheduler = new ReportScheduler({
    store,
    config: cfg.workorders.report,
    sources: d.sources,
    sender: new SmtpAndWebhookSender(cfg.notifications.email, cfg.notifications.webhooks),
    sites: () => new Set(d.registry.list().map((x) => x.site)),
    raiseTicket: (title, note, site) => wo.service.create({ title, site, class: 'key', note }, 'system').id,
    log: d.log.child({ module: 'reports' }),
  });
  await d.lifecycle.start(d.lead ? d.lead(scheduler) : scheduler);
  return { scheduler, store };
}
