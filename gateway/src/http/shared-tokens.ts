import { existsSync } from 'node:fs';
import type { Kysely } from 'kysely';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { EPOCH_MS } from '../storage/sql/columns.js';
import type { SharedMigration } from '../storage/sql/migrations.js';
import { type Role, type TokenBackend, type TokenRecord, type TokenStore } from './auth.js';
import {
  newTokenRow,
  TokenDb,
  TokenError,
  tokenInfos,
  type TokenAdmin,
  type TokenInfo,
  type TokenRow,
} from './token-db.js';

/** The shared table of API tokens: the columns of tokens.db, so a local token is copied as it is. */
export type SharedTokenTables = { api_tokens: TokenRow };

export const TOKEN_STEPS: readonly SharedMigration[] = [
  {
    name: 'tokens-0001-api-tokens',
    up: async (db) => {
      await db.schema
        .createTable('api_tokens')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('expires_at', EPOCH_MS)
        .addColumn('revoked_at', EPOCH_MS)
        .addColumn('revoked_by', 'text')
        .addColumn('last_used_at', EPOCH_MS)
        .addColumn('created_by_subject', 'text')
        .addColumn('revoked_by_subject', 'text')
        .execute();
    },
  },
];

export interface SharedTokenDbDeps {
  db: () => Kysely<object>;
  tokens: TokenStore;
  /** Names of the tokens from the config (listed, never revoked over the API). */
  configTokens: () => { name: string; role: Role }[];
  /** This instance's tokens.db, if it has one: its tokens are copied into the shared table at start. */
  localFile?: string;
  log?: Logger;
  now?: () => number;
  /** How often the `lastUsed` times seen here are written (default once a minute). */
  flushMs?: number;
}

/**
 * Cluster mode (ADR 0165): API tokens in the shared table `api_tokens`, checked there on each
 * request (the role hook is async), so a revocation on one instance holds on every instance from
 * the next request on. `lastUsed` is kept in memory and written at most once a minute per token.
 */
export class SharedTokenDb implements Component, TokenAdmin, TokenBackend {
  readonly name = 'tokens';
  private readonly now: () => number;
  /** The last use of each token seen on this instance, and which of them are not written yet. */
  private readonly lastUsed = new Map<string, number>();
  private readonly unwritten = new Set<string>();
  private timer?: NodeJS.Timeout;
  private offUse?: () => void;
  private started = false;
  private lastError?: string;

  constructor(private readonly deps: SharedTokenDbDeps) {
    this.now = deps.now ?? Date.now;
  }

  private get db(): Kysely<SharedTokenTables> {
    return this.deps.db().withTables<SharedTokenTables>();
  }

  async start(): Promise<void> {
    if (this.deps.localFile !== undefined && existsSync(this.deps.localFile))
      await this.copyLocal(this.deps.localFile);
    this.deps.tokens.useBackend(this);
    this.offUse = this.deps.tokens.onUse((rec) => this.noteUse(rec));
    this.timer = setInterval(() => void this.flush(), this.deps.flushMs ?? 60_000);
    this.timer.unref();
    this.started = true;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.offUse?.();
    this.offUse = undefined;
    this.deps.tokens.useBackend(undefined);
    await this.flush();
    this.started = false;
  }

  health(): ComponentHealth {
    if (!this.started) return { state: 'stopped' };
    return this.lastError === undefined
      ? { state: 'ok', store: 'shared' }
      : { state: 'degraded', store: 'shared', error: this.lastError };
  }

