import type { Kysely } from 'kysely';
import type { AccountTables } from './tables.js';

export interface ThrottleLimits {
  /** Failures of one key within the window that lock it. */
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

/**
 * Failed sign-ins counted per key (`user:<name>`, `addr:<ip>`) in the shared store, so that every
 * instance of a cluster sees the same count and the same lock (ADR 0131). A key reaching its limit
 * within the window is locked for `lockMs`; a good sign-in clears the account's key.
 */
export class SignInThrottle {
  constructor(
    private readonly db: Kysely<AccountTables>,
    private readonly now: () => number,
  ) {}

  /** The latest lock end among these keys, or undefined when none is locked. */
  async lockedUntil(keys: string[]): Promise<number | undefined> {
    const rows = await this.db
      .selectFrom('accounts_sign_in_failures')
      .select('locked_until')
      .where('key', 'in', keys)
      .execute();
    const now = this.now();
    const ends = rows.map((r) => r.locked_until ?? 0).filter((t) => t > now);
    return ends.length > 0 ? Math.max(...ends) : undefined;
  }

  /** One more failure of `key`; returns the lock end when this failure locked it. */
  async fail(key: string, limits: ThrottleLimits): Promise<number | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const now = this.now();
      const row = await tx
        .selectFrom('accounts_sign_in_failures')
        .selectAll()
        .where('key', '=', key)
        .executeTakeFirst();
      const fresh = !row || now - row.window_start > limits.windowMs;
      const failures = fresh ? 1 : row.failures + 1;
      const windowStart = fresh ? now : row.window_start;
      const lock = failures >= limits.maxFailures ? now + limits.lockMs : null;
      // Once locked the count starts again: the next lock needs as many failures after this one ends.
      const values = {
        failures: lock === null ? failures : 0,
        window_start: lock === null ? windowStart : now,
        locked_until: lock ?? row?.locked_until ?? null,
      };
      await tx
        .insertInto('accounts_sign_in_failures')
        .values({ key, ...values })
        .onConflict((oc) => oc.column('key').doUpdateSet(values))
        .execute();
      return lock ?? undefined;
    });
  }

  async clear(key: string): Promise<void> {
    await this.db.deleteFrom('accounts_sign_in_failures').where('key', '=', key).execute();
  }
}
