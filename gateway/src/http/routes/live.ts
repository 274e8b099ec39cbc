import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import type { LiveConfig } from '../../config/schema.js';
import type { LiveEvent, LiveHub } from '../../live/hub.js';
import { HttpError } from '../errors.js';
import { authErrors, errorSchema } from '../schemas/common.js';

export interface LiveRouteDeps {
  hub: LiveHub;
  cfg: LiveConfig;
}

const query = z.strictObject({
  /** Only events of this site (readings and alarms); ticket events carry their site too. */
  site: z.string().optional(),
  /** Comma-separated event types to receive; default all. */
  types: z.string().optional(),
});

interface Client {
  res: ServerResponse;
  stop(reason: string): void;
}

/**
 * `GET /api/live`: server-sent events (`reading`, `alarm`, `ticket`, and `ping` on connecting and
 * every keepAliveMs). Each client has a bound on what its socket has not taken yet; a client that
 * falls that far behind is disconnected (the browser's EventSource reconnects) rather than allowed
 * to grow the gateway's memory.
 */
export const liveRoutes: FastifyPluginAsyncZod<LiveRouteDeps> = async (app, deps) => {
  const clients = new Set<Client>();
  let dropped = 0;

  app.get(
    '/api/live',
    {
      // A browser's EventSource sends the session cookie; a token never goes in the URL (logs, history).
      config: { role: 'viewer' },
      schema: {
        summary: 'Live stream (server-sent events): `reading`, `alarm`, `ticket`, and `ping`',
        querystring: query,
        response: {
          200: {
            description: 'An event stream that stays open',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          400: errorSchema,
          503: errorSchema,
          ...authErrors,
        },
      },
    },
    async (req, reply) => {
      if (clients.size >= deps.cfg.maxClients)
        throw new HttpError('GW_ERR_UNAVAILABLE', `at most ${deps.cfg.maxClients} live clients`);
      const site = req.query.site;
      const types = req.query.types ? new Set(req.query.types.split(',').map((t) => t.trim())) : undefined;

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // nginx and similar proxies buffer responses unless told not to.
        'x-accel-buffering': 'no',
      });
      res.write('retry: 3000\n: connected\n\n');
      let seq = 0;
      const write = (chunk: string): void => {
        if (res.writableLength > deps.cfg.maxBufferedBytes) {
          dropped++;
          client.stop('slow client');
          return;
        }
        res.write(chunk);
      };
      const unsubscribe = deps.hub.subscribe((e: LiveEvent) => {
        if (types && !types.has(e.type)) return;
        if (site !== undefined && e.site !== undefined && e.site !== site) return;
        write(`id: ${++seq}\nevent: ${e.type}\ndata: ${e.json}\n\n`);
      });
      // A named event, not a comment: EventSource hides comments from the page, and the dashboard
      // needs to tell a quiet stream (meters report every 15 min) from a dead one.
      const every = deps.cfg.keepAliveMs;
      const ping = (): void =>
        write(`event: ping\ndata: {"ts":"${new Date().toISOString()}","everyMs":${every}}\n\n`);
      ping();
      const keepAlive = setInterval(ping, every);
      keepAlive.unref();
      const client: Client = {
        res,
        stop(reason: string) {
          if (!clients.delete(client)) return;
          unsubscribe();
          clearInterval(keepAlive);
          req.log.debug({ reason }, 'live client closed');
          if (reason === 'slow client') res.destroy();
          else res.end();
        },
      };
      clients.add(client);
      res.on('close', () => client.stop('disconnected'));
      res.on('error', () => client.stop('socket error'));
    },
  );

  // Open streams would keep app.close() waiting forever.
  app.addHook('preClose', async () => {
    for (const c of [...clients]) c.stop('server closing');
  });

  // How many clients and how many were dropped as too slow: for the log when the stream closes.
  app.addHook('onClose', async () => {
    app.log.debug({ clients: clients.size, dropped }, 'live stream closed');
  });
};
