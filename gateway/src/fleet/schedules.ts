import { z } from 'zod';
import type { FleetSetting } from './store.js';
import type { OverrideProblem } from './rule-overrides.js';
import {
  maintenanceSchema,
  occurrenceKey,
  occurrenceSchema,
  scheduleSchema,
  type MaintenanceConfig,
  type OccurrenceException,
  type Schedule,
} from '../workorders/maintenance-schema.js';
import { nextOccurrence } from '../workorders/maintenance.js';

/** A schedule as operators keep it (entity `schedule`, key its id): retired ones stay, hidden. */
export const storedScheduleSchema = z.strictObject({ schedule: scheduleSchema, retired: z.boolean() });
export type StoredSchedule = z.infer<typeof storedScheduleSchema>;

/** An occurrence moved or skipped (entity `pm-occurrence`, key `occurrenceKey`), with who set it. */
export interface StoredOccurrence {
  value: OccurrenceException;
  by: string;
  at: number;
}

/** A schedule as the API lists it: where it comes from and its next occurrences. */
export interface ScheduleView {
  schedule: Schedule;
  origin: 'file' | 'database';
  retired: boolean;
  /** The series' next occurrences; one moved or skipped for every asset says so. */
  next: Array<{ dueAt: number; skip: string | null; moveTo: number | null }>;
  /** Every occurrence moved or skipped, past ones included (kept, shown). */
  occurrences: Array<
    OccurrenceException & { key: string; origin: 'file' | 'database'; by: string | null; at: number | null }
  >;
}

type Result<T> = { ok: true; value: T } | { ok: false; problems: OverrideProblem[] };

const problemsOf = (issues: readonly z.core.$ZodIssue[], prefix: PropertyKey[] = []): OverrideProblem[] =>
  issues.map((i) => ({ path: [...prefix, ...i.path].map(String).join('.'), message: i.message }));

/**
 * The operators' maintenance schedules and occurrence exceptions (docs/fleet.md), layered over the
 * file's `workorders.maintenance` and checked by its own schema (`maintenanceSchema`).
 */
export class ScheduleSettings {
  readonly schedules = new Map<string, StoredSchedule>();
  readonly occurrences = new Map<string, StoredOccurrence>();

  /** Reads the stored rows; an invalid one is reported (and left out), never fatal. */
  load(
    schedules: FleetSetting[],
    occurrences: FleetSetting[],
    bad: (key: string, err: string) => void,
  ): void {
    this.schedules.clear();
    this.occurrences.clear();
    for (const s of schedules) {
      const r = storedScheduleSchema.safeParse(s.value);
      if (r.success) this.schedules.set(s.key, r.data);
      else bad(s.key, r.error.message);
    }
    for (const s of occurrences) {
      const r = occurrenceSchema.safeParse(s.value);
      if (r.success) this.occurrences.set(s.key, { value: r.data, by: s.updatedBy, at: s.updatedAt });
      else bad(s.key, r.error.message);
    }
  }

  /** Records a written value (null: removed). */
  set(entity: 'schedule' | 'pm-occurrence', key: string, value: unknown, by: string, at: number): void {
    if (entity === 'schedule') {
      if (value === null) this.schedules.delete(key);
      else this.schedules.set(key, value as StoredSchedule);
    } else if (value === null) this.occurrences.delete(key);
    else this.occurrences.set(key, { value: value as OccurrenceException, by, at });
  }

  /**
   * The file's maintenance with the operators' schedules (replacing the file's of the same id,
   * retired ones left out) and occurrences; an operator's entry the file no longer allows is
   * reported and left out.
   */
  layer(
    file: MaintenanceConfig,
    bad: (key: string, problems: OverrideProblem[]) => void = () => {},
    pinned: (entity: 'schedule' | 'pm-occurrence', key: string, schedule: string) => boolean = () => false,
  ): MaintenanceConfig {
    let kept = file;
    for (const [id, s] of this.schedules) {
      // A pinned schedule stays the file's: the operator's value is kept but skipped.
      if (pinned('schedule', id, id)) continue;
      const r = this.with(kept, s.retired ? { retire: id } : { schedule: s.schedule });
      if (r.ok) kept = r.value;
      else bad(id, r.problems);
    }
    for (const [key, o] of this.occurrences) {
      // Moves and skips of a schedule not in force wait for it to come back.
      if (!kept.schedules.some((s) => s.id === o.value.schedule)) continue;
      if (pinned('pm-occurrence', key, o.value.schedule)) continue;
      const r = this.with(kept, { occurrence: o.value });
      if (r.ok) kept = r.value;
      else bad(key, r.problems);
    }
    return kept;
  }

