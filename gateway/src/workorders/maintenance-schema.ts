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
  })
  .superRefine((m, ctx) => {
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
