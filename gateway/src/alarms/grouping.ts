import type { RuleClass } from '../rules/types.js';
import type { AlarmsConfig } from './schema.js';
import type { Incident } from './types.js';

interface Group {
  /** Raises not yet in an incident, within the window. */
  recent: { alarmId: string; ts: number; critical: boolean }[];
  incident: Incident | undefined;
}

export interface GroupResult {
  incident: Incident;
  /** Alarms that joined the incident now (earlier ones of the window when it opens). */
  joined: string[];
  created: boolean;
}

/**
 * Many alarms of one rule across a site within the window are one problem: once their count
 * reaches the class's threshold they become an incident, and later alarms of that rule and site
 * join it while they keep coming within the window. Pure and in memory; the service persists.
 */
export class IncidentGrouper {
  private readonly groups = new Map<string, Group>();

  constructor(
    private cfg: AlarmsConfig['grouping'],
    private readonly newId: () => string,
  ) {}

  /** New window and counts (config reload); groups being counted keep their members. */
  configure(cfg: AlarmsConfig['grouping']): void {
    this.cfg = cfg;
  }

  onRaise(
    a: { id: string; site: string; rule: string; class: RuleClass; critical: boolean },
    ts: number,
  ): GroupResult | null {
    const key = `${a.site}|${a.rule}`;
    let g = this.groups.get(key);
    if (!g) this.groups.set(key, (g = { recent: [], incident: undefined }));
    const window = this.cfg.windowMs;
    if (g.incident && g.incident.state === 'open' && ts - g.incident.lastAlarmAt <= window) {
      g.incident.alarmCount++;
      g.incident.lastAlarmAt = Math.max(g.incident.lastAlarmAt, ts);
      return { incident: g.incident, joined: [a.id], created: false };
    }
    g.incident = undefined;
    g.recent = g.recent.filter((r) => ts - r.ts <= window);
    g.recent.push({ alarmId: a.id, ts, critical: a.critical });
    const counts = this.cfg.counts[a.class];
    const needed = g.recent.some((r) => r.critical) ? counts.critical : counts.normal;
    if (g.recent.length < needed) return null;
    const incident: Incident = {
      id: this.newId(),
      site: a.site,
      rule: a.rule,
      class: a.class,
      openedAt: g.recent[0]!.ts,
      lastAlarmAt: ts,
      alarmCount: g.recent.length,
      state: 'open',
      closedAt: null,
    };
    const joined = g.recent.map((r) => r.alarmId);
    g.recent = [];
    g.incident = incident;
    return { incident, joined, created: true };
  }

  /** Rebuilds memory after a restart from recent alarms (oldest first) and open incidents. */
  restore(
    recent: {
      id: string;
      site: string;
      rule: string;
      raisedAt: number;
      critical: boolean;
      incidentId: string | null;
    }[],
    incidents: Map<string, Incident>,
  ): void {
    for (const a of recent) {
      const key = `${a.site}|${a.rule}`;
      let g = this.groups.get(key);
      if (!g) this.groups.set(key, (g = { recent: [], incident: undefined }));
      const inc = a.incidentId ? incidents.get(a.incidentId) : undefined;
      if (inc) g.incident = inc;
      else if (!a.incidentId) g.recent.push({ alarmId: a.id, ts: a.raisedAt, critical: a.critical });
    }
  }
}
