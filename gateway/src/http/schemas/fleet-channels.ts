import { z } from 'zod';
import { named } from './registry.js';

/**
 * Notification channels from the dashboard (docs/fleet.md, ADR 0144). Bodies are checked loosely
 * here (types) and fully by the config file's own schemas (notifications/schema.ts), whose
 * problems come back with their key paths. Secrets are write-only: no answer carries one.
 */

const channelName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}');
const note = z.string().max(500).optional();
const events = z.array(z.string()).optional();

/** `PUT /api/fleet/channels/webhooks`: a webhook created or edited; a secret not sent is kept. */
export const webhookBody = z.strictObject({
  name: channelName,
  url: z.string().min(1).max(2000),
  /** The signing secret (16 characters at least); absent: the one stored is kept. */
  secret: z.string().max(512).optional(),
  /** The signing secret from this environment variable instead. */
  secretEnv: z.string().max(128).optional(),
  events,
  priorities: z.array(z.string()).optional(),
  classes: z.array(z.string()).optional(),
  contactsOnly: z.boolean().optional(),
  timeoutMs: z.number().optional(),
  language: z.string().optional(),
  maxAttempts: z.number().optional(),
  maxAgeHours: z.number().optional(),
  retry: z.strictObject({ minMs: z.number().optional(), maxMs: z.number().optional() }).optional(),
  /** Header name → value; a value null keeps the stored one; a header not listed is removed; absent: all kept. */
  headers: z.record(z.string(), z.string().nullable()).optional(),
  /** true: kept but not used (refused while a contact names it). */
  disabled: z.boolean().optional(),
  note,
});
export type WebhookBody = z.infer<typeof webhookBody>;

/** `PUT /api/fleet/channels/email`: the email channel (SMTP relay, sender, recipients); the password not sent is kept. */
export const emailBody = z.strictObject({
  enabled: z.boolean(),
  smtp: z
    .strictObject({
      host: z.string().optional(),
      port: z.number().optional(),
      secure: z.boolean().optional(),
      user: z.string().optional(),
      pass: z.string().max(512).optional(),
      passEnv: z.string().max(128).optional(),
      timeoutMs: z.number().optional(),
      rejectUnauthorized: z.boolean().optional(),
    })
    .optional(),
  from: z.string().optional(),
  to: z.array(z.string()).optional(),
  byPriority: z.record(z.string(), z.array(z.string())).optional(),
  safety: z.array(z.string()).optional(),
  events,
  language: z.string().optional(),
  languages: z.record(z.string(), z.string()).optional(),
  maxAttempts: z.number().optional(),
  maxAgeHours: z.number().optional(),
  retry: z.strictObject({ minMs: z.number().optional(), maxMs: z.number().optional() }).optional(),
  note,
});
export type EmailBody = z.infer<typeof emailBody>;

export const webhookParams = z.object({ name: channelName });
export const channelNoteQuery = z.strictObject({ note });

/** `POST /api/fleet/channels/test`: a test notification through one channel in force. */
export const channelTestBody = z.strictObject({
  /** `webhook:<name>` or `email`. */
  channel: z.string().regex(/^(webhook:[A-Za-z0-9_-]{1,64}|email)$/, 'must be webhook:<name> or email'),
  /** email: the addresses to write to (default: the channel's `to`). */
  to: z.array(z.email()).max(20).optional(),
});

export const channelTestResult = named(
  z.object({
    channel: z.string(),
    /** delivered, or what the queue would do with the answer: retry later, or dead (refused for good). */
    verdict: z.enum(['delivered', 'retry', 'dead']),
    status: z.number().int().nullable(),
    error: z.string().nullable(),
  }),
  'ChannelTest',
  "A test notification's outcome: the channel's verdict, the receiver's status, the error",
);

const origin = z.enum(['file', 'database']);

export const channelsSchema = named(
  z.object({
    webhooks: z.array(
      z.looseObject({
        name: z.string(),
        url: z.string(),
        origin,
        disabled: z.boolean(),
        /** Whether a signing secret is set (never the secret). */
        secretSet: z.boolean(),
        /** Header names, each value shown as `(secret)`. */
        headers: z.record(z.string(), z.literal('(secret)')),
        /** Contacts reached through it: it cannot be removed or disabled while any. */
        usedBy: z.array(z.string()),
      }),
    ),
    email: z.looseObject({
      origin,
      enabled: z.boolean(),
      /** The SMTP settings; `passSet` says whether a password is set (never the password). */
      smtp: z.looseObject({ passSet: z.boolean() }),
    }),
  }),
  'Channels',
  'The notification channels in force (file and operators), secrets never included',
);
export type ChannelsJson = z.infer<typeof channelsSchema>;
