import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { validatorCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { NotificationService, QueueRow } from '../../notifications/index.js';
import { verify } from '../../notifications/sign.js';
import { actionFields, checkAction } from '../../workorders/action-body.js';
import { allowedActions, TicketError, type Ticket, type WorkOrderService } from '../../workorders/index.js';
import type { SharedView } from '../../view/types.js';
import { badRequestOf } from '../error-handler.js';
import { HttpError } from '../errors.js';
import { forwardToHolder, fromView } from '../forward.js';
import type { InboundKeys } from '../inbound-keys.js';
import {
  notificationListQuery,
  notificationListSchema,
  notificationRowSchema,
  seqParams,
} from '../schemas/admin.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import { ticketSchema } from '../schemas/tickets.js';
import { ticketJson } from './tickets.js';

export interface NotificationRouteDeps {
  notifications: NotificationService;
  tickets: WorkOrderService;
  /**
   * Cluster mode (ADR 0166): a ticket another instance holds is forwarded to it, signed as received,
   * and the idempotency keys are kept cluster-wide. Absent: this instance's tickets only, as before.
   */
  cluster?: { view: SharedView; keys: InboundKeys };
  now?: () => number;
}

/** The headers of a signed inbound request that go along, unchanged, when it is forwarded. */
const SIGNED_HEADERS = ['x-gateway-timestamp', 'x-gateway-signature', 'idempotency-key'] as const;

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

const inboundHeaders = z.looseObject({
  'x-gateway-timestamp': z.string().optional().describe('Unix seconds the request was signed at'),
  'x-gateway-signature': z
    .string()
    .optional()
    .describe('`sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>`'),
  'idempotency-key': z
    .string()
    .optional()
    .describe('Unique per action (at most 200 characters); a replay is refused'),
});

function rowToJson(r: QueueRow) {
  return {
    seq: r.seq,
    id: r.eventId,
    channel: r.channel,
    event: r.event,
    ticketId: r.ticketId,
    state: r.state as string,
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
export const notificationRoutes: FastifyPluginAsyncZod<NotificationRouteDeps> = async (app, deps) => {
  const { notifications } = deps;
  const now = deps.now ?? Date.now;
  const counts = notifications.inbound;
  /** Cluster mode: the keys this instance is applying now (a claim of its own is then in progress). */
  const inFlight = new Set<string>();

  /**
   * Claims the key in the shared table: the claim's time when this request may apply it; 'replay' or
   * 'in progress' when another delivery has it. A claim this instance holds from before a restart
   * (it died between claim and commit, or could not release) is taken back: its workorders.db,
   * committed with the key, tells whether the action was applied. PostgreSQL unreachable: 503.
   */
  async function claimKey(
    keys: InboundKeys,
    key: string,
    ticketId: string,
    action: string,
    since: number,
  ): Promise<number | 'replay' | 'in progress'> {
    // Before any await: a second delivery to this instance sees the first at once.
    if (inFlight.has(key)) return 'in progress';
    inFlight.add(key);
    try {
      const at = now();
      const c = await fromView(keys.claim(key, ticketId, action, at, since));
      if (c === true) return at;
      if (c.instanceId === keys.instanceId) return c.at;
      inFlight.delete(key);
      // Not confirmed: another delivery is applying it now (an abandoned claim is taken over in `claim`).
      return c.confirmed ? 'replay' : 'in progress';
    } catch (err) {
      inFlight.delete(key);
      throw err;
    }
  }

  app.get(
    '/api/admin/notifications',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'The notification queue: pending, dead (default), delivered or archived events',
        querystring: notificationListQuery,
        response: { 200: notificationListSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const { state, channel, ticketId, limit } = req.query;
      const rows =
        state === 'archived'
          ? notifications.queue.archived(channel, ticketId, limit)
          : notifications.queue.list(state, channel, limit, ticketId);
      return {
        channels: notifications.channels(),
        events: rows.map((r) => ({
          ...rowToJson(r),
          ...(state === 'archived' ? { state: 'archived' } : {}),
        })),
      };
    },
  );

  app.post(
    '/api/admin/notifications/:seq/retry',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Send a dead notification again',
        params: seqParams,
        response: { 200: notificationRowSchema, 400: errorSchema, 404: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const seq = req.params.seq;
      const r = notifications.retryDead(seq);
      if (!r) throw new HttpError('GW_ERR_NOTIFY_NOT_DEAD', `no dead notification with seq ${seq}`);
      req.log.info({ user: req.principal?.name, seq, channel: r.channel }, 'dead notification retried');
      return rowToJson(r);
    },
  );

  if (!notifications.config.inbound.enabled) return;
  const cfg = notifications.config.inbound;

  // Its own scope: the body is taken raw (the signature covers the exact bytes) and checked against
  // its schema only once the signature is verified; the schema still documents it.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) =>
      done(null, body),
    );
    scope.setValidatorCompiler((route) =>
      route.httpPart === 'body'
        ? (data: unknown) => ({ value: data })
        : validatorCompiler(route as Parameters<typeof validatorCompiler>[0]),
    );
    scope.post(
      '/api/webhooks/inbound',
      {
        config: { role: 'signed' },
        schema: {
          summary:
            'A CMMS acts on a work order (signed with a shared secret; the signature is the credential)',
          headers: inboundHeaders,
          body: inboundBody,
          response: {
            200: ticketSchema,
            400: errorSchema,
            401: errorSchema,
            404: errorSchema,
            409: errorSchema,
            503: errorSchema,
          },
        },
      },
      async (req, reply) => {
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
          throw new HttpError(
            v.reason === 'stale' ? 'GW_ERR_WEBHOOK_STALE' : 'GW_ERR_WEBHOOK_SIGNATURE',
            v.message,
          );
        }
        const key = header(req.headers['idempotency-key']);
        if (!key || key.length > 200) {
          counts.invalid++;
          throw new HttpError(
            'GW_ERR_BAD_REQUEST',
            'headers.idempotency-key: needed (at most 200 characters)',
            {
              issues: [{ path: 'headers.idempotency-key', message: 'needed (at most 200 characters)' }],
            },
          );
        }
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch (err) {
          counts.invalid++;
          throw new HttpError('GW_ERR_BAD_REQUEST', `body: not valid JSON (${(err as Error).message})`);
        }
        const b = inboundBody.safeParse(json);
        if (!b.success) {
          counts.invalid++;
          throw badRequestOf(b.error, 'body');
        }
        const { ticketId, actor, externalRef, note: given, ...fields } = b.data;
        const replay = (inProgress = false) => {
          counts.replayed++;
          return new HttpError(
            'GW_ERR_WEBHOOK_REPLAY',
            inProgress
              ? `idempotency key ${key} is being applied by another delivery; nothing applied by this one`
              : `idempotency key ${key} was used already; nothing applied`,
          );
        };
        const cluster = deps.cluster;
        // Keys older than the local store keeps them are forgotten cluster-wide too (keepKeysHours).
        const since = now() - cfg.keepKeysHours * 3_600_000;
        if (cluster && !deps.tickets.get(ticketId)) {
          if (await fromView(cluster.keys.seen(key, since, now()))) throw replay();
          // Another instance's ticket: the holder checks the signature and the key again and acts.
          req.log.info({ ticketId, key }, 'inbound webhook forwarded to the ticket holder');
          await forwardToHolder(req, reply, cluster.view, 'ticket', ticketId, {
            raw,
            headers: SIGNED_HEADERS,
          });
          return;
        }
        // Cluster mode: the key is claimed cluster-wide before anything is applied (ADR 0176).
        const claimedAt = cluster
          ? await claimKey(cluster.keys, key, ticketId, fields.action, since)
          : undefined;
        if (claimedAt === 'replay') throw replay(false);
        if (claimedAt === 'in progress') throw replay(true);
        const note =
          externalRef !== undefined ? `${given ? `${given} ` : ''}(CMMS ref ${externalRef})` : given;
        const action = {
          ...fields,
          actor: `cmms:${actor}`,
          ...(note !== undefined ? { note } : {}),
        };
        let applied = false;
        try {
          let t: Ticket | null;
          if (deps.tickets.writesThrough) {
            // Cluster mode (ADR 0173): the change is in the shared view before the key and the
            // ticket commit here together (durably); a replay found then rolls the local commit back.
            t = await deps.tickets
              .actThrough(ticketId, action, () => {
                if (!notifications.queue.rememberInbound(key, ticketId, fields.action, now()))
                  throw new Replayed();
              })
              .catch((err: unknown) => {
                if (err instanceof Replayed) return null;
                throw err;
              });
          } else {
            // The key and the ticket change commit together: a replay finds the key, a failed action leaves none.
            // On disk before the answer, as every person's action (ADR 0091), opened outside the transaction.
            t = deps.tickets.durably(() =>
              notifications.queue.database.transaction(() => {
                if (!notifications.queue.rememberInbound(key, ticketId, fields.action, now())) return null;
                return deps.tickets.act(ticketId, action);
              })(),
            );
          }
          // Committed: applied now, or before (null: this instance's own claim from before a
          // restart, its key already in workorders.db). Either way the claim stays.
          applied = true;
          // Marked applied in the shared table: from now on a replay everywhere, never taken over.
          // Not marked (PostgreSQL unreachable): its claim is taken over after
          // INBOUND_CLAIM_SETTLE_MS only by a next holder, whose copy of the ticket decides.
          if (claimedAt !== undefined)
            await cluster!.keys.confirm(key, claimedAt, now()).catch((e: Error) => {
              req.log.warn({ key, err: e.message }, 'inbound idempotency key not confirmed (PostgreSQL)');
            });
          if (t === null) throw replay();
          counts.accepted++;
          return { ...ticketJson(t), allowedActions: allowedActions(t) };
        } catch (err) {
          if (err instanceof TicketError) counts.refused++;
          // Refused or failed: nothing applied, so the key is given back and a retry may apply.
          if (!applied && claimedAt !== undefined)
            await cluster!.keys.release(key, claimedAt).catch((e: Error) => {
              // Kept claimed by this instance: a retry reaching it is settled by its workorders.db.
              req.log.warn({ key, err: e.message }, 'inbound idempotency key not released (PostgreSQL)');
            });
          throw err;
        } finally {
          if (claimedAt !== undefined) inFlight.delete(key);
        }
      },
    );
  });
};

/** Thrown inside the local commit of a written-through inbound action whose key was used already. */
class Replayed extends Error {}
