import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';
import { RANK, type Role, type TokenStore } from './auth.js';

/**
 * Who may call a route, declared on the route as `config: { role }`:
 * - `viewer`, `engineer`, `admin`: a bearer token of at least that role;
 * - `public`: no token (health, metrics, the OpenAPI document and its page);
 * - `signed`: no bearer token; the handler checks the request's signature (inbound webhook).
 */
export type RouteRole = Role | 'public' | 'signed';
export const ROUTE_ROLES = ['public', 'signed', 'viewer', 'engineer', 'admin'] as const;

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: RouteRole;
    /**
     * Also accept `?token=` in the query. Only for the live stream: a browser's EventSource cannot
     * set headers. A query string can end up in logs, so nothing else takes it.
     */
    queryToken?: boolean;
  }
}

function bearerOf(req: FastifyRequest, queryToken: boolean): string | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  if (m) return m[1];
  if (!queryToken) return undefined;
  const t = (req.query as Record<string, unknown> | undefined)?.token;
  return typeof t === 'string' && t !== '' ? t : undefined;
}

/**
 * The one check of every route's role, from its config, before the body is read or validated: a
 * caller without the right token learns nothing about the route's schema. An `/api` route that
 * declares no role is refused (fail closed); other URLs without one (the dashboard's files) are open.
 */
export function enforceRouteRoles(app: FastifyInstance, tokens: TokenStore): void {
  app.addHook('onRequest', async (req) => {
    const cfg = req.routeOptions.config;
    const role = cfg.role;
    if (role === undefined) {
      const url = req.routeOptions.url;
      if (url !== undefined && (url === '/api' || url.startsWith('/api/')))
        throw new HttpError('GW_ERR_INTERNAL', `route ${req.method} ${url} declares no role`);
      return;
    }
    if (role === 'public' || role === 'signed') return;
    const queryToken = cfg.queryToken === true;
    const token = bearerOf(req, queryToken);
    if (token === undefined)
      throw new HttpError(
        'GW_ERR_UNAUTHORIZED',
        queryToken
          ? 'missing Authorization: Bearer <token> (or ?token=)'
          : 'missing Authorization: Bearer <token>',
      );
    const rec = tokens.find(token);
    if (!rec) throw new HttpError('GW_ERR_UNAUTHORIZED', 'unknown, revoked or expired token');
    if (RANK[rec.role] < RANK[role])
      throw new HttpError(
        'GW_ERR_FORBIDDEN',
        `this action needs the ${role} role; the token has ${rec.role}`,
      );
    req.principal = rec;
    tokens.noteUse(rec);
  });
}
