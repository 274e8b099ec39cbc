import { IANAZone } from 'luxon';
import { z } from 'zod';
import { RULE_CLASSES, SEVERITIES } from '../rules/types.js';
import { maintenanceSchema } from './maintenance-schema.js';
import { reportScheduleFields } from './report-schema.js';
import { LANGUAGES, PRIORITIES } from './types.js';

const minutes = z.number().positive();
const sla = (respondMin: number, resolveMin: number, escalateEveryMin: number) =>
  z
    .strictObject({
      /** From creation to acknowledge. */
      respondMin: minutes.default(respondMin),
      /** From creation to resolve; past it the ticket escalates. */
      resolveMin: minutes.default(resolveMin),
      /** After a missed deadline, the ticket goes one level further up the chain after each such interval. */
      escalateEveryMin: minutes.default(escalateEveryMin),
    })
    .prefault({});

const timeZone = z
  .string()
  .refine((tz) => IANAZone.isValidZone(tz), 'must be an IANA time zone such as UTC or Asia/Shanghai');
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'must be HH:MM (00:00 to 24:00)');
const minutesOf = (v: string) => Number(v.slice(0, 2)) * 60 + Number(v.slice(3));

/**
 * Working hours: the deadlines of the listed priorities count working time only (local time of
 * `timeZone`), so a low-priority ticket raised on Friday evening is due on Monday. Critical
 * (safety) tickets run round the clock unless listed.
 */
export const calendarSchema = z
  .strictObject({
    enabled: z.boolean().default(false),
    timeZone: timeZone.default('UTC'),
    /** ISO weekdays, 1 Monday … 7 Sunday. */
    days: z.array(z.number().int().min(1).max(7)).min(1).default([1, 2, 3, 4, 5]),
    hours: z
      .strictObject({ start: hhmm.default('08:00'), end: hhmm.default('17:00') })
      .prefault({})
      .refine((h) => minutesOf(h.start) < minutesOf(h.end), {
        path: ['end'],
        message: 'must be after start',
      }),
    /** Local dates without work, `YYYY-MM-DD`. */
    holidays: z.array(z.iso.date()).default([]),
    /** The priorities whose deadlines follow the calendar. */
    priorities: z.array(z.enum(PRIORITIES)).default(['high', 'medium', 'low']),
  })
  .prefault({});

export type CalendarConfig = z.infer<typeof calendarSchema>;

const reason = z.string().regex(/^[a-z0-9_]{1,64}$/, 'must match [a-z0-9_]{1,64}, e.g. waiting_for_parts');

/**
 * Where the resolution clock pauses (DOMAIN.md: "waiting for parts"): a `hold` with one of
 * `reasons` stops it, one of `runningReasons` records the hold but leaves it running; any other
 * reason is refused.
 */
export const pauseSchema = z
  .strictObject({
    reasons: z.array(reason).default(['waiting_for_parts', 'waiting_for_customer', 'waiting_for_access']),
    runningReasons: z.array(reason).default([]),
    /** A hold without a reason stops the clock too. */
    withoutReason: z.boolean().default(true),
  })
  .prefault({})
  .superRefine((p, ctx) => {
    p.runningReasons.forEach((r, i) => {
      if (p.reasons.includes(r))
        ctx.addIssue({ code: 'custom', path: ['runningReasons', i], message: `${r} is also in reasons` });
    });
  });

/** Work orders; the gateway config mounts this at key `workorders`. Every figure is a DOMAIN.md default. */
/** One contact of the escalation chain (also what the on-call rota names). */
export const contactSchema = z.strictObject({
  name: z.string().min(1),
  /** Free text shown in the audit line (a phone number, say). */
  contact: z.string().optional(),
  email: z.email().optional(),
  /** The `name` of a webhook under `notifications.webhooks`. */
  webhook: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be the name of a webhook under notifications.webhooks')
    .optional(),
  /** The language of the mail this contact gets (absent: English), as the dashboard's `zh`/`en`. */
  language: z.enum(LANGUAGES).optional(),
});

