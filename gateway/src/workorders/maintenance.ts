import { DateTime } from 'luxon';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { Db } from '../storage/db.js';
import { nextCron, parseCron } from '../core/cron.js';
import { CALENDAR_LIMIT, type Upcoming } from './maintenance-calendar.js';
import type { MaintenanceConfig, OccurrenceException, Schedule } from './maintenance-schema.js';
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

/** An occurrence exception with its times in epoch ms. */
interface Exception {
  dueAt: number;
  site?: string;
  device?: string;
  skip?: string;
  moveTo?: number;
}

function exceptionsOf(list: readonly OccurrenceException[], schedule: string): Exception[] {
  return list
    .filter((o) => o.schedule === schedule)
    .map((o) => ({
      dueAt: Date.parse(o.dueAt),
      site: o.site,
      device: o.device,
      skip: o.skip,
      moveTo: o.moveTo === undefined ? undefined : Date.parse(o.moveTo),
    }));
}

/** The exception that governs one asset's occurrence: the most specific (device, then site, then all). */
function governing(
  list: readonly Exception[],
  t: { site: string; device: string | null },
  dueAt: number,
): Exception | undefined {
  let best: Exception | undefined;
  let rank = -1;
  for (const e of list) {
    if (e.dueAt !== dueAt) continue;
    if (e.site !== undefined && e.site !== t.site) continue;
    if (e.device !== undefined && e.device !== t.device) continue;
    const r = e.device !== undefined ? 2 : e.site !== undefined ? 1 : 0;
    if (r > rank) [best, rank] = [e, r];
  }
  return best;
}

/** What decides when a schedule's occurrences fall: a change of any of these starts its series again. */
const timing = (s: Schedule) => JSON.stringify([s.every, s.hour, s.hourUtc, s.timeZone, s.anchor]);

/** The key of one (schedule, asset) series in `pm_next`; a moved occurrence is `${seriesKey}@${dueAt}`. */
const seriesKey = (s: Schedule, t: { site: string; device: string | null }) =>
  `${s.id}|${t.site}|${t.device ?? ''}`;
