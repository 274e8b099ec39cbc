import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import { dummyHash, hashPassword, MIN_PASSWORD_LENGTH, needsRehash, verifyPassword } from './password.js';
import { SessionStore, type SessionTimeouts } from './sessions.js';
import type { AccountTables } from './tables.js';
import { SignInThrottle, type ThrottleLimits } from './throttle.js';
import { AccountError, type AccountRole, type Language, type SessionVia, type User } from './types.js';

export interface AccountLimits {
  perAccount: ThrottleLimits;
  perAddress: ThrottleLimits;
}

export interface NewUser {
  username: string;
  displayName: string;
  language: Language;
  role: AccountRole;
  email?: string | null;
  phone?: string | null;
  /** Absent: a random one is made and returned once. */
  password?: string;
  /** Default true: the person chooses their own password at first sign-in. */
  mustChangePassword?: boolean;
}

/** What a sign-in attempt came to, as counted in `gateway_sign_in_attempts_total{result}`. */
export type SignInResult = 'ok' | 'wrong_password' | 'unknown_user' | 'disabled' | 'locked';

type UserRow = AccountTables['accounts_users'];

function toUser(r: UserRow): User {
  return {
    username: r.username,
    displayName: r.display_name,
    language: r.language as Language,
    role: r.role as AccountRole,
    email: r.email,
    phone: r.phone,
    disabled: r.disabled === 1,
    mustChangePassword: r.must_change_password === 1,
    createdAt: r.created_at,
    createdBy: r.created_by,
    disabledAt: r.disabled_at,
    disabledBy: r.disabled_by,
  };
}

function checkStrength(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH)
    throw new AccountError(
      'GW_ERR_PASSWORD_WEAK',
      `a password needs at least ${MIN_PASSWORD_LENGTH} characters`,
    );
  if (password.length > 1024)
    throw new AccountError('GW_ERR_PASSWORD_WEAK', 'a password has at most 1024 characters');
}

/** Readable once, typed by hand: no 0/O or 1/l. */
function temporaryPassword(): string {
  const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  return Array.from(randomBytes(16), (b) => alphabet[b % alphabet.length]).join('');
}

/**
 * Personal accounts, their sessions and the limits on guessing, over the shared store. The HTTP
 * layer calls it; every refusal is an AccountError with its catalogue code.
 */
export class AccountService {
  readonly sessions: SessionStore;
  private readonly throttle: SignInThrottle;
  private readonly attempts: Counter<'result'>;
  /** The demo's one-time sign-in links: sha256(code) → who and until when (this instance only). */
  private readonly links = new Map<string, { username: string; until: number }>();

