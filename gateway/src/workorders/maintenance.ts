import { DateTime } from 'luxon';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { Db } from '../storage/db.js';
import { nextCron, parseCron } from '../core/cron.js';
import { CALENDAR_LIMIT, type Upcoming } from './maintenance-calendar.js';
import type { MaintenanceConfig, Schedule } from './maintenance-schema.js';
import type { WorkOrderService } from './service.js';

const DAY = 86_400_000;

/**
 * The first occurrence of a schedule strictly after `after` (epoch ms), in the schedule's time zone
 * (`timeZone`, UTC when absent): `days` counts local days from the anchor's local date, `months` and
 * cron fields are local dates and hours, daylight-saving changes included (a local time that does
 * not exist that day falls due when the clocks have gone forward).
 */
export function nextOccurrence(s: Schedule, after: number): number | undefined {
  const zone = s.timeZone ?? 'UTC';
  const hour = s.hour ?? s.hourUtc ?? 8;
  const e = s.every;
  if ('days' in e) {
    const base = DateTime.fromISO(s.anchor, { zone }).startOf('day').set({ hour });
    if (after < base.toMillis()) return base.toMillis();
    // A local day is 23 to 25 hours long: start from an estimate just below and step up.
    let k = Math.max(0, Math.floor((after - base.toMillis()) / (e.days * DAY)) - 1);
    for (; ; k++) {
      const t = base.plus({ days: k * e.days }).toMillis();
      if (t > after) return t;
    }
  }
  if ('months' in e) {
    const a = DateTime.fromISO(s.anchor, { zone });
    const anchorMonth = a.year * 12 + a.month - 1;
    const d = DateTime.fromMillis(after, { zone });
    for (let m = Math.max(d.year * 12 + d.month - 1, anchorMonth); m < anchorMonth + 12 * 200; m++) {
      if ((m - anchorMonth) % e.months !== 0) continue;
      const t = DateTime.fromObject(
        { year: Math.floor(m / 12), month: (m % 12) + 1, day: e.day, hour },
        { zone },
      ).toMillis();
      if (t > after) return t;
    }
    return undefined;
  }
  return nextCron(parseCron(e.cron), after, zone);
}

/** An asset a schedule may apply to: the registry's devices. */
export interface MaintenanceTarget {
  site: string;
  device: string;
  kind: string;
  location?: string;
}

export interface MaintenancePlannerDeps {
  service: WorkOrderService;
  /** The work-order database (the planner keeps its next due times beside the tickets). */
  db: Db;
  config: MaintenanceConfig;
  targets: () => Iterable<MaintenanceTarget>;
  log?: Logger;
  now?: () => number;
}

/** Occurrences of one tick at most per schedule and target, so a long outage cannot loop for ever. */
const MAX_CATCH_UP = 400;
/** The next due time of a schedule with no further occurrence. */
const NEVER = Number.MAX_SAFE_INTEGER;

/**
 * Preventive maintenance: each schedule, for each asset (or site) it applies to, becomes one work
 * order per occurrence. The next due time of each is stored with the tickets in one transaction,
 * so an occurrence is neither lost nor raised twice across restarts; occurrences that fell due
 * while the gateway was down are raised when it comes back. A new asset starts with its next occurrence.
 */
export class MaintenancePlanner implements Component {
  readonly name = 'maintenance';
  private readonly next = new Map<string, number>();
  private readonly now: () => number;
  private started = false;
  private counts = { raised: 0 };

  constructor(private readonly deps: MaintenancePlannerDeps) {
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    const rows = this.deps.db.prepare('SELECT key, next_due_at FROM pm_next').all() as {
      key: string;
      next_due_at: number;
    }[];
    for (const r of rows) this.next.set(r.key, r.next_due_at);
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
  }

  health(): ComponentHealth {
    return { state: this.started ? 'ok' : 'stopped', tracked: this.next.size, ...this.counts };
  }

  /** Raises every occurrence due by `now`; returns how many. */
  tick(now = this.now()): number {
    if (!this.deps.config.enabled) return 0;
    const save = this.deps.db.prepare(
      'INSERT INTO pm_next (key, next_due_at) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET next_due_at = excluded.next_due_at',
    );
    let raised = 0;
    const targets = [...this.deps.targets()];
    for (const s of this.deps.config.schedules) {
      for (const t of this.targetsOf(s, targets)) {
        const key = `${s.id}|${t.site}|${t.device ?? ''}`;
        let due = this.next.get(key);
        if (due === undefined) {
          // A new (schedule, asset) starts with its next occurrence: no backfill.
          const first = nextOccurrence(s, now) ?? NEVER;
          save.run(key, first);
          this.next.set(key, first);
          continue;
        }
        for (let i = 0; i < MAX_CATCH_UP && due <= now; i++) {
          const next: number = nextOccurrence(s, due) ?? NEVER;
          // The occurrence's ticket and the next due time commit together: neither lost nor raised twice.
          this.deps.service.createMaintenance(s, t, due, () => save.run(key, next));
          this.next.set(key, next);
          raised++;
          due = next;
        }
      }
    }
    this.counts.raised += raised;
    if (raised > 0) this.deps.log?.info({ raised }, 'maintenance work orders raised');
    return raised;
  }

  /** Occurrences due in `[from, to)` not raised yet: each (schedule, asset) from its next due time on. */
  upcoming(from: number, to: number, now = this.now()): Upcoming[] {
    if (!this.deps.config.enabled) return [];
    const out: Upcoming[] = [];
    const targets = [...this.deps.targets()];
    for (const s of this.deps.config.schedules) {
      for (const t of this.targetsOf(s, targets)) {
        let due: number | undefined =
          this.next.get(`${s.id}|${t.site}|${t.device ?? ''}`) ?? nextOccurrence(s, now);
        while (due !== undefined && due < to && out.length < CALENDAR_LIMIT) {
          if (due >= from)
            out.push({
              schedule: s.id,
              title: s.title,
              site: t.site,
              device: t.device,
              dueAt: due,
              form: s.form,
            });
          due = nextOccurrence(s, due);
        }
      }
    }
    return out;
  }

  /** A schedule's title. */
  titleOf(id: string): string | undefined {
    return this.deps.config.schedules.find((s) => s.id === id)?.title;
  }

  private targetsOf(
    s: Schedule,
    all: MaintenanceTarget[],
  ): { site: string; device: string | null; location?: string }[] {
    const out = new Map<string, { site: string; device: string | null; location?: string }>();
    for (const t of all) {
      if (!s.kinds.includes(t.kind)) continue;
      if (s.sites && !s.sites.includes(t.site)) continue;
      if (s.per === 'site') {
        if (!out.has(t.site)) out.set(t.site, { site: t.site, device: null });
      } else out.set(`${t.site}/${t.device}`, { site: t.site, device: t.device, location: t.location });
    }
    return [...out.values()];
  }
}
