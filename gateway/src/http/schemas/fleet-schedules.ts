import { z } from 'zod';
import { scheduleSchema } from '../../workorders/maintenance-schema.js';
import { isoTime } from './common.js';
import { named } from './registry.js';

/**
 * Preventive-maintenance schedules from the dashboard (docs/fleet.md). The shape of
 * `workorders.maintenance.schedules[]` and `.occurrences[]` of the config file; the gateway checks
 * every change again with the file's own schema (cron fields, time zones, duplicates).
 */

const SCHEDULE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const rfc3339 = z.iso.datetime({ offset: true });

/**
 * `PUT /api/fleet/schedules`: a schedule created or edited. The config file's own `schedules[]`
 * entry (cron fields, IANA zones, kinds as the file takes them) with the change's note, so the
 * API and the file cannot drift apart; the gateway checks it again with the others (duplicates).
 */
export const scheduleBody = scheduleSchema.extend({ note: z.string().max(500).optional() });
// What a client sends: the fields with a default may be left out.
export type ScheduleBody = z.input<typeof scheduleBody>;

export const scheduleParams = z.object({ id: z.string().regex(SCHEDULE_ID, 'must be a schedule id') });

export const scheduleListQuery = z.strictObject({
  /** How many of each schedule's next occurrences to list. */
  count: z.coerce.number().int().min(1).max(50).default(6),
});

/** Which occurrence: the time its series has (RFC 3339), optionally one site's or one device's. */
const which = {
  dueAt: rfc3339,
  site: z.string().regex(NAME, 'must be a site').optional(),
  device: z.string().regex(NAME, 'must be a device id').optional(),
};

/** `POST /api/fleet/schedules/:id/move`: one occurrence falls due at `to` instead; the series stays. */
export const moveOccurrenceBody = z.strictObject({
  ...which,
  to: rfc3339,
  note: z.string().max(500).optional(),
});
export type MoveOccurrenceBody = z.infer<typeof moveOccurrenceBody>;

/** `POST /api/fleet/schedules/:id/skip`: one occurrence raises no work order; the reason is kept. */
export const skipOccurrenceBody = z.strictObject({
  ...which,
  reason: z.string().trim().min(1, 'give the reason').max(500),
});
export type SkipOccurrenceBody = z.infer<typeof skipOccurrenceBody>;

/** `DELETE /api/fleet/schedules/:id/occurrences?dueAt=`: a move or skip taken back. */
export const occurrenceQuery = z.strictObject({ ...which, note: z.string().max(500).optional() });

const occurrenceJson = z.object({
  key: z.string(),
  schedule: z.string(),
  dueAt: isoTime,
  site: z.string().optional(),
  device: z.string().optional(),
  /** Skipped: the reason. */
  skip: z.string().optional(),
  /** Moved: the new time. */
  moveTo: isoTime.optional(),
  origin: z.enum(['file', 'database']),
  /** Who set it and when (null: the config file). */
  by: z.string().nullable(),
  at: isoTime.nullable(),
});

/** A schedule as answered: what the file or an operator gave, defaults filled in (not re-checked). */
const scheduleJson = z
  .object({
    id: z.string(),
    title: z.string(),
    kinds: z.array(z.string()),
    sites: z.array(z.string()).optional(),
    per: z.enum(['device', 'site']),
    every: z.union([
      z.object({ days: z.number() }),
      z.object({ months: z.number(), day: z.number().optional() }),
      z.object({ cron: z.string() }),
    ]),
    hour: z.number().optional(),
    hourUtc: z.number().optional(),
    timeZone: z.string(),
    anchor: z.string(),
    windowHours: z.number(),
    priority: z.enum(['critical', 'high', 'medium', 'low']),
    standard: z.string().optional(),
    form: z.enum(['none', 'disinfection']),
  })
  .loose();

export const fleetScheduleSchema = named(
  z.object({
    schedule: scheduleJson,
    origin: z.enum(['file', 'database']),
    retired: z.boolean(),
    /** The series' next occurrences; `skip`/`moveTo` when one is skipped or moved for every asset. */
    next: z.array(z.object({ dueAt: isoTime, skip: z.string().nullable(), moveTo: isoTime.nullable() })),
    /** Every occurrence moved or skipped, past ones included. */
    occurrences: z.array(occurrenceJson),
    /** The pin (`fleet.pinned`) that keeps operators from changing it, or null. */
    pin: z.string().nullable(),
  }),
  'FleetSchedule',
  'A preventive-maintenance schedule with its next occurrences and the occurrences moved or skipped',
);
export type FleetSchedule = z.infer<typeof fleetScheduleSchema>;

export const fleetSchedulesSchema = z.object({
  /** The default zone of schedules without their own (`workorders.maintenance.timeZone`). */
  timeZone: z.string(),
  schedules: z.array(fleetScheduleSchema),
});
export type FleetSchedules = z.infer<typeof fleetSchedulesSchema>;