/** The `pm_next` row that keeps when a series started being tracked (its value is that time). */
const SINCE = '#since';

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
  /** When each series key started being tracked: a move of an occurrence before it is not its own. */
  private readonly since = new Map<string, number>();
  private readonly now: () => number;
  private started = false;
  private counts = { raised: 0, skipped: 0 };
  private config: MaintenanceConfig;

  constructor(private readonly deps: MaintenancePlannerDeps) {
    this.now = deps.now ?? Date.now;
    this.config = deps.config;
  }

  /**
   * The schedules and occurrence exceptions in force now (Gateway.reload: an operator's change or
   * the file's). A schedule removed, or whose timing changed, starts again from its next occurrence
   * (no backfill of a series that was not in force); moved occurrences already raised stay raised.
   */
  setConfig(next: MaintenanceConfig): void {
    const after = new Map(next.schedules.map((s) => [s.id, s]));
    for (const s of this.config.schedules) {
      const n = after.get(s.id);
      if (!n || timing(n) !== timing(s)) this.forgetSeries(s.id);
    }
    this.config = next;
  }

  private forgetSeries(id: string): void {
    const prefix = `${id}|`;
    for (const k of [...this.next.keys()]) if (k.startsWith(prefix) && !k.includes('@')) this.next.delete(k);
    for (const k of [...this.since.keys()]) if (k.startsWith(prefix)) this.since.delete(k);
    this.deps.db
      .prepare("DELETE FROM pm_next WHERE substr(key, 1, length(?)) = ? AND instr(key, '@') = 0")
      .run(prefix, prefix);
  }

  async start(): Promise<void> {
    const rows = this.deps.db.prepare('SELECT key, next_due_at FROM pm_next').all() as {
      key: string;
      next_due_at: number;
    }[];
    for (const r of rows)
      if (r.key.endsWith(SINCE)) this.since.set(r.key.slice(0, -SINCE.length), r.next_due_at);
      else this.next.set(r.key, r.next_due_at);
    this.started = true;
  }

  async stop(): Promise<void> {
    this.started = false;
  }

  health(): ComponentHealth {
    return { state: this.started ? 'ok' : 'stopped', tracked: this.next.size, ...this.counts };
  }

  /**
   * Raises every occurrence due by `now`; returns how many. A skipped occurrence raises nothing
   * (its reason is logged); a moved one is raised at its new time instead of the series' time.
   */
  tick(now = this.now()): number {
    if (!this.config.enabled) return 0;
    const save = this.deps.db.prepare(
      'INSERT INTO pm_next (key, next_due_at) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET next_due_at = excluded.next_due_at',
    );
    let raised = 0;
    let skipped = 0;
    const targets = [...this.deps.targets()];
    for (const s of this.config.schedules) {
      const exceptions = exceptionsOf(this.config.occurrences, s.id);
      for (const t of this.targetsOf(s, targets)) {
        const key = seriesKey(s, t);
        let due = this.next.get(key);
        if (due === undefined) {
          // A new (schedule, asset) starts with its next occurrence: no backfill, moved ones
          // included (a move already past is done for it, without a work order).
          due = nextOccurrence(s, now) ?? NEVER;
          save.run(key, due);
          this.next.set(key, due);
          save.run(key + SINCE, now);
          this.since.set(key, now);
          for (const e of exceptions) {
            if (e.moveTo === undefined || e.moveTo > now) continue;
            save.run(`${key}@${e.dueAt}`, NEVER);
            this.next.set(`${key}@${e.dueAt}`, NEVER);
          }
        }
        const since = this.since.get(key) ?? -Infinity;
        for (let i = 0; i < MAX_CATCH_UP && due <= now; i++) {
          const next: number = nextOccurrence(s, due) ?? NEVER;
          const e = governing(exceptions, t, due);
          if (e) {
            // Skipped or moved: the series goes on without a work order for this time.
            save.run(key, next);
            if (e.skip !== undefined) {
              skipped++;
              this.deps.log?.info(
                {
                  schedule: s.id,
                  site: t.site,
                  device: t.device,
                  dueAt: new Date(due).toISOString(),
                  reason: e.skip,
                },
                'maintenance occurrence skipped',
              );
            }
          } else {
            // The occurrence's ticket and the next due time commit together: neither lost nor raised twice.
            this.deps.service.createMaintenance(s, t, due, () => save.run(key, next));
            raised++;
          }
          this.next.set(key, next);
          due = next;
        }
        for (const e of exceptions) {
          if (e.moveTo === undefined || e.moveTo > now || e.dueAt < since) continue;
          if (governing(exceptions, t, e.dueAt) !== e) continue;
          // Each moved occurrence is raised once, remembered under its own key with the series'.
          const moved = `${key}@${e.dueAt}`;
          if (this.next.get(moved) === NEVER) continue;
          this.deps.service.createMaintenance(s, t, e.moveTo, () => save.run(moved, NEVER), e.dueAt);
          this.next.set(moved, NEVER);
          raised++;
        }
      }
    }
    this.counts.raised += raised;
    this.counts.skipped += skipped;
    if (raised > 0) this.deps.log?.info({ raised }, 'maintenance work orders raised');
    return raised;
  }

  /**
   * Occurrences due in `[from, to)` not raised yet: each (schedule, asset) from its next due time
   * on, skipped ones left out and moved ones at their new time.
   */
  upcoming(from: number, to: number, now = this.now()): Upcoming[] {
    if (!this.config.enabled) return [];
    const out: Upcoming[] = [];
    const targets = [...this.deps.targets()];
    for (const s of this.config.schedules) {
      const exceptions = exceptionsOf(this.config.occurrences, s.id);
      const entry = (t: { site: string; device: string | null }, dueAt: number): Upcoming => ({
        schedule: s.id,
        title: s.title,
        site: t.site,
        device: t.device,
        dueAt,
        form: s.form,
      });
      for (const t of this.targetsOf(s, targets)) {
        const key = seriesKey(s, t);
        const since = this.since.get(key) ?? (this.next.has(key) ? -Infinity : now);
        let due: number | undefined = this.next.get(key) ?? nextOccurrence(s, now);
        while (due !== undefined && due < to && out.length < CALENDAR_LIMIT) {
          if (due >= from && !governing(exceptions, t, due)) out.push(entry(t, due));
          due = nextOccurrence(s, due);
        }
        for (const e of exceptions)
          if (
            e.moveTo !== undefined &&
            e.moveTo >= from &&
            e.moveTo < to &&
            e.dueAt >= since &&
            governing(exceptions, t, e.dueAt) === e &&
            this.next.get(`${key}@${e.dueAt}`) !== NEVER &&
            out.length < CALENDAR_LIMIT
          )
            out.push(entry(t, e.moveTo));
      }
    }
    return out;
  }

  /** A schedule's title. */
  titleOf(id: string): string | undefined {
    return this.config.schedules.find((s) => s.id === id)?.title;
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
