import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AccountService } from '../../accounts/service.js';
import type { TokenStore } from '../auth.js';
import { HttpError } from '../errors.js';
import { sharedRead } from '../route-roles.js';
import { withSignInErrorPage } from '../sign-in-error-page.js';
import { changePasswordBody, linkQuery, sessionSchema, signInBody } from '../schemas/accounts.js';
import { authErrors, errorSchema } from '../schemas/common.js';
import {
  clearSessionCookie,
  SESSION_COOKIE,
  sameOrigin,
  setSessionCookie,
  type SecureCookie,
} from '../session-cookie.js';

export interface SessionRouteDeps {
  accounts: AccountService;
  tokens: TokenStore;
  secureCookie: SecureCookie;
  /** The single sign-on button's text, when an identity provider is configured. */
  ssoLabel?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Signing in and out (ADR 0130): `POST /api/session` checks a password (or an API token) and sets
 * the HttpOnly session cookie; `DELETE` ends the session on the server; `GET` says who is signed in.
 * The session id is only ever in the cookie: never in a body, a URL or a log line.
 */
export const sessionRoutes: FastifyPluginAsyncZod<SessionRouteDeps> = async (app, deps) => {
  const { accounts } = deps;

  app.post(
    '/api/session',
    {
      config: { role: 'public' },
      schema: {
        summary: 'Sign in with a username and password (or an API token); sets the session cookie',
        body: signInBody,
        response: {
          200: sessionSchema,
          400: errorSchema,
          401: errorSchema,
          403: errorSchema,
          429: errorSchema,
        },
      },
    },
    async (req, reply) => {
      // A browser posting from another origin would sign the victim into the attacker's account.
      if (
        (req.headers['sec-fetch-site'] !== undefined || req.headers.origin !== undefined) &&
        !sameOrigin(req)
      )
        throw new HttpError('GW_ERR_CROSS_SITE', 'refused: sign in from the dashboard itself');
      const body = req.body;
      if ('token' in body) {
        const rec = await sharedRead(deps.tokens.lookup(body.token));
        if (!rec) throw new HttpError('GW_ERR_UNAUTHORIZED', 'unknown, revoked or expired token');
        const s = await accounts.sessionFor({ username: rec.name, role: rec.role, via: 'token' });
        setSessionCookie(req, reply, s.id, s.expiresAt, deps.secureCookie);
        return { name: rec.name, role: rec.role, via: 'token' as const, expiresAt: iso(s.expiresAt) };
      }
      const s = await accounts.signIn(body.username, body.password, req.ip);
      setSessionCookie(req, reply, s.id, s.expiresAt, deps.secureCookie);
      return {
        name: s.user.username,
        role: s.user.role,
        via: 'password' as const,
        mustChangePassword: s.user.mustChangePassword,
        displayName: s.user.displayName,
        language: s.user.language,
        expiresAt: iso(s.expiresAt),
      };
    },
  );

  app.get(
    '/api/session',
    {
      config: { role: 'viewer', beforePasswordChange: true },
      schema: {
        summary: 'Who is signed in (or whose token this is)',
        response: { 200: sessionSchema, ...authErrors },
      },
    },
    async (req) => {
      const p = req.principal!;
      const user = p.via === 'token' ? undefined : await accounts.get(p.name);
      return {
        name: p.name,
        role: p.role,
        via: p.via,
        mustChangePassword: p.session?.mustChangePassword ?? false,
        ...(user ? { displayName: user.displayName, language: user.language } : {}),
      };
    },
  );

  app.delete(
    '/api/session',
    {
      config: { role: 'viewer', beforePasswordChange: true },
      schema: {
        summary: 'Sign out: the session ends on the server and the cookie is cleared',
        response: { 204: z.null(), ...authErrors },
      },
    },
    async (req, reply) => {
      const id = req.principal!.session?.id;
      if (id !== undefined) await accounts.sessions.end(id);
      clearSessionCookie(reply);
      req.log.info({ user: req.principal!.name }, 'signed out');
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/session/password',
    {
      config: { role: 'viewer', beforePasswordChange: true },
      schema: {
        summary: "Change the signed-in person's own password (their other sessions end)",
        body: changePasswordBody,
        response: { 204: z.null(), 400: errorSchema, ...authErrors },
      },
    },
    async (req, reply) => {
      const p = req.principal!;
      if (!p.session || (p.via !== 'password' && p.via !== 'link'))
        throw new HttpError(
          'GW_ERR_BAD_REQUEST',
          'only a person signed in with a password has one to change',
        );
      await accounts.changePassword(p.name, req.body.currentPassword, req.body.newPassword, p.session.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/session/providers',
    {
      config: { role: 'public' },
      schema: {
        summary: 'How one can sign in here: a password, and single sign-on when configured',
        response: {
          200: z.object({
            password: z.boolean(),
            sso: z.object({ label: z.string(), start: z.string() }).nullable(),
          }),
        },
      },
    },
    async () => ({
      password: true,
      sso: deps.ssoLabel === undefined ? null : { label: deps.ssoLabel, start: '/api/session/oidc/start' },
    }),
  );

  app.get(
    '/api/session/link',
    {
      config: { role: 'public' },
      schema: {
        summary:
          "Exchange a one-time sign-in link's code (the demo prints one) for a session; redirects to /. " +
          'A used or expired link: JSON, or a page in the Accept-Language to a browser (Accept: text/html)',
        querystring: linkQuery,
        response: { 302: z.null(), 400: errorSchema, 401: errorSchema },
      },
    },
    async (req, reply) => {
      // A browser following the link gets a page in its language when the link is spent.
      const r = await withSignInErrorPage(req, reply, 'link', async () => {
        const found = await accounts.redeemLink(req.query.code);
        if (!found)
          throw new HttpError(
            'GW_ERR_SIGN_IN_FAILED',
            'this sign-in link was used already or has expired: sign in with a username and password',
          );
        return found;
      });
      if ('answered' in r) return r.answered;
      const s = r.value;
      setSessionCookie(req, reply, s.id, s.expiresAt, deps.secureCookie);
      // To `/`: the code leaves the address bar and the history entry is replaced by the redirect.
      return reply.code(302).header('location', '/').header('referrer-policy', 'no-referrer').send(null);
    },
  );
};

export { SESSION_COOKIE };
