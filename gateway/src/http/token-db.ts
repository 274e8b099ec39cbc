import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { openDb, type Db, type Migration } from '../storage/db.js';
import { hashToken, type Role, type TokenRecord, type TokenStore } from './auth.js';

/** Tokens created over the API: only their sha256 is stored; a revoked token stays as a record. */
export const TOKEN_MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE tokens (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL, created_by TEXT NOT NULL, expires_at INTEGER,
        revoked_at INTEGER, revoked_by TEXT, last_used_at INTEGER
      );
    `,
  },
  {
    // Issue 19: an SSO admin's identity-provider subject beside the name of who created / revoked.
    version: 2,
    sql: `
      ALTER TABLE tokens ADD COLUMN created_by_subject TEXT;
      ALTER TABLE tokens ADD COLUMN revoked_by_subject TEXT;
    `,
  },
];

/** A token as the admin API lists it: never the secret, never its hash. */
export interface TokenInfo {
  name: string;
  role: Role;
  /** `config`: from the config file or GATEWAY_ADMIN_TOKEN (change it there); `api`: created over HTTP. */
  source: 'config' | 'api';
  createdAt: string | null;
  createdBy: string | null;
  /** SSO: the identity provider's subject of who created / revoked it (null: none, or a token). */
  createdBySubject: string | null;
  expiresAt: string | null;
  lastUsed: string | null;
  revoked: boolean;
  revokedAt: string | null;
  revokedBy: string | null;
  revokedBySubject: string | null;
  expired: boolean;
}

/**
 * What `/api/admin/tokens` manages: tokens.db on one instance (TokenDb), the shared table in
 * PostgreSQL in cluster mode (SharedTokenDb, ADR 0165). Either may answer synchronously.
 */
export interface TokenAdmin {
  list(): TokenInfo[] | Promise<TokenInfo[]>;
  create(
    req: { name: string; role: Role; expiresAt?: number },
    by: string,
    bySubject?: string,
  ): { secret: string; info: TokenInfo } | Promise<{ secret: string; info: TokenInfo }>;
  revoke(name: string, by: string, bySubject?: string): TokenInfo | Promise<TokenInfo>;
}

export type TokenErrorCode = 'GW_ERR_TOKEN_EXISTS' | 'GW_ERR_TOKEN_NOT_FOUND' | 'GW_ERR_TOKEN_READONLY';

export class TokenError extends Error {
  constructor(
    readonly code: TokenErrorCode,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

/** A row of tokens.db (and of the shared table `api_tokens`, which has the same columns). */
export interface TokenRow {
  name: string;
  role: Role;
  hash: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
  last_used_at: number | null;
  created_by_subject: string | null;
  revoked_by_subject: string | null;
}

/** A new token's secret (returned once, never stored) and its row (its hash only). */
export function newTokenRow(
  req: { name: string; role: Role; expiresAt?: number },
  by: string,
  bySubject: string | undefined,
  now: number,
): { secret: string; row: TokenRow } {
  const secret = `fgw_${randomBytes(32).toString('base64url')}`;
  return {
    secret,
    row: {
      name: req.name,
      role: req.role,
      hash: hashToken(secret),
      created_at: now,
      created_by: by,
      expires_at: req.expiresAt ?? null,
      revoked_at: null,
      revoked_by: null,
      last_used_at: null,
      created_by_subject: bySubject ?? null,
      revoked_by_subject: null,
    },
  };
}

/**
 * The admin API's list: the config's tokens (no row; their use known on this instance only), then
 * the stored ones, each with the later of its stored and its not yet written last use.
 */
export function tokenInfos(
  configTokens: readonly { name: string; role: Role }[],
  rows: readonly TokenRow[],
  lastUsed: ReadonlyMap<string, number>,
  now: number,
): TokenInfo[] {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const fromConfig = configTokens.map((t): TokenInfo => ({
    name: t.name,
    role: t.role,
    source: 'config',
    createdAt: null,
    createdBy: null,
    createdBySubject: null,
    expiresAt: null,
    lastUsed: iso(lastUsed.get(t.name) ?? null),
    revoked: false,
    revokedAt: null,
    revokedBy: null,
    revokedBySubject: null,
    expired: false,
  }));
  return [
    ...fromConfig,
    ...rows.map((r): TokenInfo => ({
      name: r.name,
      role: r.role,
      source: 'api',
      createdAt: iso(r.created_at),
      createdBy: r.created_by,
      createdBySubject: r.created_by_subject,
      expiresAt: iso(r.expires_at),
      lastUsed: iso(Math.max(r.last_used_at ?? 0, lastUsed.get(r.name) ?? 0) || null),
      revoked: r.revoked_at !== null,
      revokedAt: iso(r.revoked_at),
      revokedBy: r.revoked_by,
      revokedBySubject: r.revoked_by_subject,
      expired: r.expires_at !== null && r.expires_at <= now,
    })),
  ];
}

export interface TokenDbDeps {
  /** `tokens.db` in the data directory. */
  file: string;
  tokens: TokenStore;
  /** Names of the tokens from the config (listed, never revoked over the API). */
  configTokens: () => { name: string; role: Role }[];
  log?: Logger;
  now?: () => number;
}

/** `lastUsed` is written at most this often per token: a polling dashboard must not write on every request. */
const LAST_USED_EVERY_MS = 60_000;

/**
 * Tokens managed over the admin API, in their own SQLite database (WAL). At start every live token
 * is loaded into the TokenStore beside the config's; a revoked one is removed from it at once.
 */
export class TokenDb implements Component, TokenAdmin {
  readonly name = 'tokens';
  private db?: Db;
  private readonly now: () => number;
  private readonly lastUsed = new Map<string, number>();
  private offUse?: () => void;

  constructor(private readonly deps: TokenDbDeps) {
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.db = openDb(this.deps.file, TOKEN_MIGRATIONS);
    let loaded = 0;
    for (const r of this.rows()) {
      if (r.revoked_at !== null) continue;
      this.deps.tokens.addRecord(this.record(r));
      loaded++;
    }
    this.offUse = this.deps.tokens.onUse((rec) => this.noteUse(rec));
    this.deps.log?.info({ loaded }, 'API tokens loaded');
  }

  async stop(): Promise<void> {
    this.offUse?.();
    this.offUse = undefined;
    this.db?.close();
    this.db = undefined;
  }

  health(): ComponentHealth {
    return { state: this.db ? 'ok' : 'stopped' };
  }

  list(): TokenInfo[] {
    return tokenInfos(this.deps.configTokens(), this.rows(), this.lastUsed, this.now());
  }

  /** A new token; the secret is returned this once and never stored. */
  create(
    req: { name: string; role: Role; expiresAt?: number },
    by: string,
    bySubject?: string,
  ): { secret: string; info: TokenInfo } {
    const db = this.open();
    const exists =
      this.deps.configTokens().some((t) => t.name === req.name) ||
      db.prepare('SELECT 1 FROM tokens WHERE name = ?').get(req.name) !== undefined;
    if (exists)
      throw new TokenError(
        'GW_ERR_TOKEN_EXISTS',
        `a token named ${req.name} exists (revoked tokens keep their name)`,
        409,
      );
    const { secret, row } = newTokenRow(req, by, bySubject, this.now());
    db.prepare(
      `INSERT INTO tokens (name, role, hash, created_at, created_by, expires_at, revoked_at, revoked_by, last_used_at,
         created_by_subject, revoked_by_subject)
       VALUES (@name, @role, @hash, @created_at, @created_by, @expires_at, @revoked_at, @revoked_by, @last_used_at,
         @created_by_subject, @revoked_by_subject)`,
    ).run(row);
    this.deps.tokens.addRecord(this.record(row));
    this.deps.log?.info({ name: req.name, role: req.role, by }, 'API token created');
    return { secret, info: this.list().find((t) => t.name === req.name)! };
  }

  /** Revokes a token created over the API: refused from the next request on; the record stays. */
  revoke(name: string, by: string, bySubject?: string): TokenInfo {
    const db = this.open();
    if (this.deps.configTokens().some((t) => t.name === name))
      throw new TokenError(
        'GW_ERR_TOKEN_READONLY',
        `token ${name} comes from the config file (or GATEWAY_ADMIN_TOKEN): remove it there`,
        409,
      );
    const r = db.prepare('SELECT * FROM tokens WHERE name = ?').get(name) as TokenRow | undefined;
    if (!r) throw new TokenError('GW_ERR_TOKEN_NOT_FOUND', `no token named ${name}`, 404);
    if (r.revoked_at === null) {
      db.prepare(
        'UPDATE tokens SET revoked_at = ?, revoked_by = ?, revoked_by_subject = ? WHERE name = ?',
      ).run(this.now(), by, bySubject ?? null, name);
      this.deps.tokens.remove(name);
      this.deps.log?.info({ name, by }, 'API token revoked');
    }
    return this.list().find((t) => t.name === name)!;
  }

  private noteUse(rec: TokenRecord): void {
    const now = this.now();
    const last = this.lastUsed.get(rec.name);
    this.lastUsed.set(rec.name, now);
    if (last !== undefined && now - last < LAST_USED_EVERY_MS) return;
    try {
      this.db?.prepare('UPDATE tokens SET last_used_at = ? WHERE name = ?').run(now, rec.name);
    } catch (err) {
      // A failed bookkeeping write must not fail the request it describes.
      this.deps.log?.warn({ err, name: rec.name }, 'token lastUsed not stored');
    }
  }

  /** Every row of tokens.db, revoked ones too (cluster mode copies them into the shared table). */
  static readRows(file: string): TokenRow[] {
    const db = openDb(file, TOKEN_MIGRATIONS);
    try {
      return db.prepare('SELECT * FROM tokens ORDER BY created_at, name').all() as TokenRow[];
    } finally {
      db.close();
    }
  }

  private rows(): TokenRow[] {
    return this.open().prepare('SELECT * FROM tokens ORDER BY created_at, name').all() as TokenRow[];
  }

  private record(r: TokenRow): TokenRecord {
    const rec: TokenRecord = { name: r.name, role: r.role, hash: r.hash };
    if (r.expires_at !== null) rec.expiresAt = r.expires_at;
    return rec;
  }

  private open(): Db {
    if (!this.db) throw new Error('token database not open');
    return this.db;
  }
}
