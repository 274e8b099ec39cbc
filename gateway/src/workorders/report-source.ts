import type { ReportAlarm } from './report.js';
import type { Ticket } from './types.js';

/**
 * Where the monthly report reads its tickets and alarms, chosen when the gateway is wired: this
 * instance's own stores (a single instance), or the cluster's shared view in PostgreSQL (cluster
 * mode: every member's tickets and alarms, not only those of the member that builds the report).
 */
export interface ReportSource {
  /** Every ticket created before `to`, with at least its `escalate` and `close` history lines. */
  tickets(to: number): Promise<Ticket[]>;
  /** Alarms raised in `[from, to)`. */
  alarms(from: number, to: number): Promise<ReportAlarm[]>;
}

/** The local stores, as before the source existed: the work-order service and the alarm store. */
export function localReportSource(
  tickets: { reportTickets(to: number): Ticket[] },
  alarmsBetween?: (from: number, to: number) => ReportAlarm[],
): ReportSource {
  return {
    tickets: async (to) => tickets.reportTickets(to),
    alarms: async (from, to) => alarmsBetween?.(from, to) ?? [],
  };
}