  async byHash(hash: string): Promise<TokenRecord | undefined> {
    const r = await this.db
      .selectFrom('api_tokens')
      .select(['name', 'role', 'hash', 'expires_at'])
      .where('hash', '=', hash.toLowerCase())
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!r) return undefined;
    const rec: TokenRecord = { name: r.name, role: r.role, hash: r.hash };
    if (r.expires_at !== null) rec.expiresAt = r.expires_at;
    return rec;
  }

  async isLive(name: string): Promise<boolean> {
    const r = await this.db
      .selectFrom('api_tokens')
      .select('expires_at')
      .where('name', '=', name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return r !== undefined && (r.expires_at === null || r.expires_at > this.now());
  }

  async list(): Promise<TokenInfo[]> {
    const rows = await this.db
      .selectFrom('api_tokens')
      .selectAll()
      .orderBy('created_at')
      .orderBy('name')
      .execute();
    return tokenInfos(this.deps.configTokens(), rows, this.lastUsed, this.now());
  }

  async create(
    req: { name: string; role: Role; expiresAt?: number },
    by: string,
    bySubject?: string,
  ): Promise<{ secret: string; info: TokenInfo }> {
    const exists = () =>
      new TokenError(
        'GW_ERR_TOKEN_EXISTS',
        `a token named ${req.name} exists (revoked tokens keep their name)`,
        409,
      );
    if (this.deps.configTokens().some((t) => t.name === req.name)) throw exists();
    const { secret, row } = newTokenRow(req, by, bySubject, this.now());
    // One statement: two instances creating the same name at once cannot both succeed.
    const res = await this.db
      .insertInto('api_tokens')
      .values(row)
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0) === 0) throw exists();
    this.deps.log?.info({ name: req.name, role: req.role, by }, 'API token created (shared)');
    return { secret, info: (await this.list()).find((t) => t.name === req.name)! };
  }

  async revoke(name: string, by: string, bySubject?: string): Promise<TokenInfo> {
    if (this.deps.configTokens().some((t) => t.name === name))
      throw new TokenError(
        'GW_ERR_TOKEN_READONLY',
        `token ${name} comes from the config file (or GATEWAY_ADMIN_TOKEN): remove it there`,
        409,
      );
    const res = await this.db
      .updateTable('api_tokens')
      .set({ revoked_at: this.now(), revoked_by: by, revoked_by_subject: bySubject ?? null })
      .where('name', '=', name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0) this.deps.log?.info({ name, by }, 'API token revoked (shared)');
    const info = (await this.list()).find((t) => t.name === name && t.source === 'api');
    if (!info) throw new TokenError('GW_ERR_TOKEN_NOT_FOUND', `no token named ${name}`, 404);
    return info;
  }

  /** Writes the `lastUsed` times seen since the last flush: one UPDATE per token used, never per request. */
  async flush(): Promise<void> {
    const names = [...this.unwritten];
    this.unwritten.clear();
    for (const name of names) {
      const at = this.lastUsed.get(name)!;
      try {
        await this.db
          .updateTable('api_tokens')
          .set({ last_used_at: at })
          .where('name', '=', name)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
          .execute();
        this.lastError = undefined;
      } catch (err) {
        // Bookkeeping only: kept for the next flush, never fails a request.
        this.unwritten.add(name);
        this.lastError = `lastUsed not written: ${(err as Error).message}`;
        this.deps.log?.warn({ err: (err as Error).message, name }, 'token lastUsed not stored');
        return;
      }
    }
  }

  private noteUse(rec: TokenRecord): void {
    this.lastUsed.set(rec.name, this.now());
    // The config's tokens (in the store's memory) have no row to write.
    if (!this.deps.tokens.has(rec.name)) this.unwritten.add(rec.name);
  }

  /**
   * An instance joining a cluster brings its tokens.db: each token is copied with its hash, so its
   * secret keeps working on every instance. A name the shared table has already is kept as it is
   * there; when its hash differs (another token of that name), the local one is not copied and a
   * warning names it.
   */
  private async copyLocal(file: string): Promise<void> {
    const log = this.deps.log;
    const rows = TokenDb.readRows(file);
    let copied = 0;
    for (const r of rows) {
      const res = await this.db
        .insertInto('api_tokens')
        .values(r)
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0) > 0) {
        copied++;
        continue;
      }
      const shared = await this.db
        .selectFrom('api_tokens')
        .select('hash')
        .where('name', '=', r.name)
        .executeTakeFirst();
      if (shared?.hash !== r.hash)
        log?.warn(
          { name: r.name, file },
          shared
            ? `API token ${r.name} of tokens.db not copied: the cluster has another token of that name (kept); its secret no longer works`
            : `API token ${r.name} of tokens.db not copied: its secret is already a token of another name in the cluster`,
        );
    }
    log?.info({ file, local: rows.length, copied }, 'tokens.db copied into the shared token table');
  }
}
