import { fastifyCookie } from '@fastify/cookie';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';
import { RANK, type Principal, type Role, type TokenStore } from './auth.js';
import { isSafeMethod, sameOrigin, SESSION_COOKIE, type SessionLookup } from './session-cookie.js';

/**
 * Who may call a route, declared on the route as `config: { role }`:
 * - `viewer`, `engineer`, `admin`: a bearer token or a session cookie of at least that role;
 * - `public`: no credential (health, metrics, the OpenAPI document and its page, signing in);
 * - `signed`: no bearer token; the handler checks the request's signature (inbound webhook).
 */
export type RouteRole = Role | 'public' | 'signed';
export const ROUTE_ROLES = ['public', 'signed', 'viewer', 'engineer', 'admin'] as const;

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: RouteRole;
    /**
     * Open to a session whose password must be changed first (who am I, sign out, change the
     * password); every other route answers GW_ERR_PASSWORD_CHANGE_REQUIRED to such a session.
     */
    beforePasswordChange?: boolean;
  }
}

function bearerOf(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  return m ? m[1] : undefined;
}

/** Cluster mode: the shared token table not readable is 503 (retryable) with why, not "unknown token". */
export async function sharedRead<T>(read: Promise<T>): Promise<T> {
  try {
    return await read;
  } catch (err) {
    throw new HttpError(
      'GW_ERR_UNAVAILABLE',
      `the cluster's shared token table (PostgreSQL) cannot be read now: ${(err as Error).message}`,
    );
  }
}

/** The request's credential: a bearer token first (machines), else the session cookie (people). */
async function principalOf(
  req: FastifyRequest,
  tokens: TokenStore,
  sessions: SessionLookup | undefined,
): Promise<Principal | undefined> {
  const token = bearerOf(req);
  if (token !== undefined) {
    const rec = await sharedRead(tokens.lookup(token));
    if (!rec) {
      // Counted: a flood of made-up bearers shows in /metrics (gateway_api_token_refused_total).
      tokens.refused++;
      throw new HttpError('GW_ERR_UNAUTHORIZED', 'unknown, revoked or expired token');
    }
    tokens.noteUse(rec);
    return { name: rec.name, role: rec.role, via: 'token' };
  }
  // Parsed here as well: this hook may run before the cookie plugin's own (registration order).
  const cookies = req.cookies ?? fastifyCookie.parse(req.headers.cookie ?? '');
  const sid = cookies[SESSION_COOKIE];
  if (sid === undefined || sid === '' || !sessions) return undefined;
  const s = await sessions.lookup(sid);
  // A session opened with an API token lasts only as long as the token.
  if (!s || (s.via === 'token' && !(await sharedRead(tokens.isLive(s.username)))))
    throw new HttpError('GW_ERR_UNAUTHORIZED', 'the session has ended (signed out, timed out or disabled)');
  // Only changes need the origin check: a cross-site read cannot see the answer (no CORS).
  if (!isSafeMethod(req.method) && !sameOrigin(req))
    throw new HttpError(
      'GW_ERR_CROSS_SITE',
      'refused: a change with the session cookie must come from the dashboard (Origin / Sec-Fetch-Site)',
    );
  return {
    name: s.username,
    role: s.role,
    via: s.via,
    subject: s.subject,
    session: { id: sid, mustChangePassword: s.mustChangePassword },
  };
}

/**
 * The one check of every route's role, from its config, before the body is read or validated: a
 * caller without the right credential learns nothing about the route's schema. An `/api` route that
 * declares no role is refused (fail closed); other URLs without one (the dashboard's files) are open.
 */
export function enforceRouteRoles(
  app: FastifyInstance,
  tokens: TokenStore,
  sessions: SessionLookup | undefined,
): void {
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
    const p = await principalOf(req, tokens, sessions);
    if (!p)
      throw new HttpError(
        'GW_ERR_UNAUTHORIZED',
        'sign in (session cookie) or send Authorization: Bearer <token>',
      );
    if (p.session?.mustChangePassword && cfg.beforePasswordChange !== true)
      throw new HttpError(
        'GW_ERR_PASSWORD_CHANGE_REQUIRED',
        'choose a new password first (POST /api/session/password)',
      );
    if (RANK[p.role] < RANK[role])
      throw new HttpError('GW_ERR_FORBIDDEN', `this action needs the ${role} role; you have ${p.role}`);
    req.principal = p;
  });
}
