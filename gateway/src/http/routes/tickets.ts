import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { allowedActions, ticketToJson, type Ticket, type WorkOrderService } from '../../workorders/index.js';
import { HttpError } from '../errors.js';
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
}

/**
 * A ticket as the API shows it. ticketToJson builds it untyped; the response schema checks it on
 * the way out, so the cast claims nothing the serializer does not verify.
 */
export const ticketJson = (t: Ticket, withHistory = true): TicketJson =>
  ticketToJson(t, withHistory) as TicketJson;

/** Work orders (CONTRACT.md): viewers read, engineers act and raise tickets by hand. */
export const ticketRoutes: FastifyPluginAsyncZod<TicketRouteDeps> = async (app, deps) => {
  const { tickets } = deps;

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
      const page = tickets.page({
        ...f,
        offset,
        withHistory,
        ...(overdue !== undefined ? { overdue: overdue === 'true' } : {}),
      });
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
      const t = tickets.get(req.params.id);
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
        response: { 200: ticketSchema, 400: errorSchema, 404: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const p = req.principal!;
      // An SSO user's provider subject goes with the name into the ticket's history.
      const t = tickets.act(req.params.id, {
        ...req.body,
        actor: p.name,
        ...(p.subject ? { actorSubject: p.subject } : {}),
      });
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
