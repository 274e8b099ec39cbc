import { createHash, timingSafeEqual } from 'node:crypto';

export type Role = 'viewer' | 'engineer' | 'admin';
export const RANK: Record<Role, number> = { viewer: 0, engineer: 1, admin: 2 };

export interface TokenRecord {
  name: string;
  role: Role;
  /** sha256 of the token, hex: tokens are never kept in clear. */
  hash: string;
  /** Epoch ms after which the token is refused (absent: never). */
  expiresAt?: number;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Cluster mode: the API tokens of the shared table in PostgreSQL (shared-tokens.ts, ADR 0165),
 * asked on each request, so a token revoked on any instance is refused everywhere from then on.
 */
export interface TokenBackend {
  /** The live (not revoked) token of this sha256 (hex), expired or not. */
  byHash(hash: string): Promise<TokenRecord | undefined>;
  /** Whether a live token of this name exists (a session opened with a token lasts as long as it). */
  isLive(name: string): Promise<boolean>;
}

/** Looks a bearer token up among the known token hashes in constant time per candidate. */
export class TokenStore {
  private records: TokenRecord[] = [];
  private readonly used = new Set<(rec: TokenRecord) => void>();
  private backend?: TokenBackend;
  /** Requests refused for an unknown, revoked or expired bearer token (401), for `/metrics`. */
  refused = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A token created over the API, known by its hash (tokens.db). */
  addRecord(rec: TokenRecord): void {
    this.records.push({ ...rec, hash: rec.hash.toLowerCase() });
  }

  /** Forgets a token at once: its next request is 401. */
  remove(name: string): void {
    this.records = this.records.filter((r) => r.name !== name);
  }

  has(name: string): boolean {
    return this.records.some((r) => r.name === name);
  }

  /** Told of every request a token authorised (for `lastUsed`). */
  onUse(fn: (rec: TokenRecord) => void): () => void {
    this.used.add(fn);
    return () => this.used.delete(fn);
  }

  /** A request was authorised by this token. */
  noteUse(rec: TokenRecord): void {
    for (const fn of this.used) fn(rec);
  }

  add(name: string, role: Role, token: string): void {
    this.records.push({ name, role, hash: hashToken(token) });
  }

  /** A token known only by its sha256 (hex), as a config file may hold it. */
  addHash(name: string, role: Role, sha256Hex: string): void {
    if (!/^[0-9a-fA-F]{64}$/.test(sha256Hex)) throw new Error(`token ${name}: not a sha256 hex digest`);
    this.records.push({ name, role, hash: sha256Hex.toLowerCase() });
  }

  /** Cluster mode: tokens not in this store (the config's) are asked of the shared table. */
  useBackend(b: TokenBackend | undefined): void {
    this.backend = b;
  }

  /**
   * The token's record: the config's (in memory) first, then the shared table in cluster mode. A
   * backend that cannot be read rejects the promise (the caller answers 503, never "unknown").
   */
  async lookup(token: string): Promise<TokenRecord | undefined> {
    const local = this.find(token);
    if (local || !this.backend) return local;
    const rec = await this.backend.byHash(hashToken(token));
    if (rec?.expiresAt !== undefined && rec.expiresAt <= this.now()) return undefined;
    return rec;
  }

  /** Whether a token of this name is live here or, in cluster mode, in the shared table. */
  async isLive(name: string): Promise<boolean> {
    if (this.has(name)) return true;
    return this.backend ? this.backend.isLive(name) : false;
  }

  find(token: string): TokenRecord | undefined {
    const h = Buffer.from(hashToken(token), 'hex');
    let found: TokenRecord | undefined;
    for (const r of this.records) {
      if (timingSafeEqual(h, Buffer.from(r.hash, 'hex'))) found = r;
    }
    if (found?.expiresAt !== undefined && found.expiresAt <= this.now()) return undefined;
    return found;
  }
}

/**
 * Who made a request: a bearer token's holder, or a person (or a token's holder) signed in with a
 * session cookie. `name` is what the audit trail records.
 */
export interface Principal {
  name: string;
  role: Role;
  via: 'token' | 'password' | 'link' | 'oidc';
  /** Set when the request came with the session cookie (not a bearer token). */
  session?: { id: string; mustChangePassword: boolean };
  /** SSO: the identity provider's subject, recorded beside the name. */
  subject?: string | null;
}

/** `{ userSubject }` for an SSO user's request, `{}` otherwise: spread into an audited request. */
export function subjectOf(p: Principal): { userSubject?: string } {
  return p.subject ? { userSubject: p.subject } : {};
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}
