import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { requireRole, sendError, type TokenStore } from '../auth.js';
import { TokenError, type TokenDb } from '../token-db.js';
import { badRequest } from './validate.js';

export interface TokenRouteDeps {
  tokens: TokenStore;
  db: TokenDb;
  now?: () => number;
}

const name = z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must match [A-Za-z0-9_.@-]{1,64}');
const createBody = z.strictObject({
  name,
  role: z.enum(['viewer', 'engineer', 'admin']),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});

function tokenError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof TokenError) return sendError(reply, err.status, err.code, err.message);
  throw err;
}

/**
 * Token management (admin): list (never a secret or hash), create (the secret shown once, in the
 * 201 answer), revoke (the record stays; the token is refused from the next request on).
 */
export function registerTokenRoutes(app: FastifyInstance, deps: TokenRouteDeps): void {
  const admin = requireRole(deps.tokens, 'admin');
  const now = deps.now ?? Date.now;

  app.get('/api/admin/tokens', { preHandler: admin }, async () => ({ tokens: deps.db.list() }));

  app.post('/api/admin/tokens', { preHandler: admin }, async (req, reply) => {
    const b = createBody.safeParse(req.body ?? {});
    if (!b.success) return badRequest(reply, b.error, 'body');
    const expiresAt = b.data.expiresAt === undefined ? undefined : Date.parse(b.data.expiresAt);
    if (expiresAt !== undefined && expiresAt <= now())
      return sendError(reply, 400, 'bad_request', 'body.expiresAt: must be in the future');
    try {
      const { secret, info } = deps.db.create({ ...b.data, expiresAt }, req.principal!.name);
      return reply.code(201).send({ ...info, token: secret });
    } catch (err) {
      return tokenError(reply, err);
    }
  });

  app.post<{ Params: { name: string } }>(
    '/api/admin/tokens/:name/revoke',
    { preHandler: admin },
    async (req, reply) => {
      try {
        return deps.db.revoke(req.params.name, req.principal!.name);
      } catch (err) {
        return tokenError(reply, err);
      }
    },
  );
}