export const workordersSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Which alarms become tickets. Safety-class alarms always do, whatever else says. */
  create: z
    .strictObject({
      classes: z.array(z.enum(RULE_CLASSES)).default(['safety', 'key', 'routine']),
      minSeverity: z.enum(SEVERITIES).default('warning'),
      /** Rules that always create tickets, whatever their class and severity. */
      rules: z.array(z.string().min(1)).default([]),
      /** Rules that never do (safety-class rules still do). */
      excludeRules: z.array(z.string().min(1)).default([]),
    })
    .prefault({}),
  /**
   * Rules whose condition comes and goes by itself: when `autoResolve`, a cleared alarm resolves
   * the ticket (it still needs verification before close).
   */
  transient: z
    .array(z.strictObject({ rule: z.string().min(1), autoResolve: z.boolean().default(true) }))
    .default([]),
  priority: z
    .strictObject({
      // (rule) safety/security > key > routine.
      safety: z.enum(PRIORITIES).default('critical'),
      key: z.enum(PRIORITIES).default('high'),
      routine: z.enum(PRIORITIES).default('medium'),
      /** Alarms of severity info get this priority (unless safety). */
      info: z.enum(PRIORITIES).default('low'),
      /** A critical asset ("VIP", key area) raises the priority one step. */
      criticalAssetBump: z.boolean().default(true),
      /** A critical-severity alarm raises the priority one step. */
      criticalSeverityBump: z.boolean().default(false),
    })
    .prefault({}),
  // (rule) routine: respond in 30 min, handle in 4 h; escalation after 2 h safety, 3 h key, 4 h routine;
  // safety: respond at once (default 15 min).
  sla: z
    .strictObject({
      critical: sla(15, 120, 120),
      high: sla(30, 180, 180),
      medium: sla(30, 240, 240),
      low: sla(120, 24 * 60, 24 * 60),
    })
    .prefault({}),
  /**
   * The contact chain, level 1 first; escalation walks up it level by level ("逐级向上联系"). A
   * contact with `email` is mailed when a ticket reaches its level, one with `webhook` gets the
   * escalation through that configured webhook (a chat room, a pager bridge): both through the
   * durable notification queue.
   */
  contacts: z
    .array(contactSchema)
    .min(1)
    .default([{ name: 'on-call engineer' }, { name: 'shift supervisor' }, { name: 'facility manager' }])
    // Applied live by Gateway.reload (the on-call rota and operators change it, docs/fleet.md).
    .meta({ restart: false }),
  /**
   * (rule) "逐级向上联系": a contact who cannot be reached is skipped at once, not at the next
   * escalation interval.
   */
  escalation: z
    .strictObject({
      /** A notification to the contact of the ticket's level parked as dead (after its retries) moves it up. */
      onDead: z.boolean().default(true),
      /** ...or one that has failed this many attempts (0: only when dead). */
      afterFailures: z.number().int().min(0).default(3),
      /** A ticket escalated to a contact and not acknowledged within this many minutes moves up (0: off). */
      ackTimeoutMin: z.number().min(0).default(0),
    })
    .prefault({}),
  /** (rule) the same fault on the same asset within half a year of a resolved ticket is a repeat. */
  repeatWindowDays: z.number().positive().default(183),
  /** How often deadlines are checked. */
  tickMs: z.number().int().min(100).max(600_000).default(30_000),
  /** Preventive-maintenance schedules (DOMAIN.md defaults: tank disinfection every 10 days, ...). */
  // Applied live by Gateway.reload (operators edit schedules and occurrences, docs/fleet.md).
  maintenance: maintenanceSchema.prefault({}).meta({ restart: false }),
  /**
   * The readings snapshot: besides the latest values, the history of the rule's metric over the
   * `historyMin` before the alarm, read from InfluxDB (when enabled) `delayMs` after the ticket is
   * raised so the readings that raised it have been written.
   */
  snapshot: z
    .strictObject({
      historyMin: z
        .number()
        .int()
        .min(1)
        .max(24 * 60)
        .default(60),
      delayMs: z.number().int().min(0).max(600_000).default(5000),
      maxPoints: z.number().int().min(1).max(100_000).default(720),
    })
    .prefault({}),
  /** Working hours for deadlines and escalation checks (off by default: deadlines run round the clock). */
  calendar: calendarSchema,
  /** Hold reasons that pause the resolution clock. */
  pause: pauseSchema,
  /** The monthly service report: its months begin at midnight in this zone; generation and delivery. */
  report: z.strictObject({ timeZone: timeZone.default('UTC'), ...reportScheduleFields }).prefault({}),
  /** Longest answer of a ticket list. */
  listLimit: z.number().int().min(1).max(100_000).default(1000),
});

export type WorkordersConfig = z.infer<typeof workordersSchema>;