  /**
   * `m` with one change, checked by the file's schema: a schedule added or replaced, one retired,
   * or an occurrence exception set.
   */
  with(
    m: MaintenanceConfig,
    c: { schedule: Schedule } | { retire: string } | { occurrence: OccurrenceException },
  ): Result<MaintenanceConfig> {
    let schedules: Schedule[] = m.schedules;
    let occurrences = m.occurrences;
    let at: number | undefined;
    if ('schedule' in c) {
      at = schedules.findIndex((s) => s.id === c.schedule.id);
      // Without its own zone, the schema gives it the file's default zone as a file schedule gets it.
      const s = c.schedule;
      schedules = at < 0 ? [...schedules, s] : schedules.map((x, i) => (i === at ? s : x));
      if (at < 0) at = schedules.length - 1;
    } else if ('retire' in c) {
      schedules = schedules.filter((s) => s.id !== c.retire);
      occurrences = occurrences.filter((o) => o.schedule !== c.retire);
    } else {
      const key = occurrenceKey(c.occurrence);
      occurrences = [...occurrences.filter((o) => occurrenceKey(o) !== key), c.occurrence];
    }
    const r = maintenanceSchema.safeParse({ ...m, schedules, occurrences });
    if (r.success) return { ok: true, value: r.data };
    // `schedules.3.every.days` of the schedule being set is its own `every.days`.
    return {
      ok: false,
      problems: r.error.issues.map((i) => {
        const own = at !== undefined && i.path[0] === 'schedules' && i.path[1] === at;
        return { path: (own ? i.path.slice(2) : i.path).map(String).join('.'), message: i.message };
      }),
    };
  }

  /** A schedule from an operator, checked alone (field paths) then with the others (duplicates, zones). */
  checkSchedule(inForce: MaintenanceConfig, input: unknown): Result<Schedule> {
    const r = scheduleSchema.safeParse(input);
    if (!r.success) return { ok: false, problems: problemsOf(r.error.issues) };
    const all = this.with(inForce, { schedule: r.data });
    return all.ok ? { ok: true, value: r.data } : all;
  }

  /**
   * A move or skip from an operator: of a schedule in force, at a time its series has, not passed
   * yet (a passed occurrence has been raised or skipped already), moved to a time to come.
   */
  checkOccurrence(inForce: MaintenanceConfig, input: unknown, now: number): Result<OccurrenceException> {
    const r = occurrenceSchema.safeParse(input);
    if (!r.success) return { ok: false, problems: problemsOf(r.error.issues) };
    const dueAt = Date.parse(r.data.dueAt);
    const moveTo = r.data.moveTo === undefined ? undefined : Date.parse(r.data.moveTo);
    const o: OccurrenceException = {
      ...r.data,
      dueAt: new Date(dueAt).toISOString(),
      ...(moveTo === undefined ? {} : { moveTo: new Date(moveTo).toISOString() }),
    };
    const s = inForce.schedules.find((x) => x.id === o.schedule);
    const bad = (path: string, message: string): Result<OccurrenceException> => ({
      ok: false,
      problems: [{ path, message }],
    });
    if (!s) return bad('schedule', `no schedule ${o.schedule} in force`);
    if (nextOccurrence(s, dueAt - 1) !== dueAt) {
      const near = nextOccurrence(s, dueAt);
      return bad(
        'dueAt',
        `not an occurrence of ${s.id}${near === undefined ? '' : ` (the next one after it: ${new Date(near).toISOString()})`}`,
      );
    }
    if (dueAt <= now) return bad('dueAt', 'has passed: it was raised (or skipped) already');
    if (moveTo !== undefined && moveTo <= now) return bad('moveTo', 'must be in the future');
    if (o.device !== undefined && s.per === 'site')
      return bad('device', `${s.id} is one work order per site: give the site only`);
    const cur = this.occurrences.get(occurrenceKey(o))?.value.moveTo;
    if (cur !== undefined && Date.parse(cur) <= now)
      return bad('dueAt', `it was moved to ${cur} and raised then already`);
    const all = this.with(inForce, { occurrence: o });
    return all.ok ? { ok: true, value: o } : all;
  }

  /** Every schedule (the file's, the operators', retired ones) with its next `count` occurrences. */
  list(file: MaintenanceConfig, inForce: MaintenanceConfig, count: number, now: number): ScheduleView[] {
    const out = new Map<string, ScheduleView>();
    const fileOcc = new Map(file.occurrences.map((o) => [occurrenceKey(o), o]));
    const view = (s: Schedule, origin: 'file' | 'database', retired: boolean): ScheduleView => {
      const occ: ScheduleView['occurrences'] = [];
      for (const [key, o] of fileOcc)
        if (o.schedule === s.id && !this.occurrences.has(key))
          occ.push({ ...o, key, origin: 'file', by: null, at: null });
      for (const [key, o] of this.occurrences)
        if (o.value.schedule === s.id) occ.push({ ...o.value, key, origin: 'database', by: o.by, at: o.at });
      occ.sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt));
      const next: ScheduleView['next'] = [];
      const live = inForce.schedules.find((x) => x.id === s.id);
      for (let t = live ? nextOccurrence(live, now) : undefined; t !== undefined && next.length < count;) {
        const whole = occ.find((o) => o.site === undefined && Date.parse(o.dueAt) === t);
        next.push({
          dueAt: t,
          skip: whole?.skip ?? null,
          moveTo: whole?.moveTo === undefined ? null : Date.parse(whole.moveTo),
        });
        t = nextOccurrence(live!, t);
      }
      return { schedule: live ?? s, origin, retired, next, occurrences: occ };
    };
    for (const s of file.schedules) out.set(s.id, view(s, 'file', false));
    for (const [id, s] of this.schedules) out.set(id, view(s.schedule, 'database', s.retired));
    return [...out.values()];
  }
}
