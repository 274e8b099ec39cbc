import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DashboardConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';

/**
 * Where `npm run build` puts the dashboard: `dist/dashboards/web`. From the compiled gateway
 * (dist/gateway/src/http) that is three folders up; from the sources (tests through tsx) it is
 * the same place under the repository's dist/.
 */
export function defaultDashboardDir(): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  return basename(root) === 'dist' ? join(root, 'dashboards/web') : join(root, 'dist/dashboards/web');
}

/** Hashed assets never change under their name; index.html must always be fetched again. */
function cacheHeaders(reply: FastifyReply, path: string): void {
  if (path.endsWith('.html')) reply.header('cache-control', 'no-cache');
  else if (path.includes('/assets/')) reply.header('cache-control', 'public, max-age=31536000, immutable');
  else reply.header('cache-control', 'public, max-age=3600');
}

/** Answers a GET that matched no route with index.html; undefined when it is not for the dashboard. */
export type DashboardFallback = (req: FastifyRequest, reply: FastifyReply) => FastifyReply | undefined;

/**
 * Serves the built dashboard at `/`: static files, and index.html for any other GET outside
 * `/api` (the dashboard routes in the URL's hash, but a bookmarked path should still open it).
 * Returns the fallback for the not-found handler, or undefined when there is nothing to serve:
 * the gateway still runs and `/api` still works, with a warning in the log.
 */
export function registerDashboard(
  app: FastifyInstance,
  cfg: DashboardConfig,
  log: Logger,
): DashboardFallback | undefined {
  if (!cfg.enabled) return undefined;
  const dir = resolve(cfg.dir ?? defaultDashboardDir());
  if (!existsSync(join(dir, 'index.html'))) {
    log.warn(
      { dir },
      'dashboard not built (no index.html): run `npm run build`; the HTTP API works without it',
    );
    return undefined;
  }
  void app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    wildcard: false,
    cacheControl: false,
    setHeaders: cacheHeaders,
  });
  log.info({ dir }, 'dashboard served at /');
  return (req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    if (req.method !== 'GET' || path === '/api' || path.startsWith('/api/') || path === '/metrics')
      return undefined;
    reply.header('cache-control', 'no-cache');
    return reply.sendFile('index.html');
  };
}
