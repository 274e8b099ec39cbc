import type { FastifyInstance } from 'fastify';
import { requireRole, type TokenStore } from '../auth.js';

/** A reload as the route sees it (the gateway's ReloadResult, without importing the gateway). */
export type AdminReloadResult =
  | { ok: true; applied: string[]; restartNeeded: string[] }
  | { ok: false; problems: { path: string; message: string }[] };

export interface AdminRouteDeps {
  tokens: TokenStore;
  /** Reads the config file again and applies what can change while running. */
  reload(): AdminReloadResult;
}

/**
 * `POST /api/admin/reload` (admin): the same as SIGHUP, for hosts where sending a signal is
 * awkward (containers, Windows services). A bad file answers 400 with every key path and changes nothing.
 */
export function registerAdminRoutes(app: FastifyInstance, deps: AdminRouteDeps): void {
  const admin = requireRole(deps.tokens, 'admin');
  app.post('/api/admin/reload', { preHandler: admin }, async (req, reply) => {
    const r = deps.reload();
    if (!r.ok) {
      return reply.code(400).send({
        error: {
          code: 'GW_ERR_CONFIG_INVALID',
          message: `config not reloaded: ${r.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
          problems: r.problems,
        },
      });
    }
    req.log.info({ user: req.principal?.name, applied: r.applied }, 'config reloaded over HTTP');
    return {
      status: r.applied.length > 0 ? 'applied' : 'unchanged',
      applied: r.applied,
      restartNeeded: r.restartNeeded,
    };
  });
}