  constructor(
    private readonly db: Kysely<AccountTables>,
    private readonly opts: {
      timeouts: SessionTimeouts;
      limits: AccountLimits;
      log: Logger;
      metrics: Registry;
      now?: () => number;
    },
  ) {
    const now = opts.now ?? Date.now;
    this.sessions = new SessionStore(db, opts.timeouts, now);
    this.throttle = new SignInThrottle(db, now);
    this.attempts = new Counter({
      name: 'gateway_sign_in_attempts_total',
      help: 'Password sign-in attempts by result (ok, wrong_password, unknown_user, disabled, locked)',
      labelNames: ['result'],
      registers: [opts.metrics],
    });
    for (const r of ['ok', 'wrong_password', 'unknown_user', 'disabled', 'locked'] as const)
      this.attempts.inc({ result: r }, 0);
  }

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async count(): Promise<number> {
    const r = await this.db
      .selectFrom('accounts_users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async list(): Promise<User[]> {
    const rows = await this.db.selectFrom('accounts_users').selectAll().orderBy('username').execute();
    return rows.map(toUser);
  }

  async get(username: string): Promise<User | undefined> {
    const r = await this.db
      .selectFrom('accounts_users')
      .selectAll()
      .where('username', '=', username)
      .executeTakeFirst();
    return r ? toUser(r) : undefined;
  }

  private async mustGet(username: string): Promise<User> {
    const u = await this.get(username);
    if (!u) throw new AccountError('GW_ERR_USER_NOT_FOUND', `no user named ${username}`);
    return u;
  }

  /** A new account; the password (given or made) is returned once, in clear, and stored hashed. */
  async create(n: NewUser, by: string): Promise<{ user: User; password: string }> {
    if (await this.get(n.username))
      throw new AccountError(
        'GW_ERR_USER_EXISTS',
        `a user named ${n.username} exists (disabled users keep their name)`,
      );
    const password = n.password ?? temporaryPassword();
    checkStrength(password);
    const now = this.now;
    await this.db
      .insertInto('accounts_users')
      .values({
        username: n.username,
        display_name: n.displayName,
        language: n.language,
        role: n.role,
        email: n.email ?? null,
        phone: n.phone ?? null,
        password_hash: await hashPassword(password),
        must_change_password: (n.mustChangePassword ?? true) ? 1 : 0,
        disabled: 0,
        created_at: now,
        created_by: by,
        updated_at: now,
        disabled_at: null,
        disabled_by: null,
      })
      .execute();
    this.opts.log.info({ username: n.username, role: n.role, by }, 'user created');
    return { user: await this.mustGet(n.username), password };
  }

  /** Disabled: cannot sign in, every session ends at once; the account and its history stay. */
  async setDisabled(username: string, disabled: boolean, by: string): Promise<User> {
    await this.mustGet(username);
    const now = this.now;
    await this.db
      .updateTable('accounts_users')
      .set(
        disabled
          ? { disabled: 1, disabled_at: now, disabled_by: by, updated_at: now }
          : { disabled: 0, disabled_at: null, disabled_by: null, updated_at: now },
      )
      .where('username', '=', username)
      .execute();
    if (disabled) await this.sessions.endAllOf(username);
    this.opts.log.info({ username, by }, disabled ? 'user disabled' : 'user enabled');
    return this.mustGet(username);
  }

  /** An admin's reset: a temporary password (given or made), changed at the next sign-in; sessions end. */
  async resetPassword(
    username: string,
    by: string,
    password?: string,
  ): Promise<{ user: User; password: string }> {
    await this.mustGet(username);
    const pw = password ?? temporaryPassword();
    checkStrength(pw);
    await this.db
      .updateTable('accounts_users')
      .set({ password_hash: await hashPassword(pw), must_change_password: 1, updated_at: this.now })
      .where('username', '=', username)
      .execute();
    await this.sessions.endAllOf(username);
    await this.throttle.clear(`user:${username}`);
    this.opts.log.info({ username, by }, 'password reset by an admin');
    return { user: await this.mustGet(username), password: pw };
  }

  /** A person changes their own password (knowing the current one); their other sessions end. */
  async changePassword(username: string, current: string, next: string, keepSession: string): Promise<void> {
    const row = await this.db
      .selectFrom('accounts_users')
      .select('password_hash')
      .where('username', '=', username)
      .executeTakeFirst();
    if (!row?.password_hash || !(await verifyPassword(current, row.password_hash)))
      throw new AccountError('GW_ERR_SIGN_IN_FAILED', 'the current password is wrong');
    if (next === current)
      throw new AccountError('GW_ERR_PASSWORD_WEAK', 'the new password must differ from the current one');
    checkStrength(next);
    await this.db
      .updateTable('accounts_users')
      .set({ password_hash: await hashPassword(next), must_change_password: 0, updated_at: this.now })
      .where('username', '=', username)
      .execute();
    await this.sessions.endAllOf(username, keepSession);
    this.opts.log.info({ username }, 'password changed');
  }

  /**
   * A password sign-in from `address`. Refused while the account or the address is locked; each
   * failure counts towards both locks. Logged and counted, never with the password.
   */
  async signIn(
    username: string,
    password: string,
    address: string,
  ): Promise<{ id: string; expiresAt: number; user: User }> {
    const { limits, log } = this.opts;
    const keys = [`user:${username}`, `addr:${address}`];
    const lockedUntil = await this.throttle.lockedUntil(keys);
    if (lockedUntil !== undefined) {
      this.attempts.inc({ result: 'locked' });
      log.warn({ username, address, result: 'locked' }, 'sign-in refused: locked after repeated failures');
      const s = Math.ceil((lockedUntil - this.now) / 1000);
      throw new AccountError(
        'GW_ERR_SIGN_IN_LOCKED',
        `too many failed sign-ins: try again in ${s} s (or ask an admin to reset the password)`,
      );
    }
    const row = await this.db
      .selectFrom('accounts_users')
      .selectAll()
      .where('username', '=', username)
      .executeTakeFirst();
    const good = await verifyPassword(password, row?.password_hash ?? (await dummyHash()));
    const result: SignInResult = !row
      ? 'unknown_user'
      : !good
        ? 'wrong_password'
        : row.disabled
          ? 'disabled'
          : 'ok';
    this.attempts.inc({ result });
    if (result !== 'ok') {
      const locks = await Promise.all([
        this.throttle.fail(keys[0]!, limits.perAccount),
        this.throttle.fail(keys[1]!, limits.perAddress),
      ]);
      log.warn({ username, address, result, locked: locks.some((l) => l !== undefined) }, 'sign-in refused');
      // One message for every refusal: it does not tell which usernames exist.
      throw new AccountError(
        'GW_ERR_SIGN_IN_FAILED',
        'wrong username or password, or the account is disabled',
      );
    }
    await this.throttle.clear(keys[0]!);
    if (needsRehash(row!.password_hash!))
      await this.db
        .updateTable('accounts_users')
        .set({ password_hash: await hashPassword(password) })
        .where('username', '=', username)
        .execute();
    const user = toUser(row!);
    const s = await this.sessions.create({ username, role: user.role, via: 'password' });
    log.info({ username, address, result }, 'signed in');
    return { ...s, user };
  }

  /** A session for an API token's holder (the dashboard's "API token" sign-in): the token stays out of the browser. */
  async sessionFor(p: { username: string; role: AccountRole; via: SessionVia; subject?: string }) {
    return this.sessions.create(p);
  }

  /**
   * A session for a person signed in at the identity provider: the account is created at the first
   * sign-in and bound to the provider's subject; its role follows the provider's claim each time. A
   * local account of the same name (not bound to this subject) is never taken over.
   */
  async ssoSession(p: { username: string; role: AccountRole; subject: string; displayName: string }) {
    if (!/^[a-z0-9][a-z0-9_.@-]{0,63}$/.test(p.username))
      throw new AccountError(
        'GW_ERR_SIGN_IN_FAILED',
        `single sign-on: "${p.username}" is not a valid username`,
      );
    const row = await this.db
      .selectFrom('accounts_users')
      .selectAll()
      .where('username', '=', p.username)
      .executeTakeFirst();
    const now = this.now;
    if (!row) {
      await this.db
        .insertInto('accounts_users')
        .values({
          username: p.username,
          display_name: p.displayName,
          language: 'en',
          role: p.role,
          password_hash: null,
          must_change_password: 0,
          disabled: 0,
          created_at: now,
          created_by: 'oidc',
          updated_at: now,
          sso_subject: p.subject,
        })
        .execute();
      this.opts.log.info(
        { username: p.username, role: p.role, subject: p.subject },
        'user created by single sign-on',
      );
    } else if (row.sso_subject !== p.subject) {
      throw new AccountError(
        'GW_ERR_SIGN_IN_FAILED',
        `single sign-on: an account named ${p.username} exists and belongs to someone else: ask an admin`,
      );
    } else if (row.disabled) {
      throw new AccountError(
        'GW_ERR_SIGN_IN_FAILED',
        'single sign-on: this account is disabled on the gateway',
      );
    } else if (row.role !== p.role) {
      await this.db
        .updateTable('accounts_users')
        .set({ role: p.role, updated_at: now })
        .where('username', '=', p.username)
        .execute();
    }
    this.attempts.inc({ result: 'ok' });
    this.opts.log.info(
      { username: p.username, subject: p.subject, role: p.role },
      'signed in by single sign-on',
    );
    return this.sessions.create({ username: p.username, role: p.role, via: 'oidc', subject: p.subject });
  }

  /** A one-time sign-in link's code for `username`, valid for `ttlMs` (the demo prints one). */
  issueLink(username: string, ttlMs: number): string {
    const code = randomBytes(24).toString('base64url');
    this.links.set(sha256(code), { username, until: this.now + ttlMs });
    return code;
  }

  /** Exchanges a link's code for a session, once. */
  async redeemLink(code: string): Promise<{ id: string; expiresAt: number } | undefined> {
    const key = sha256(code);
    const link = this.links.get(key);
    this.links.delete(key);
    if (!link || link.until <= this.now) return undefined;
    const user = await this.get(link.username);
    if (!user || user.disabled) return undefined;
    this.opts.log.info({ username: user.username }, 'signed in with a one-time link');
    return this.sessions.create({ username: user.username, role: user.role, via: 'link' });
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
