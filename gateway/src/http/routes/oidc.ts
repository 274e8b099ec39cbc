import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { OIDC_CALLBACK, type OidcSignIn } from '../../accounts/oidc.js';
import { errorSchema } from '../schemas/common.js';
import { setSessionCookie, type SecureCookie } from '../session-cookie.js';
import { withSignInErrorPage } from '../sign-in-error-page.js';

export interface OidcRouteDeps {
  oidc: OidcSignIn;
  secureCookie: SecureCookie;
}

/** Binds the browser that started a sign-in to the one that comes back (Lax: the return is a cross-site GET). */
const FLOW_COOKIE = 'fgw_oidc';
const FLOW_PATH = '/api/session/oidc';

/**
 * Single sign-on (ADR 0133): `start` sends the browser to the identity provider, `callback` takes it
 * back, opens a session (the same cookie as a password sign-in) and redirects to the dashboard.
 */
export const oidcRoutes: FastifyPluginAsyncZod<OidcRouteDeps> = async (app, deps) => {
  app.get(
    `${FLOW_PATH}/start`,
    {
      config: { role: 'public' },
      schema: {
        summary: 'Start single sign-on: redirects to the identity provider',
        response: { 302: z.null(), 502: errorSchema },
      },
    },
    async (req, reply) => {
      const { flow, url } = await deps.oidc.start();
      reply.setCookie(FLOW_COOKIE, flow, {
        httpOnly: true,
        sameSite: 'lax',
        secure: deps.secureCookie === 'always' || (deps.secureCookie === 'auto' && req.protocol === 'https'),
        path: FLOW_PATH,
        maxAge: 600,
      });
      return reply.code(302).header('location', url).send(null);
    },
  );

  app.get(
    OIDC_CALLBACK,
    {
      config: { role: 'public' },
      schema: {
        summary: "The identity provider's redirect back: opens a session and redirects to /",
        response: { 302: z.null(), 401: errorSchema, 403: errorSchema },
      },
    },
    async (req, reply) => {
      const callback = new URL(req.url, deps.oidc.settings.publicUrl).toString();
      reply.clearCookie(FLOW_COOKIE, { path: FLOW_PATH });
      // A refusal reaches a browser as a page in its language, an API client as JSON.
      const r = await withSignInErrorPage(req, reply, 'sso', () =>
        deps.oidc.finish(req.cookies[FLOW_COOKIE], callback),
      );
      if ('answered' in r) return r.answered;
      const s = r.value;
      setSessionCookie(req, reply, s.id, s.expiresAt, deps.secureCookie);
      return reply.code(302).header('location', '/').header('referrer-policy', 'no-referrer').send(null);
    },
  );
};
