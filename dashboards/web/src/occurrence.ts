// The status a preventive occurrence shows on the calendar. Pure, so it is tested without a browser.
import type { CalendarEntry } from './api.js';

/** Scheduled (not raised yet), done, overdue (past its deadline, still open) or the ticket's status. */
export function occurrenceStatus(
  e: Pick<CalendarEntry, 'status' | 'ticketId'>,
  resolveDueAt: string | null | undefined,
  now: number,
): { key: string; cls: string } {
  if (!e.ticketId || e.status === null) return { key: 'cal_scheduled', cls: 'cal-scheduled' };
  if (e.status === 'resolved' || e.status === 'closed') return { key: 'cal_done', cls: 'cal-done' };
  if (resolveDueAt && Date.parse(resolveDueAt) < now) return { key: 'cal_overdue', cls: 'cal-overdue' };
  return { key: `status_${e.status}`, cls: 'cal-open' };
}
