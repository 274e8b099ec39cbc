import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { HttpError } from '../errors.js';
import { reloadSchema } from '../schemas/admin.js';
import { authErrors, errorSchema } from '../schemas/common.js';

/** A reload as the route sees it (the gateway's ReloadResult, without importing the gateway). */
export type AdminReloadResult =
  | { ok: true; applied: string[]; restartNeeded: string[] }
  | { ok: false; problems: { path: string; message: string }[] };

export interface AdminRouteDeps {
  /** Reads the config file again and applies what can change while running. */
  reload(): AdminReloadResult;
}

/**
 * `POST /api/admin/reload` (admin): the same as SIGHUP, for hosts where sending a signal is
 * awkward (containers, Windows services). A bad file answers 400 with every key path and changes nothing.
 */
export const adminRoutes: FastifyPluginAsyncZod<AdminRouteDeps> = async (app, deps) => {
  app.post(
    '/api/admin/reload',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Read the config file again and apply what can change while running (as SIGHUP)',
        response: { 200: reloadSchema, 400: errorSchema, ...authErrors },
      },
    },
    async (req) => {
      const r = deps.reload();
      if (!r.ok)
        throw new HttpError(
          'GW_ERR_CONFIG_INVALID',
          `config not reloaded: ${r.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
          { problems: r.problems },
        );
      req.log.info({ user: req.principal?.name, applied: r.applied }, 'config reloaded over HTTP');
      return {
        status: r.applied.length > 0 ? ('applied' as const) : ('unchanged' as const),
        applied: r.applied,
        restartNeeded: r.restartNeeded,
      };
    },
  );
};
