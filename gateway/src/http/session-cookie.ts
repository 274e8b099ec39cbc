import type { FastifyReply, FastifyRequest } from 'fastify';
import type { SessionInfo } from '../accounts/types.js';

/** The session cookie: HttpOnly (no script reads it), SameSite=Strict, Path=/. */
export const SESSION_COOKIE = 'fgw_session';

export type SecureCookie = 'auto' | 'always' | 'never';

/** What the HTTP layer needs of the sessions (accounts/sessions.ts fills it). */
export interface SessionLookup {
  lookup(id: string): Promise<SessionInfo | undefined>;
}

export function setSessionCookie(
  req: FastifyRequest,
  reply: FastifyReply,
  id: string,
  expiresAt: number,
  secure: SecureCookie,
): void {
  reply.setCookie(SESSION_COOKIE, id, {
    httpOnly: true,
    sameSite: 'strict',
    secure: secure === 'always' || (secure === 'auto' && req.protocol === 'https'),
    path: '/',
    // The absolute timeout: a browser restarted within the shift keeps the session, the server ends it anyway.
    expires: new Date(expiresAt),
  });
}

export function clearSessionCookie(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict' });
}

/**
 * A cookie-authenticated change must come from the dashboard's own origin (ADR 0132). Browsers
 * send `Sec-Fetch-Site` (all current ones) or at least `Origin` on a POST/PUT/PATCH/DELETE; a
 * request with neither is refused, since a cookie is only ever sent by a browser. SameSite=Strict
 * already keeps the cookie off requests from other sites; this also refuses other origins of the
 * same site (another port or subdomain of the same host).
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string') return site === 'same-origin';
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || origin === 'null') return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** A request that changes nothing: no same-origin check needed. */
export function isSafeMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}
