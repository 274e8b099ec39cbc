export {
  WorkOrderService,
  type WorkOrderServiceDeps,
  type ManualTicket,
  type RuleInfo,
  type DeviceInfo,
  type HistoryReader,
} from './service.js';
export { WORKORDER_MIGRATIONS, TicketStore, type TicketFilter } from './store.js';
export { workordersSchema, type WorkordersConfig } from './schema.js';
export { allowedActions, applyAction, type ActionRequest } from './state-machine.js';
export { escalate } from './escalation.js';
export * from './policy.js';
export * from './types.js';
export { MaintenancePlanner, nextOccurrence, type MaintenanceTarget } from './maintenance.js';
export {
  maintenanceSchema,
  scheduleSchema,
  occurrenceSchema,
  occurrenceKey,
  DEFAULT_SCHEDULES,
  type Schedule,
  type OccurrenceException,
} from './maintenance-schema.js';
export { parseCron, nextCron } from '../core/cron.js';
export { ticketEventLine } from './line-protocol.js';
export { monthlyReport, monthlyReportCsv, monthRange, type MonthlyReport } from './report.js';
export { maintenanceCalendar, type CalendarEntry } from './maintenance-calendar.js';
