import type { GatewayConfig } from './config/schema.js';
import type { AppDeps } from './http/app.js';
import type { AlarmService } from './alarms/index.js';
import { measurementOf } from './ingest/catalogue.js';
import { readRatesFromHistory } from './rules/read-rate.js';
import type { RulesRuntime } from './rules/runtime.js';
import { InfluxReader } from './sinks/influx/query.js';
import { maintenanceCalendar } from './workorders/index.js';
import type { WorkordersModule } from './workorders/module.js';

/** The monthly report reads tickets, alarms and read rates; the calendar the planner and tickets. */
export function reportDeps(
  cfg: GatewayConfig,
  alarms: AlarmService,
  rules: RulesRuntime,
  wo: WorkordersModule | undefined,
): AppDeps['reports'] {
  if (!wo) return undefined;
  const { service, maintenance: planner } = wo;
  return {
    tickets: service,
    timeZone: cfg.workorders.report.timeZone,
    alarmsBetween: (from, to) => alarms.raisedBetween(from, to),
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
