import { existsSync } from 'node:fs';
import { sql, type Kysely } from 'kysely';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { EPOCH_MS } from '../storage/sql/columns.js';
import { PgListener } from '../storage/sql/listener.js';
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
import { Budget, TOKEN_CACHE_DEFAULTS, TokenCache, type TokenCacheLimits } from './token-cache.js';

/** The channel every instance LISTENs on for token changes (ADR 0175); the payload is a `TokenNote`. */
export const TOKEN_CHANNEL = 'gateway_tokens';
type TokenNote = { op: 'revoke'; name: string } | { op: 'create' };

/** After a failed read, the table is not asked again for this long (a flood during an outage stays here). */
const RETRY_AFTER_FAILURE_MS = 1000;

/** How the bearer lookups of this instance were answered (health, `/metrics`). */
export interface TokenLookupStats {
  /** Asked of PostgreSQL. */
  queries: number;
  /** A known token taken from the cache (fresh, revocations heard). */
  cached: number;
  /** A hash PostgreSQL did not know a moment ago: 401 without asking. */
  missCached: number;
  /** PostgreSQL unreachable: a token it confirmed recently, let through. */
  outage: number;
  /** PostgreSQL unreachable and the token not confirmed recently: 503. */
  unavailable: number;
  /** A hash never confirmed here, beyond `unknownPerSecond`: 503 without asking. */
  throttled: number;
}

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
  /**
   * PostgreSQL: the URL of the LISTEN connection that hears revocations and creations on other
   * instances (ADR 0175). Absent (SQLite): no NOTIFY, so a known token is asked of the table on every
   * request (no positive cache); unknown hashes are still cached for `negativeMs`. Needs `log`.
   */
  listenUrl?: string;
  cache?: Partial<TokenCacheLimits>;
}

