import { IANAZone } from 'luxon';
import { z } from 'zod';
import { parseCron } from '../core/cron.js';
import { PRIORITIES } from './types.js';

/** Completion forms a maintenance ticket may demand at resolve. */
export const MAINTENANCE_FORMS = ['none', 'disinfection'] as const;
export type MaintenanceForm = (typeof MAINTENANCE_FORMS)[number];

const every = z.union([
  /** Every N days from `anchor`. */
  z.strictObject({ days: z.number().int().min(1).max(3660) }),
  /** Every `months` months on day `day` (1-28, so every month has it). */
  z.strictObject({
    months: z.number().int().min(1).max(120),
    day: z.number().int().min(1).max(28).default(1),
  }),
  /** Five-field cron, in the schedule's time zone. */
  z.strictObject({
    cron: z.string().superRefine((s, ctx) => {
      try {
        parseCron(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  }),
]);

export const scheduleSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must match [A-Za-z0-9_.-]{1,64}'),
  title: z.string().min(1),
  /** Asset kinds the schedule applies to. */
  kinds: z.array(z.string().min(1)).min(1),
  /** Sites it applies to (absent: every site with such an asset). */
  sites: z.array(z.string().min(1)).optional(),
  /** One work order per asset (a tank), or one per site (the server room's extinguishers). */
  per: z.enum(['device', 'site']).default('device'),
  every,
  /** Hour of the day, in the schedule's time zone, that occurrences of `days` and `months` schedules fall due (default 8). */
  hour: z.number().int().min(0).max(23).optional(),
  /** The same in UTC (older configs); only with a UTC time zone. */
  hourUtc: z.number().int().min(0).max(23).optional(),
  /** IANA zone of the schedule's dates and hours (default `maintenance.timeZone`). */
  timeZone: z
    .string()
    .refine((tz) => IANAZone.isValidZone(tz), 'must be an IANA time zone such as UTC or Asia/Shanghai')
    .optional(),
  /** Start of a `days` schedule's count (RFC 3339). */
  anchor: z.iso.datetime({ offset: true }).default('2026-01-01T00:00:00Z'),
  /** The work is due within this many hours of the occurrence; past it, it escalates. */
  windowHours: z.number().positive().default(24),
  priority: z.enum(PRIORITIES).default('medium'),
  standard: z.string().optional(),
  form: z.enum(MAINTENANCE_FORMS).default('none'),
});

export type Schedule = z.infer<typeof scheduleSchema>;

/**
 * One occurrence of a schedule handled apart from its series (docs/fleet.md): moved to another
 * time, or skipped with a reason (no work order). The series itself stays as it is.
 */
export const occurrenceSchema = z
  .strictObject({
    schedule: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must match [A-Za-z0-9_.-]{1,64}'),
    /** The occurrence as the series has it (RFC 3339). */
    dueAt: z.iso.datetime({ offset: true }),
    /** Only this site's (and `device`'s) occurrence; absent: every asset of the schedule. */
    site: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}')
      .optional(),
    device: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}')
      .optional(),
    /** Skipped: the reason, kept and shown; no work order is raised for it. */
    skip: z.string().trim().min(1, 'give the reason').max(500).optional(),
    /** Moved: falls due at this time instead (RFC 3339). */
    moveTo: z.iso.datetime({ offset: true }).optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.skip === undefined) === (o.moveTo === undefined))
      ctx.addIssue({
        code: 'custom',
        path: ['skip'],
        message: 'give exactly one of skip (a reason) or moveTo',
      });
    if (o.device !== undefined && o.site === undefined)
      ctx.addIssue({ code: 'custom', path: ['site'], message: 'a device needs its site' });
  });

export type OccurrenceException = z.infer<typeof occurrenceSchema>;

/** The key of an occurrence exception: the schedule, the series' due time and the assets it reaches. */
export function occurrenceKey(
  o: Pick<OccurrenceException, 'schedule' | 'dueAt' | 'site' | 'device'>,
): string {
  const at = new Date(o.dueAt).toISOString();
  return o.site === undefined ? `${o.schedule}@${at}` : `${o.schedule}@${at}@${o.site}/${o.device ?? '*'}`;
}

/** DOMAIN.md "Preventive maintenance" defaults. */
export const DEFAULT_SCHEDULES: z.input<typeof scheduleSchema>[] = [
  {
    id: 'tank-disinfection',
    title: 'Disinfect the water tank',
    kinds: ['chlorination'],
    every: { days: 10 },
    standard: 'rule: 每10天消毒一次; log the time and the amount of disinfectant',
    form: 'disinfection',
  },
  {
    id: 'tank-cleaning',
    title: 'Clean the water tank',
    kinds: ['chlorination'],
    every: { months: 6, day: 1 },
    windowHours: 7 * 24,
    standard: 'default: at least every 6 months',
  },
  {
    id: 'fire-extinguisher-check',
    title: 'Check the server-room fire extinguishers',
    kinds: ['env-probe'],
    per: 'site',
    every: { months: 1, day: 1 },
    windowHours: 72,
    standard: 'rule: monthly',
  },
  {
    id: 'backup-check',
    title: 'Check the backups',
    kinds: ['env-probe'],
    per: 'site',
    every: { months: 1, day: 1 },
    windowHours: 72,
    standard: 'rule: backups are checked every month',
  },
];

export const maintenanceSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** IANA zone of every schedule without its own `timeZone`: local days, months, hours and cron fields. */
    timeZone: z
      .string()
      .refine((tz) => IANAZone.isValidZone(tz), 'must be an IANA time zone such as UTC or Asia/Shanghai')
      .default('UTC'),
    schedules: z
      .array(scheduleSchema)
      .prefault(DEFAULT_SCHEDULES)
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((s, i) => {
          if (seen.has(s.id))
            ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate schedule ${s.id}` });
          seen.add(s.id);
        });
      }),
    /** Occurrences moved or skipped (an operator's changes land here too, docs/fleet.md). */
    occurrences: z
      .array(occurrenceSchema)
      .default([])
      .superRefine((list, ctx) => {
        const seen = new Set<string>();
        list.forEach((o, i) => {
          const key = occurrenceKey(o);
          if (seen.has(key))
            ctx.addIssue({ code: 'custom', path: [i, 'dueAt'], message: `duplicate occurrence ${key}` });
          seen.add(key);
        });
      }),
  })
  .superRefine((m, ctx) => {
    const ids = new Set(m.schedules.map((s) => s.id));
    m.occurrences.forEach((o, i) => {
      if (!ids.has(o.schedule))
        ctx.addIssue({
          code: 'custom',
          path: ['occurrences', i, 'schedule'],
          message: `no schedule ${o.schedule}`,
        });
    });
    m.schedules.forEach((s, i) => {
      if (s.hour !== undefined && s.hourUtc !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['schedules', i, 'hourUtc'],
          message: 'give hour or hourUtc, not both',
        });
      const zone = s.timeZone ?? m.timeZone;
      if (s.hourUtc !== undefined && zone !== 'UTC')
        ctx.addIssue({
          code: 'custom',
          path: ['schedules', i, 'hourUtc'],
          message: `the schedule runs in ${zone}: give its local hour as hour`,
        });
    });
  })
  // Each schedule carries its zone, so its occurrences can be computed from it alone.
  .transform((m) => ({
    ...m,
    schedules: m.schedules.map((s) => ({ ...s, timeZone: s.timeZone ?? m.timeZone })),
  }));

export type MaintenanceConfig = z.infer<typeof maintenanceSchema>;
