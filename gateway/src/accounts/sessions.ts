import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AccountTables } from './tables.js';
import type { AccountRole, SessionInfo, SessionVia } from './types.js';

export interface SessionTimeouts {
  idleMs: number;
  absoluteMs: number;
}

/** `last_seen_at` is written at most this often per session: a polling dashboard must not write on every request. */
const TOUCH_EVERY_MS = 30_000;

export function hashSessionId(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/**
 * Sessions in the shared store, known by the sha256 of their id: the id (256 random bits) is only
 * in the browser's HttpOnly cookie, so a copy of the database opens no session. A session ends when
 * signed out, after `idleMs` without a request, at `absoluteMs` after sign-in, or when its account
 * is disabled or its password reset.
 */
export class SessionStore {
  constructor(
    private readonly db: Kysely<AccountTables>,
    private readonly timeouts: SessionTimeouts,
    private readonly now: () => number,
  ) {}

  async create(p: {
    username: string;
    role: AccountRole;
    via: SessionVia;
    subject?: string | null;
  }): Promise<{
    id: string;
    expiresAt: number;
  }> {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const expiresAt = now + this.timeouts.absoluteMs;
    await this.db
      .insertInto('accounts_sessions')
      .values({
        id_hash: hashSessionId(id),
        username: p.username,
        role: p.role,
        via: p.via,
        subject: p.subject ?? null,
        created_at: now,
        last_seen_at: now,
        expires_at: expiresAt,
      })
      .execute();
    // Expired rows of anyone are removed now and then, here rather than on a timer.
    await this.db
      .deleteFrom('accounts_sessions')
      .where((eb) =>
        eb.or([eb('expires_at', '<=', now), eb('last_seen_at', '<=', now - this.timeouts.idleMs)]),
      )
      .execute();
    return { id, expiresAt };
  }

  /** The live session of this id (and marks it used), or undefined: unknown, ended or timed out. */
  async lookup(id: string): Promise<SessionInfo | undefined> {
    const idHash = hashSessionId(id);
    const row = await this.db
      .selectFrom('accounts_sessions as s')
      .leftJoin('accounts_users as u', 'u.username', 's.username')
      .select([
        's.username',
        's.role',
        's.via',
        's.subject',
        's.created_at',
        's.last_seen_at',
        's.expires_at',
        'u.disabled',
        'u.must_change_password',
        'u.role as user_role',
      ])
      .where('s.id_hash', '=', idHash)
      .executeTakeFirst();
    if (!row) return undefined;
    const now = this.now();
    const person = row.via !== 'token';
    if (
      row.expires_at <= now ||
      row.last_seen_at <= now - this.timeouts.idleMs ||
      (person && (row.disabled === null || row.disabled === 1))
    ) {
      await this.db.deleteFrom('accounts_sessions').where('id_hash', '=', idHash).execute();
      return undefined;
    }
    if (now - row.last_seen_at >= TOUCH_EVERY_MS)
      await this.db
        .updateTable('accounts_sessions')
        .set({ last_seen_at: now })
        .where('id_hash', '=', idHash)
        .execute();
    return {
      username: row.username,
      // A person's role is read from the account each time: a change applies to open sessions.
      role: ((person ? row.user_role : null) ?? row.role) as AccountRole,
      via: row.via as SessionVia,
      subject: row.subject,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      mustChangePassword: person && row.must_change_password === 1,
    };
  }

  async end(id: string): Promise<void> {
    await this.db.deleteFrom('accounts_sessions').where('id_hash', '=', hashSessionId(id)).execute();
  }

  /** Ends every session of a person (disabled, password reset), or all but one (password changed). */
  async endAllOf(username: string, except?: string): Promise<void> {
    let q = this.db.deleteFrom('accounts_sessions').where('username', '=', username);
    if (except !== undefined) q = q.where('id_hash', '!=', hashSessionId(except));
    await q.execute();
  }
}
