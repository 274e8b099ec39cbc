import { z } from 'zod';
import { LANGUAGES, PRIORITIES } from '../workorders/types.js';
import { RULE_CLASSES } from '../rules/types.js';

/** The ticket events a channel can carry (docs/workorders.md, "Webhooks and email"). */
export const NOTIFY_EVENTS = ['ticket.created', 'ticket.updated', 'ticket.escalated'] as const;
export type NotifyEventType = (typeof NOTIFY_EVENTS)[number];

const name = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}');
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');
const secret = z.string().min(16, 'must be at least 16 characters');
const duration = z.number().int().positive();

/**
 * A secret given in the file (`secret`) or read from an environment variable (`secretEnv`), exactly
 * one. Checked here so a missing variable stops start-up with its key path; the value is read again
 * by the service when it starts (it never sits in the config object).
 */
function secretRefine(
  v: { secret?: string | undefined; secretEnv?: string | undefined },
  ctx: z.RefinementCtx,
) {
  if ((v.secret === undefined) === (v.secretEnv === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['secret'], message: 'needs exactly one of secret or secretEnv' });
    return;
  }
  if (v.secretEnv !== undefined) {
    const value = process.env[v.secretEnv];
    if (value === undefined || value.length < 16)
      ctx.addIssue({
        code: 'custom',
        path: ['secretEnv'],
        message: `environment variable ${v.secretEnv} must be set to at least 16 characters`,
      });
  }
}

const retrySchema = z
  .strictObject({
    /** First retry after about this long; doubles per attempt (with jitter) up to `maxMs`. */
    minMs: duration.default(1000),
    maxMs: duration.default(5 * 60_000),
  })
  .prefault({});

const givingUp = {
  /** Attempts before an event is parked in the dead letters (absent: no limit by count). */
  maxAttempts: z.number().int().min(1).optional(),
  /** Age after which an undelivered event is parked in the dead letters. */
  maxAgeHours: z.number().positive().default(72),
};

export const webhookSchema = z
  .strictObject({
    name,
    /** The receiver: http:// or https://. */
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    secret: secret.optional(),
    secretEnv: envName.optional(),
    /** Which events; absent: all. */
    events: z.array(z.enum(NOTIFY_EVENTS)).min(1).optional(),
    /** Only tickets of these priorities; absent: all. */
    priorities: z.array(z.enum(PRIORITIES)).min(1).optional(),
    /** Only tickets of these classes (a chat room for safety tickets, say); absent: all. */
    classes: z.array(z.enum(RULE_CLASSES)).min(1).optional(),
    /**
     * Only the escalations that reach a contact of `workorders.contacts` naming this webhook (a
     * person's chat or pager); without it the webhook gets those beside what its filters take.
     */
    contactsOnly: z.boolean().default(false),
    timeoutMs: duration.default(10_000),
    /** The language of the payload's human-readable `text` (an escalation to a contact: the contact's). */
    language: z.enum(LANGUAGES).default('en'),
    ...givingUp,
    retry: retrySchema,
    /** Extra request headers (an API key of the receiver, say). Never logged, never shown by the API. */
    headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/), z.string().max(4096)).default({}),
  })
  .superRefine(secretRefine);

const address = z.email();

export const emailSchema = z.strictObject({
  enabled: z.boolean().default(false),
  smtp: z
    .strictObject({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(1).max(65535).default(587),
      /** true: TLS from the start (port 465); false: STARTTLS when the server offers it. */
      secure: z.boolean().default(false),
      user: z.string().optional(),
      pass: z.string().optional(),
      /** The password from this environment variable instead of `pass`. */
      passEnv: envName.optional(),
      timeoutMs: duration.default(30_000),
      /** false accepts self-signed server certificates (a lab mail relay). */
      rejectUnauthorized: z.boolean().default(true),
    })
    .refine((s) => !(s.pass !== undefined && s.passEnv !== undefined), {
      message: 'give pass or passEnv, not both',
      path: ['pass'],
    })
    .prefault({}),
  from: address.default('gateway@localhost'),
  /** Everybody who gets every notified ticket. */
  to: z.array(address).default([]),
  /** Added by priority (a manager for critical tickets, say). */
  byPriority: z.partialRecord(z.enum(PRIORITIES), z.array(address)).default({}),
  /**
   * Safety-class tickets (gas leak, smoke, no chlorine residual, water in the server room): the on-call
   * engineer and the manager, notified together in one message (DOMAIN.md).
   */
  safety: z.array(address).default([]),
  events: z.array(z.enum(NOTIFY_EVENTS)).min(1).default(['ticket.created', 'ticket.escalated']),
  /** The language of mail to the addresses above; `languages` sets it per address. */
  language: z.enum(LANGUAGES).default('en'),
  languages: z.record(address, z.enum(LANGUAGES)).default({}),
  ...givingUp,
  retry: retrySchema,
});

