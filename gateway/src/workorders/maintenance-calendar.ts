import type { Ticket, TicketStatus } from './types.js';

/** One preventive occurrence on the dashboard's calendar: raised (with its ticket) or still to come. */
export interface CalendarEntry {
  schedule: string;
  title: string;
  site: string;
  device: string | null;
  /** Epoch ms the occurrence falls due. */
  dueAt: number;
  ticketId: string | null;
  status: TicketStatus | null;
  form: 'none' | 'disinfection';
}

/** An occurrence not raised yet, as the planner foresees it. */
export type Upcoming = Omit<CalendarEntry, 'ticketId' | 'status'>;

/** Most entries one calendar answer holds. */
export const CALENDAR_LIMIT = 5000;

/**
 * The calendar of `[from, to)`: occurrences already raised (from their tickets, with status)
 * and those still to come (from the schedules), by due time. Pure.
 */
export function maintenanceCalendar(
  raised: readonly Ticket[],
  upcoming: readonly Upcoming[],
  titleOf: (schedule: string) => string | undefined,
): CalendarEntry[] {
  const out: CalendarEntry[] = [];
  for (const t of raised) {
    if (!t.maintenance) continue;
    out.push({
      schedule: t.maintenance.schedule,
      title: titleOf(t.maintenance.schedule) ?? t.serviceItem,
      site: t.site,
      device: t.device,
      dueAt: t.maintenance.dueAt,
      ticketId: t.id,
      status: t.status,
      form: t.maintenance.form,
    });
  }
  for (const u of upcoming) out.push({ ...u, ticketId: null, status: null });
  return out
    .sort((a, b) => a.dueAt - b.dueAt || a.site.localeCompare(b.site) || a.schedule.localeCompare(b.schedule))
    .slice(0, CALENDAR_LIMIT);
}
