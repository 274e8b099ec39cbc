import fastifyHelmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

export interface SecurityHeaderOptions {
  /** The listener speaks HTTPS: HSTS and upgrade-insecure-requests are sent (never over plain HTTP). */
  https: boolean;
  /** Strict-Transport-Security max-age under HTTPS; 0 sends none. */
  hstsMaxAgeSec: number;
}

/**
 * The Content Security Policy of every answer. The dashboard is one module script and one
 * stylesheet from the gateway itself (Vite puts nothing inline), so neither script nor style needs
 * 'unsafe-inline': the styles Preact and uPlot set on elements go through the CSSOM
 * (`element.style`), which style-src does not govern; a `style="..."` attribute in markup would be
 * refused. The live stream and the API are same-origin (connect-src 'self'); Vite inlines small
 * assets as data: URLs (img-src, font-src). The API reference page (swagger-ui) fits the same policy.
 */
export function cspDirectives(https: boolean): Record<string, string[]> {
  const d: Record<string, string[]> = {
    'default-src': ["'self'"],
    'base-uri': ["'self'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:'],
    'font-src': ["'self'", 'data:'],
    'connect-src': ["'self'"],
    'object-src': ["'none'"],
    'form-action': ["'self'"],
    'frame-ancestors': ["'none'"],
  };
  // Over plain HTTP it would send every same-origin request to https:// where nothing listens.
  if (https) d['upgrade-insecure-requests'] = [];
  return d;
}

/**
 * The one `<style>` element swagger-ui (the API reference page at /api/docs) puts into its page at
 * run time, by its SHA-256 as CSP wants it. Allowed on that page only, by hash rather than
 * 'unsafe-inline'; a swagger-ui upgrade that changes it is caught by test/e2e/dashboard-https.test.ts,
 * whose failure names the new hash Chromium computed.
 */
export const SWAGGER_UI_STYLE_HASHES = ["'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"];

/** The policy of the API reference page: the global one with swagger-ui's own style element allowed. */
export function docsCsp(header: string): string {
  return header.replace(
    /(^|;\s*)style-src 'self'/,
    `$1style-src 'self' ${SWAGGER_UI_STYLE_HASHES.join(' ')}`,
  );
}

/**
 * Security headers on every answer through @fastify/helmet: the CSP above, no framing
 * (frame-ancestors 'none' and X-Frame-Options DENY), nosniff, Referrer-Policy no-referrer,
 * same-origin opener and resource policies, and HSTS only when the gateway itself speaks HTTPS
 * (behind a TLS-terminating proxy the proxy sends it; over plain HTTP browsers ignore it anyway).
 * Register before the routes.
 */
export function registerSecurityHeaders(app: FastifyInstance, opts: SecurityHeaderOptions): void {
  void app.register(fastifyHelmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: cspDirectives(opts.https) },
    strictTransportSecurity:
      opts.https && opts.hstsMaxAgeSec > 0
        ? { maxAge: opts.hstsMaxAgeSec, includeSubDomains: true, preload: false }
        : false,
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
  });
}
