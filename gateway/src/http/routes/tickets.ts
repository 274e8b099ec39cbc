import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { RULE_CLASSES } from '../../rules/types.js';
import {
  allowedActions,
  PRIORITIES,
  TICKET_STATUSES,
  TicketError,
  ticketToJson,
  type WorkOrderService,
} from '../../workorders/index.js';
import { actionBody } from '../../workorders/action-body.js';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { badRequest } from './validate.js';

export interface TicketRouteDeps {
  tickets: WorkOrderService;
  tokens: TokenStore;
}

const id = z.string().min(1).max(200);
const listQuery = z.strictObject({
  status: z.enum(TICKET_STATUSES).optional(),
  site: id.optional(),
  device: id.optional(),
  priority: z.enum(PRIORITIES).optional(),
  assignee: id.optional(),
  /** Changed at or after (RFC 3339): the answer is then oldest change first, for polling. */
  updatedSince: z.iso
    .datetime({ offset: true, error: 'must be an RFC 3339 time' })
    .transform((v) => Date.parse(v))
    .optional(),
  overdue: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).optional(),
  offset: z.coerce.number().int().min(0).max(10_000_000).optional(),
  /** `history`: each ticket with its audit trail (left out of lists by default, for size). */
  include: z.enum(['history']).optional(),
});
const createBody = z.strictObject({
  title: z.string().min(1).max(500),
  site: id,
  device: id.optional(),
  class: z.enum(RULE_CLASSES).optional(),
  priority: z.enum(PRIORITIES).optional(),
  serviceItem: z.string().min(1).max(500).optional(),
  standard: z.string().min(1).max(500).optional(),
  location: z.string().min(1).max(500).optional(),
  note: z.string().max(4000).optional(),
});

function ticketError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof TicketError) return sendError(reply, err.status, err.code, err.message);
  throw err;
}

/** Work orders (CONTRACT.md): viewers read, engineers act and raise tickets by hand. */
export function registerTicketRoutes(app: FastifyInstance, deps: TicketRouteDeps): void {
  const viewer = requireRole(deps.tokens, 'viewer');
  const engineer = requireRole(deps.tokens, 'engineer');
  const { tickets } = deps;

  app.get('/api/tickets', { preHandler: viewer }, async (req, reply) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return badRequest(reply, q.error, 'query');
    const { overdue, include, offset = 0, ...f } = q.data;
    const withHistory = include === 'history';
    const page = tickets.page({
      ...f,
      offset,
      withHistory,
      ...(overdue !== undefined ? { overdue: overdue === 'true' } : {}),
    });
    const next = offset + page.tickets.length;
    return {
      tickets: page.tickets.map((t) => ticketToJson(t, withHistory)),
      total: page.total,
      offset,
      limit: page.limit,
      nextOffset: next < page.total ? next : null,
    };
  });

  app.get<{ Params: { id: string } }>('/api/tickets/:id', { preHandler: viewer }, async (req, reply) => {
    const t = tickets.get(req.params.id);
    if (!t) return sendError(reply, 404, 'GW_ERR_TICKET_NOT_FOUND', `ticket ${req.params.id} not found`);
    return { ...ticketToJson(t), allowedActions: allowedActions(t) };
  });

  app.post<{ Params: { id: string } }>(
    '/api/tickets/:id/actions',
    { preHandler: engineer },
    async (req, reply) => {
      const b = actionBody.safeParse(req.body ?? {});
      if (!b.success) return badRequest(reply, b.error, 'body');
      try {
        const t = tickets.act(req.params.id, { ...b.data, actor: req.principal!.name });
        return { ...ticketToJson(t), allowedActions: allowedActions(t) };
      } catch (err) {
        return ticketError(reply, err);
      }
    },
  );

  app.post('/api/tickets', { preHandler: engineer }, async (req, reply) => {
    const b = createBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(reply, b.error, 'body');
    const t = tickets.create(b.data, req.principal!.name);
    return reply.code(201).send({ ...ticketToJson(t), allowedActions: allowedActions(t) });
  });
}
