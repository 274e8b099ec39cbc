import { z } from 'zod';
import { open } from './registry.js';
import { isoTime, roleEnum } from './common.js';

export const tokenInfoSchema = open({
  name: z.string(),
  role: roleEnum,
  /** `config`: from the config file (change it there); `api`: created over HTTP. */
  source: z.enum(['config', 'api']),
  createdAt: isoTime.nullable(),
  createdBy: z.string().nullable(),
  /** SSO: the identity provider's subject (`<iss>#<sub>`) of who created it; null otherwise. */
  createdBySubject: z.string().nullable(),
  expiresAt: isoTime.nullable(),
  lastUsed: isoTime.nullable(),
  revoked: z.boolean(),
  revokedAt: isoTime.nullable(),
  revokedBy: z.string().nullable(),
  revokedBySubject: z.string().nullable(),
  expired: z.boolean(),
});
/** The secret is in this answer only; the gateway keeps its sha256. */
export const createdTokenSchema = tokenInfoSchema.extend({ token: z.string() });

export const tokenName = z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must match [A-Za-z0-9_.@-]{1,64}');
export const createTokenBody = z.strictObject({
  name: tokenName,
  role: roleEnum,
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});

export const reloadSchema = z.object({
  status: z.enum(['applied', 'unchanged']),
  applied: z.array(z.string()),
  restartNeeded: z.array(z.string()),
});

export const notificationRowSchema = open({
  seq: z.number(),
  id: z.string(),
  channel: z.string(),
  event: z.string(),
  ticketId: z.string(),
  state: z.string(),
  attempts: z.number(),
  createdAt: isoTime,
  nextAttemptAt: isoTime.nullable(),
  deliveredAt: isoTime.nullable(),
  lastStatus: z.number().nullable(),
  lastError: z.string().nullable(),
});
export const notificationListQuery = z.strictObject({
  /** `archived`: delivered and moved out of the queue after `retentionDays` (kept for good). */
  state: z.enum(['pending', 'dead', 'delivered', 'archived']).default('dead'),
  channel: z.string().min(1).max(100).optional(),
  ticketId: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
export const notificationListSchema = open({
  channels: z.array(z.unknown()),
  events: z.array(notificationRowSchema),
});
export const seqParams = z.object({ seq: z.coerce.number().int().min(1) });

export type TokenInfo = z.infer<typeof tokenInfoSchema>;