export const inboundSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** Accepted signing secrets (more than one while rotating); `secretsEnv` names variables holding more. */
  secrets: z.array(secret).default([]),
  secretsEnv: z.array(envName).default([]),
  /** A request whose X-Gateway-Timestamp is further than this from now is refused (stale or replayed). */
  toleranceSec: z.number().int().min(1).max(3600).default(300),
  /** Idempotency keys are remembered this long; a key seen again is refused. */
  keepKeysHours: z
    .number()
    .positive()
    .default(7 * 24),
});

/** Ticket notifications: outgoing webhooks, email, and the inbound webhook of a CMMS. All off by default. */
export const notificationsSchema = z
  .strictObject({
    // Applied live by Gateway.reload (operators change them from the dashboard, docs/fleet.md).
    webhooks: z.array(webhookSchema).default([]).meta({ restart: false }),
    email: emailSchema.prefault({}).meta({ restart: false }),
    inbound: inboundSchema.prefault({}),
    /** How often the delivery workers look for due events when nothing woke them. */
    pollMs: z.number().int().min(50).max(60_000).default(1000),
    /** Delivered events stay in the queue this long, then move to the archive (notify_sent); pending and dead ones stay. */
    retentionDays: z.number().positive().default(30),
  })
  .superRefine((n, ctx) => {
    const seen = new Map<string, number>();
    n.webhooks.forEach((w, i) => {
      const j = seen.get(w.name);
      if (j !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['webhooks', i, 'name'],
          message: `duplicate (also webhooks.${j})`,
        });
      seen.set(w.name, i);
    });
    if (n.inbound.enabled && n.inbound.secrets.length === 0 && n.inbound.secretsEnv.length === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['inbound', 'secrets'],
        message: 'needed when inbound is enabled',
      });
    n.inbound.secretsEnv.forEach((v, i) => {
      const value = process.env[v];
      if (value === undefined || value.length < 16)
        ctx.addIssue({
          code: 'custom',
          path: ['inbound', 'secretsEnv', i],
          message: `environment variable ${v} must be set to at least 16 characters`,
        });
    });
    if (n.email.smtp.passEnv !== undefined && process.env[n.email.smtp.passEnv] === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['email', 'smtp', 'passEnv'],
        message: `environment variable ${n.email.smtp.passEnv} is not set`,
      });
  });

export type NotificationsConfig = z.infer<typeof notificationsSchema>;

/** Whether the email channel has anyone to write to besides escalation contacts. */
export function hasMailRecipients(e: EmailConfig): boolean {
  return (
    e.to.length + e.safety.length > 0 ||
    Object.values(e.byPriority).some((a) => a !== undefined && a.length > 0)
  );
}
export type WebhookConfig = z.infer<typeof webhookSchema>;
export type EmailConfig = z.infer<typeof emailSchema>;
export type InboundConfig = z.infer<typeof inboundSchema>;
export type RetryConfig = z.infer<typeof retrySchema>;

/** A webhook's signing secret, from the file or its environment variable. */
export function webhookSecret(w: WebhookConfig): string {
  return w.secret ?? process.env[w.secretEnv!] ?? '';
}

/** The inbound secrets in force: the file's and those of the named variables. */
export function inboundSecrets(c: InboundConfig): string[] {
  return [...c.secrets, ...c.secretsEnv.map((v) => process.env[v] ?? '').filter((s) => s.length >= 16)];
}

export function smtpPass(c: EmailConfig): string | undefined {
  return c.smtp.passEnv !== undefined ? process.env[c.smtp.passEnv] : c.smtp.pass;
}
