import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { HttpError } from '../errors.js';
import { createdTokenSchema, createTokenBody, tokenInfoSchema } from '../schemas/admin.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import type { TokenAdmin } from '../token-db.js';

export interface TokenRouteDeps {
  db: TokenAdmin;
  now?: () => number;
}

/**
 * Token management (admin): list (never a secret or hash), create (the secret shown once, in the
 * 201 answer), revoke (the record stays; the token is refused from the next request on).
 */
export const tokenRoutes: FastifyPluginAsyncZod<TokenRouteDeps> = async (app, deps) => {
  const now = deps.now ?? Date.now;

  app.get(
    '/api/admin/tokens',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Every token (never its secret or hash)',
        response: { 200: z.object({ tokens: z.array(tokenInfoSchema) }), ...authErrors },
      },
    },
    async () => ({ tokens: await deps.db.list() }),
  );

  app.post(
    '/api/admin/tokens',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Create a token; its secret is in this answer only',
        body: createTokenBody,
        response: { 201: createdTokenSchema, 400: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req, reply) => {
      const expiresAt = req.body.expiresAt === undefined ? undefined : Date.parse(req.body.expiresAt);
      if (expiresAt !== undefined && expiresAt <= now())
        throw new HttpError('GW_ERR_BAD_REQUEST', 'body.expiresAt: must be in the future');
      // A TokenError (exists, read-only) carries its catalogue code to the error handler.
      const p = req.principal!;
      const { secret, info } = await deps.db.create(
        { ...req.body, expiresAt },
        p.name,
        p.subject ?? undefined,
      );
      return reply.code(201).send({ ...info, token: secret });
    },
  );

  app.post(
    '/api/admin/tokens/:name/revoke',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Revoke a token created over the API (refused from its next request on)',
        params: z.object({ name: z.string().min(1).max(200) }),
        response: { 200: tokenInfoSchema, 404: errorSchema, 409: errorSchema, ...authErrors },
      },
    },
    async (req) =>
      await deps.db.revoke(req.params.name, req.principal!.name, req.principal!.subject ?? undefined),
  );
};
