import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { requireRole, sendError, type TokenStore } from '../http/auth.js';
import { badRequest } from '../http/routes/validate.js';
import { actionFields, checkAction } from '../workorders/action-body.js';
import { TicketError, ticketToJson } from '../workorders/types.js';
import { allowedActions } from '../workorders/state-machine.js';
import type { WorkOrderService } from '../workorders/service.js';
import type { NotificationService } from './service.js';
import type { QueueRow } from './queue.js';
import { verify } from './sign.js';

export interface NotificationRouteDeps {
  notifications: NotificationService;
  tickets: WorkOrderService;
  tokens: TokenStore;
  now?: () => number;
}

const inboundBody = z
  .strictObject({
    ticketId: z.string().min(1).max(200),
    ...actionFields,
    /** The CMMS user; the audit trail shows `cmms:<actor>`. */
    actor: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must match [A-Za-z0-9_.@-]{1,64}'),
    /** The CMMS's own reference for the work order, kept in the audit line. */
    externalRef: z.string().min(1).max(200).optional(),
  })
  .superRefine(checkAction);

const listQuery = z.strictObject({
  /** `archived`: delivered and moved out of the queue after `retentionDays` (kept for good). */
  state: z.enum(['pending', 'dead', 'delivered', 'archived']).default('dead'),
  channel: z.string().min(1).max(100).optional(),
  ticketId: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

function rowToJson(r: QueueRow): Record<string, unknown> {
  return {
    seq: r.seq,
    id: r.eventId,
    channel: r.channel,
    event: r.event,
    ticketId: r.ticketId,
    state: r.state,
    attempts: r.attempts,
    createdAt: new Date(r.createdAt).toISOString(),
    nextAttemptAt: r.state === 'pending' ? new Date(r.nextAt).toISOString() : null,
    deliveredAt: r.deliveredAt === null ? null : new Date(r.deliveredAt).toISOString(),
    lastStatus: r.lastStatus,
    lastError: r.lastError,
  };
}

const header = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/**
 * `POST /api/webhooks/inbound` (the signature is the credential, no bearer token) and the admin view
 * of the notification queue: `GET /api/admin/notifications`, `POST /api/admin/notifications/:seq/retry`.
 */
export function registerNotificationRoutes(app: FastifyInstance, deps: NotificationRouteDeps): void {
  const admin = requireRole(deps.tokens, 'admin');
  const { notifications } = deps;
  const now = deps.now ?? Date.now;
  const counts = notifications.inbound;

  app.get('/api/admin/notifications', { preHandler: admin }, async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    const { state, channel, ticketId, limit } = q.data;
    const rows =
      state === 'archived'
        ? notifications.queue.archived(channel, ticketId, limit)
        : notifications.queue.list(state, channel, limit, ticketId);
    return {
      channels: notifications.channels(),
      events: rows.map((r) => ({ ...rowToJson(r), ...(state === 'archived' ? { state: 'archived' } : {}) })),
    };
  });

  app.post<{ Params: { seq: string } }>(
    '/api/admin/notifications/:seq/retry',
    { preHandler: admin },
    async (req, reply) => {
      const seq = Number(req.params.seq);
      if (!Number.isInteger(seq) || seq < 1)
        return sendError(reply, 400, 'bad_request', 'params.seq: must be a positive integer');
      const r = notifications.retryDead(seq);
      if (!r) return sendError(reply, 404, 'GW_ERR_NOTIFY_NOT_DEAD', `no dead notification with seq ${seq}`);
      req.log.info({ user: req.principal?.name, seq, channel: r.channel }, 'dead notification retried');
      return rowToJson(r);
    },
  );

  if (!notifications.config.inbound.enabled) return;
  const cfg = notifications.config.inbound;

  // Its own scope: the body is taken raw (the signature covers the exact bytes) and parsed only once verified.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) =>
      done(null, body),
    );
    scope.post('/api/webhooks/inbound', async (req, reply): Promise<FastifyReply> => {
      const raw = typeof req.body === 'string' ? req.body : '';
      const v = verify(
        notifications.inboundSecrets(),
        {
          timestamp: header(req.headers['x-gateway-timestamp']),
          signature: header(req.headers['x-gateway-signature']),
        },
        raw,
        cfg.toleranceSec,
        now(),
      );
      if (!v.ok) {
        if (v.reason === 'stale') counts.stale++;
        else counts.badSignature++;
        req.log.warn({ reason: v.reason, ip: req.ip }, 'inbound webhook refused');
        return sendError(
          reply,
          401,
          v.reason === 'stale' ? 'GW_ERR_WEBHOOK_STALE' : 'GW_ERR_WEBHOOK_SIGNATURE',
          v.message,
        );
      }
      const key = header(req.headers['idempotency-key']);
      if (!key || key.length > 200) {
        counts.invalid++;
        return sendError(
          reply,
          400,
          'bad_request',
          'headers.idempotency-key: needed (at most 200 characters)',
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch (err) {
        counts.invalid++;
        return sendError(reply, 400, 'bad_request', `body: not valid JSON (${(err as Error).message})`);
      }
      const b = inboundBody.safeParse(json);
      if (!b.success) {
        counts.invalid++;
        return badRequest(reply, b.error, 'body');
      }
      const { ticketId, actor, externalRef, note: given, ...fields } = b.data;
      const note = externalRef !== undefined ? `${given ? `${given} ` : ''}(CMMS ref ${externalRef})` : given;
      try {
        // The key and the ticket change commit together: a replay finds the key, a failed action leaves none.
        const t = notifications.queue.database.transaction(() => {
          if (!notifications.queue.rememberInbound(key, ticketId, fields.action, now())) return null;
          return deps.tickets.act(ticketId, {
            ...fields,
            actor: `cmms:${actor}`,
            ...(note !== undefined ? { note } : {}),
          });
        })();
        if (t === null) {
          counts.replayed++;
          return sendError(
            reply,
            409,
            'GW_ERR_WEBHOOK_REPLAY',
            `idempotency key ${key} was used already; nothing applied`,
          );
        }
        counts.accepted++;
        return reply.send({ ...ticketToJson(t), allowedActions: allowedActions(t) });
      } catch (err) {
        if (err instanceof TicketError) {
          counts.refused++;
          return sendError(reply, err.status, err.code, err.message);
        }
        throw err;
      }
    });
  });
}