/**
 * Cluster mode (ADR 0165): API tokens in the shared table `api_tokens`. A bearer is looked up there
 * through a cache (ADR 0175): a known token for a few seconds while this instance hears revocations
 * (LISTEN/NOTIFY), an unknown hash for two seconds, and during a PostgreSQL outage a token confirmed
 * in the last five minutes. `lastUsed` is kept in memory and written at most once a minute per token.
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
  private readonly cache: TokenCache;
  private readonly listener?: PgListener;
  /** Since when revocations are heard (the LISTEN connection is up); cached tokens confirmed before are asked again. */
  private listeningSince = Number.POSITIVE_INFINITY;
  /** Until when (performance.now()) the table is not asked (it failed a moment ago), and why it failed. */
  private downUntil = 0;
  private lastReadError?: string;
  private readonly counts: TokenLookupStats = {
    queries: 0,
    cached: 0,
    missCached: 0,
    outage: 0,
    unavailable: 0,
    throttled: 0,
  };
  private readonly unknownBudget: Budget;
  /**
   * The hashes of the live tokens in the table, read at start, whenever the LISTEN connection is
   * (re)established, on every NOTIFY and with each flush: a bearer among them is never held back by
   * the unknown-token budget, even if this instance has not confirmed it since it started (a restart
   * during a flood of made-up bearers must not lock every integration out). Still confirmed by a
   * query before it is trusted; only the budget looks at this set.
   */
  private liveHashes: ReadonlySet<string> = new Set();
  private hashesLoading?: Promise<void>;

  constructor(private readonly deps: SharedTokenDbDeps) {
    this.now = deps.now ?? Date.now;
    this.cache = new TokenCache({ ...TOKEN_CACHE_DEFAULTS, ...deps.cache });
    this.unknownBudget = new Budget(this.cache.limits.unknownPerSecond, performance.now());
    if (deps.listenUrl !== undefined && deps.log)
      this.listener = new PgListener({
        url: deps.listenUrl,
        channel: TOKEN_CHANNEL,
        log: deps.log,
        onNotify: (payload) => this.heard(payload),
        onListening: () => {
          // Whatever was revoked or created while nobody listened is unknown here: ask again.
          this.cache.resync();
          this.listeningSince = this.now();
          void this.loadHashes();
        },
      });
  }

  stats(): TokenLookupStats & { listening: boolean; known: number; missed: number } {
    return {
      ...this.counts,
      listening: this.listener?.connected ?? false,
      ...this.cache.sizes,
    };
  }

  private get db(): Kysely<SharedTokenTables> {
    return this.deps.db().withTables<SharedTokenTables>();
  }

  async start(): Promise<void> {
    if (this.deps.localFile !== undefined && existsSync(this.deps.localFile))
      await this.copyLocal(this.deps.localFile);
    this.deps.tokens.useBackend(this);
    this.offUse = this.deps.tokens.onUse((rec) => this.noteUse(rec));
    await this.loadHashes();
    this.timer = setInterval(() => {
      void this.flush();
      void this.loadHashes();
    }, this.deps.flushMs ?? 60_000);
    this.timer.unref();
    await this.listener?.start();
    this.started = true;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.listener?.stop();
    this.listeningSince = Number.POSITIVE_INFINITY;
    this.offUse?.();
    this.offUse = undefined;
    this.deps.tokens.useBackend(undefined);
    await this.flush();
    this.started = false;
  }

  health(): ComponentHealth {
    if (!this.started) return { state: 'stopped' };
    const lookups = this.stats();
    const listenError =
      this.listener && !this.listener.connected
        ? `revocations not heard (LISTEN: ${this.listener.lastError ?? 'connecting'}); every request asks PostgreSQL`
        : undefined;
    const error = this.lastError ?? listenError;
    return error === undefined
      ? { state: 'ok', store: 'shared', lookups }
      : { state: 'degraded', store: 'shared', error, lookups };
  }

  /**
   * The live token of this hash (ADR 0175): from the cache while it may be trusted, else from the
   * table; with the table unreachable, a token it confirmed in the last `outageMs`, else the error.
   */
  async byHash(hash: string): Promise<TokenRecord | undefined> {
    hash = hash.toLowerCase();
    const now = this.now();
    // Only while revocations are heard: otherwise every request asks, as before the cache.
    const fresh = this.listener?.connected ? this.cache.fresh(hash, now, this.listeningSince) : undefined;
    if (fresh) {
      this.counts.cached++;
      return fresh;
    }
    if (this.cache.isMiss(hash, now)) {
      this.counts.missCached++;
      return undefined;
    }
    const asked = this.cache.ask();
    // A monotonic clock: a wall clock set back must not keep the table unasked.
    const mono = performance.now();
    if (!this.cache.isKnown(hash) && !this.liveHashes.has(hash) && !this.unknownBudget.take(mono)) {
      this.counts.throttled++;
      throw new Error('too many lookups of unknown tokens on this instance; retry in a second');
    }
    try {
      if (mono < this.downUntil) throw new Error(this.lastReadError ?? 'unreachable');
      this.counts.queries++;
      const rec = await this.read(hash);
      this.lastReadError = undefined;
      this.cache.answer(hash, rec, now, asked);
      return rec;
    } catch (err) {
      if (mono >= this.downUntil) {
        this.downUntil = performance.now() + RETRY_AFTER_FAILURE_MS;
        this.lastReadError = (err as Error).message;
      }
      const last = this.cache.lastKnown(hash, now);
      if (last) {
        this.counts.outage++;
        return last;
      }
      this.counts.unavailable++;
      throw err;
    }
  }

  /**
   * Reads the hashes of the live tokens (at most `maxEntries`: a few hundred rows in practice); one
   * read at a time, the next asked for after it. A failure keeps the last set (logged at debug).
   */
  private loadHashes(): Promise<void> {
    const run = async (): Promise<void> => {
      try {
        const rows = await this.db
          .selectFrom('api_tokens')
          .select('hash')
          .where('revoked_at', 'is', null)
          .limit(this.cache.limits.maxEntries)
          .execute();
        this.liveHashes = new Set(rows.map((r) => r.hash.toLowerCase()));
      } catch (err) {
        this.deps.log?.debug(
          { err: (err as Error).message },
          'live token hashes not read; the last set is kept',
        );
      }
    };
    const next = (this.hashesLoading ?? Promise.resolve()).then(run);
    this.hashesLoading = next;
    return next;
  }

  private async read(hash: string): Promise<TokenRecord | undefined> {
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
    const created = await this.db.transaction().execute(async (tx) => {
      const res = await tx
        .insertInto('api_tokens')
        .values(row)
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await this.notify(tx, { op: 'create' });
      return true;
    });
    if (!created) throw exists();
    this.cache.created();
    void this.loadHashes();
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
    // The NOTIFY commits with the revocation: every instance hears of it once it holds, never before.
    const done = await this.db.transaction().execute(async (tx) => {
      const res = await tx
        .updateTable('api_tokens')
        .set({ revoked_at: this.now(), revoked_by: by, revoked_by_subject: bySubject ?? null })
        .where('name', '=', name)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await this.notify(tx, { op: 'revoke', name });
      return true;
    });
    this.cache.revoked(name);
    if (done) this.deps.log?.info({ name, by }, 'API token revoked (shared)');
    const info = (await this.list()).find((t) => t.name === name && t.source === 'api');
    if (!info) throw new TokenError('GW_ERR_TOKEN_NOT_FOUND', `no token named ${name}`, 404);
    return info;
  }

  /** PostgreSQL only (the LISTEN side exists there only): tells every instance, in the writer's transaction. */
  private async notify(tx: Kysely<SharedTokenTables>, note: TokenNote): Promise<void> {
    if (this.deps.listenUrl === undefined) return;
    await sql`select pg_notify(${TOKEN_CHANNEL}, ${JSON.stringify(note)})`.execute(tx);
  }

  /** A NOTIFY from any instance (this one too, harmlessly). */
  private heard(payload: string | undefined): void {
    let note: TokenNote | undefined;
    try {
      note = JSON.parse(payload ?? '') as TokenNote;
    } catch {
      note = undefined;
    }
    void this.loadHashes();
    if (note?.op === 'revoke' && typeof note.name === 'string') this.cache.revoked(note.name);
    else if (note?.op === 'create') this.cache.created();
    else {
      // Not understood (a newer version?): nothing cached is trusted without asking again.
      this.cache.resync();
      this.listeningSince = this.now();
    }
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
