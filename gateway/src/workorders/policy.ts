import { severityRank, type RuleClass, type Severity } from '../rules/types.js';
import type { WorkordersConfig } from './schema.js';
import { WorkCalendar } from './work-calendar.js';
import { PRIORITIES, type Priority } from './types.js';

const MIN = 60_000;

/** Whether an alarm of this rule, class and severity becomes a ticket. Safety class always does. */
export function createsTicket(
  cfg: WorkordersConfig,
  a: { rule: string; class: RuleClass; severity: Severity },
): boolean {
  if (a.class === 'safety') return true;
  const c = cfg.create;
  if (c.rules.includes(a.rule)) return true;
  if (c.excludeRules.includes(a.rule)) return false;
  return c.classes.includes(a.class) && severityRank(a.severity) >= severityRank(c.minSeverity);
}

/** One step up the priority list (critical stays critical). */
function bump(p: Priority): Priority {
  return PRIORITIES[Math.max(0, PRIORITIES.indexOf(p) - 1)]!;
}

/** Priority from the class, the severity and whether the asset is critical. */
export function priorityOf(
  cfg: WorkordersConfig,
  a: { class: RuleClass; severity: Severity | null; critical: boolean },
): Priority {
  const p = cfg.priority;
  let out: Priority = a.class !== 'safety' && a.severity === 'info' ? p.info : p[a.class];
  if (a.critical && p.criticalAssetBump) out = bump(out);
  if (a.severity === 'critical' && p.criticalSeverityBump) out = bump(out);
  return out;
}

/** The higher of two priorities. */
export function higherPriority(a: Priority, b: Priority): Priority {
  return PRIORITIES.indexOf(a) <= PRIORITIES.indexOf(b) ? a : b;
}

export interface Deadlines {
  responseDueAt: number;
  resolveDueAt: number;
}

const calendars = new WeakMap<WorkordersConfig['calendar'], WorkCalendar>();

/** The working-hours calendar when this priority follows it (`workorders.calendar`), else undefined. */
function calendarFor(cfg: WorkordersConfig, priority: Priority): WorkCalendar | undefined {
  const c = cfg.calendar;
  if (!c.enabled || !c.priorities.includes(priority)) return undefined;
  let cal = calendars.get(c);
  if (!cal) calendars.set(c, (cal = new WorkCalendar(c)));
  return cal;
}

/** `ms` of service-level time after `from`: working time for a priority that follows the calendar, else wall time. */
export function addSlaTime(cfg: WorkordersConfig, priority: Priority, from: number, ms: number): number {
  const cal = calendarFor(cfg, priority);
  return cal ? cal.add(from, ms) : from + ms;
}

/** Service-level time between two instants (working time when the priority follows the calendar). */
export function slaTimeBetween(cfg: WorkordersConfig, priority: Priority, a: number, b: number): number {
  const cal = calendarFor(cfg, priority);
  return cal ? cal.between(a, b) : Math.max(0, b - a);
}

/** Response and resolution deadlines of a ticket raised at `from` with this priority. */
export function deadlinesOf(cfg: WorkordersConfig, priority: Priority, from: number): Deadlines {
  const s = cfg.sla[priority];
  return {
    responseDueAt: addSlaTime(cfg, priority, from, s.respondMin * MIN),
    resolveDueAt: addSlaTime(cfg, priority, from, s.resolveMin * MIN),
  };
}

export function escalateEveryMs(cfg: WorkordersConfig, priority: Priority): number {
  return cfg.sla[priority].escalateEveryMin * MIN;
}

export function isTransientAutoResolve(cfg: WorkordersConfig, rule: string | null): boolean {
  return rule !== null && cfg.transient.some((t) => t.rule === rule && t.autoResolve);
}
