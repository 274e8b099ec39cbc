import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from './config/schema.js';
import type { Lifecycle } from './core/lifecycle.js';
import type { Logger } from './core/log.js';
import type { Component, ComponentHealth } from './core/types.js';
import type { TokenStore } from './http/auth.js';
import { TokenDb, type TokenAdmin } from './http/token-db.js';
import { SharedTokenDb } from './http/shared-tokens.js';
import { tokenMetrics } from './http/token-metrics.js';
import type { SharedDb } from './storage/sql/shared-db.js';

/**
 * The API tokens of the config: the admin token (from the config, or generated on first start and
 * kept in `<dataDir>/admin-token`) and the configured ones, put into the token store on start.
 */
export class ConfigTokens implements Component {
  readonly name = 'config tokens';
  /** The admin token in force; unknown when configured as a hash. */
  adminToken?: string;

  constructor(
    private readonly cfg: GatewayConfig,
    private readonly tokens: TokenStore,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { http } = this.cfg;
    if (http.adminTokenSha256 !== undefined) this.tokens.addHash('admin', 'admin', http.adminTokenSha256);
    else {
      this.adminToken = this.loadAdminToken();
      this.tokens.add('admin', 'admin', this.adminToken);
    }
    for (const t of http.tokens) {
      if (t.token !== undefined) this.tokens.add(t.name, t.role, t.token);
      else this.tokens.addHash(t.name, t.role, t.tokenSha256!);
    }
  }

  async stop(): Promise<void> {}

  health(): ComponentHealth {
    return { state: 'ok' };
  }

  private loadAdminToken(): string {
    if (this.cfg.http.adminToken) return this.cfg.http.adminToken;
    const file = join(resolve(this.cfg.dataDir), 'admin-token');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    const token = randomBytes(24).toString('base64url');
    writeFileSync(file, token + '\n', { mode: 0o600 });
    this.log.warn({ file }, 'no admin token configured: generated one and stored it in this file');
    return token;
  }
}

/**
 * The config's tokens, then those created over `/api/admin/tokens`: hashed in tokens.db on one
 * instance; in cluster mode (`storage.postgres`) in the shared table, into which this instance's
 * tokens.db is copied at start (ADR 0165).
 */
export async function startAccess(d: {
  cfg: GatewayConfig;
  tokens: TokenStore;
  log: Logger;
  lifecycle: Lifecycle;
  shared?: SharedDb;
  metrics?: Registry;
}): Promise<{ config: ConfigTokens; tokenDb: TokenAdmin }> {
  const { cfg, lifecycle, shared } = d;
  const config = await lifecycle.start(new ConfigTokens(cfg, d.tokens, d.log), { report: false });
  const common = {
    tokens: d.tokens,
    configTokens: () => [
      { name: 'admin', role: 'admin' as const },
      ...cfg.http.tokens.map((t) => ({ name: t.name, role: t.role })),
    ],
    log: d.log.child({ module: 'tokens' }),
  };
  const file = join(cfg.dataDir, 'tokens.db');
  const tokenDb =
    cfg.storage.postgres !== undefined && shared
      ? new SharedTokenDb({
          ...common,
          db: () => shared.db,
          localFile: file,
          // Revocations heard at once (ADR 0175); SQLite as the shared store has no NOTIFY.
          listenUrl: shared.dialect === 'postgres' ? cfg.storage.postgres : undefined,
        })
      : new TokenDb({ ...common, file });
  await lifecycle.start(tokenDb);
  if (d.metrics) tokenMetrics(d.metrics, d.tokens, tokenDb instanceof SharedTokenDb ? tokenDb : undefined);
  return { config, tokenDb };
}
