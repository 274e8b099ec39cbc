import type { RuleClass } from '../rules/types.js';
import type { AlarmsConfig } from './schema.js';

/** A raise of one (site, rule) as the cluster's shared grouping table keeps it (ADR 0170). */
export interface WindowRaise {
  alarmId: string;
  ts: number;
  critical: boolean;
}

/** The open incident of a (site, rule), as far as joining it goes. */
export interface JoinableIncident {
  id: string;
  lastAlarmAt: number;
}

export type GroupDecision =
  /** The raise joins the open incident (its last raise within the window). */
  | { kind: 'join'; incidentId: string }
  /** The window's raises (oldest first, this one among them) reach the threshold: a new incident. */
  | { kind: 'create'; members: WindowRaise[] }
  /** Below the threshold: the raise waits in the window. */
  | { kind: 'none' };

/**
 * The same decision as IncidentGrouper.onRaise (alarms/grouping.ts), over the whole cluster's raises
 * of one (site, rule): `waiting` are the raises within reach not yet in an incident (this one
 * included). Pure, so that the shared transaction and its unit test run the same rule.
 */
export function decideGroup(
  cfg: AlarmsConfig['grouping'],
  cls: RuleClass,
  raise: WindowRaise,
  open: JoinableIncident | undefined,
  waiting: readonly WindowRaise[],
): GroupDecision {
  const window = cfg.windowMs;
  if (open && raise.ts - open.lastAlarmAt <= window) return { kind: 'join', incidentId: open.id };
  const all = waiting.some((r) => r.alarmId === raise.alarmId) ? [...waiting] : [...waiting, raise];
  const recent = all
    // Either side of this raise: the members' raises reach the shared table in any order.
    .filter((r) => Math.abs(raise.ts - r.ts) <= window)
    .sort((a, b) => a.ts - b.ts || (a.alarmId < b.alarmId ? -1 : a.alarmId > b.alarmId ? 1 : 0));
  const counts = cfg.counts[cls];
  const needed = recent.some((r) => r.critical) ? counts.critical : counts.normal;
  return recent.length < needed ? { kind: 'none' } : { kind: 'create', members: recent };
}

/** One of two open incidents of a (site, rule) made apart (PostgreSQL was out of reach). */
export interface IncidentRef {
  id: string;
  openedAt: number;
}

/**
 * Which of two incidents of one (site, rule) is kept when they meet: the one opened first, then the
 * lower id, so that every member decides alike.
 */
export function keptIncident<T extends IncidentRef>(a: T, b: T): { kept: T; merged: T } {
  const first = a.openedAt !== b.openedAt ? a.openedAt < b.openedAt : a.id < b.id;
  return first ? { kept: a, merged: b } : { kept: b, merged: a };
}
