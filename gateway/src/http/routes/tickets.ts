import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allowedActions, ticketToJson, type Ticket, type WorkOrderService } from '../../workorders/index.js';
import type { SharedView } from '../../view/types.js';
import { HttpError } from '../errors.js';
import { forwardToHolder, fromView } from '../forward.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import {
  newTicketBody,
  ticketActionBody,
  ticketListQuery,
  ticketPageSchema,
  ticketParams,
  ticketSchema,
  type Ticket as TicketJson,
} from '../schemas/tickets.js';

export interface TicketRouteDeps {
  tickets: WorkOrderService;
  /**
   * Cluster mode: lists and tickets of every instance from the shared view, actions on another
   * instance's ticket forwarded to it (ADR 0155, 0157). Absent: this instance's own, as before.
   */
  view?: SharedView;
}

/**
 * A ticket as the API shows it. ticketToJson builds it untyped; the response schema checks it on
 * the way out, so the cast claims nothing the serializer does not verify.
 */
export const ticketJson = (t: Ticket, withHistory = true): TicketJson =>
  ticketToJson(t, withHistory) as TicketJson;

/** Work orders (CONTRACT.md): viewers read, engineers act and raise tickets by hand. */
export const ticketRoutes: FastifyPluginAsyncZod<TicketRouteDeps> = async (app, deps) => {
  const { tickets, view } = deps;

  app.get(
    '/api/tickets',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'Work orders, a page at a time (`nextOffset`); `updatedSince` for polling',
        querystring: ticketListQuery,
        response: { 200: ticketPageSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const { overdue, include, offset = 0, ...f } = req.query;
      const withHistory = include === 'history';
      const q = {
        ...f,
        offset,
        withHistory,
        ...(overdue !== undefined ? { overdue: overdue === 'true' } : {}),
      };
      const page = view ? await viewPage(view, tickets, q) : tickets.page(q);
      const next = offset + page.tickets.length;
      return {
        tickets: page.tickets.map((t) => ticketJson(t, withHistory)),
        total: page.total,
        offset,
        limit: page.limit,
        nextOffset: next < page.total ? next : null,
      };
    },
  );

  app.get(
    '/api/tickets/:id',
    {
      config: { role: 'viewer' },
      schema: {
        summary: 'One work order with its audit trail and the actions allowed now',
        params: ticketParams,
        response: { 200: ticketSchema, 404: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      // This instance's own ticket is freshest in its own store; another instance's from the view.
      const t =
        tickets.get(req.params.id) ?? (view ? await fromView(view.getTicket(req.params.id)) : undefined);
      if (!t) throw new HttpError('GW_ERR_TICKET_NOT_FOUND', `ticket ${req.params.id} not found`);
      return { ...ticketJson(t), allowedActions: allowedActions(t) };
    },
  );

  app.post(
    '/api/tickets/:id/actions',
    {
      config: { role: 'engineer' },
      schema: {
        summary:
          'Act on a work order (acknowledge, assign, start, resolve, verify, close, reopen, comment, hold, resume)',
        params: ticketParams,
        body: ticketActionBody,
        response: {
          200: ticketSchema,
          400: errorSchema,
          404: errorSchema,
          409: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req, reply) => {
      if (view && !tickets.get(req.params.id)) {
        // Another instance's record: the change is made where it is held.
        await forwardToHolder(req, reply, view, 'ticket', req.params.id);
        return;
      }
      const p = req.principal!;
      // An SSO user's provider subject goes with the name into the ticket's history.
      const action = { ...req.body, actor: p.name, ...(p.subject ? { actorSubject: p.subject } : {}) };
      // Cluster mode: answered once the action is in the shared view (ADR 0173); alone, as before.
      const t = tickets.writesThrough
        ? await tickets.actThrough(req.params.id, action)
        : tickets.act(req.params.id, action);
      return { ...ticketJson(t), allowedActions: allowedActions(t) };
    },
  );

  app.post(
    '/api/tickets',
    {
      config: { role: 'engineer' },
      schema: {
        summary: 'Raise a work order by hand',
        body: newTicketBody,
        response: { 201: ticketSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req, reply) => {
      const t = tickets.create(req.body, req.principal!.name);
      return reply.code(201).send({ ...ticketJson(t), allowedActions: allowedActions(t) });
    },
  );
};

/** A page from the shared view, with the local list's page size rule (at most `workorders.listLimit`). */
async function viewPage(
  view: SharedView,
  tickets: WorkOrderService,
  q: Omit<Parameters<WorkOrderService['page']>[0], 'limit'> & { limit?: number },
): Promise<{ tickets: Ticket[]; total: number; limit: number }> {
  const max = tickets.listLimit;
  const limit = Math.min(q.limit ?? max, max);
  return { ...(await fromView(view.pageTickets({ ...q, limit, now: q.now ?? Date.now() }))), limit };
}
