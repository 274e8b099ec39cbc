import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AccountService } from '../../gateway/src/accounts/service.js';
import { ACCOUNT_STEPS, type AccountTables } from '../../gateway/src/accounts/tables.js';
import type { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

/**
 * The accounts store, written once, on SQLite and on PostgreSQL: passwords hashed with scrypt (never
 * stored in clear), sessions known by their hash with idle and absolute timeouts, a disabled account
 * or a reset password ending its sessions, and the lock after repeated failures.
 */

const log = pino({ level: 'silent' });

async function exercise(shared: SharedDb): Promise<void> {
  let now = Date.UTC(2026, 11, 6, 8, 0, 0);
  const metrics = new Registry();
  const db = shared.db.withTables<AccountTables>();
  const svc = new AccountService(db, {
    timeouts: { idleMs: 60_000, absoluteMs: 600_000 },
    limits: {
      perAccount: { maxFailures: 3, windowMs: 60_000, lockMs: 30_000 },
      perAddress: { maxFailures: 10, windowMs: 60_000, lockMs: 30_000 },
    },
    log,
    metrics,
    now: () => now,
  });
  const made = await svc.create(
    { username: 'li.wei', displayName: '李伟', language: 'zh', role: 'engineer', email: 'li@example.org' },
    'admin',
  );
  expect(made.password).toMatch(/^[A-Za-z0-9]{16}$/);
  expect(made.user).toMatchObject({ username: 'li.wei', role: 'engineer', mustChangePassword: true });
  await expect(
    svc.create({ username: 'li.wei', displayName: 'x', language: 'en', role: 'viewer' }, 'a'),
  ).rejects.toMatchObject({
    code: 'GW_ERR_USER_EXISTS',
  });
  await expect(
    svc.create({ username: 'short', displayName: 'x', language: 'en', role: 'viewer', password: 'abc' }, 'a'),
  ).rejects.toMatchObject({ code: 'GW_ERR_PASSWORD_WEAK' });

  // Stored as an scrypt hash with its parameters, never in clear.
  const row = await db
    .selectFrom('accounts_users')
    .selectAll()
    .where('username', '=', 'li.wei')
    .executeTakeFirstOrThrow();
  expect(row.password_hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  expect(JSON.stringify(row)).not.toContain(made.password);

  const s = await svc.signIn('li.wei', made.password, '10.0.0.1');
  const sessRow = await db.selectFrom('accounts_sessions').selectAll().executeTakeFirstOrThrow();
  expect(sessRow.id_hash).toMatch(/^[0-9a-f]{64}$/);
  expect(JSON.stringify(sessRow)).not.toContain(s.id);
  expect(await svc.sessions.lookup(s.id)).toMatchObject({
    username: 'li.wei',
    role: 'engineer',
    mustChangePassword: true,
  });
  expect(await svc.sessions.lookup('not-a-session')).toBeUndefined();

  // The first password is changed by its holder; the flag clears.
  await svc.changePassword('li.wei', made.password, 'a much better password', s.id);
  expect((await svc.sessions.lookup(s.id))?.mustChangePassword).toBe(false);

  // Idle timeout: used within a minute it lives on; a minute without a request ends it.
  now += 50_000;
  expect(await svc.sessions.lookup(s.id)).toBeDefined();
  now += 50_000;
  expect(await svc.sessions.lookup(s.id)).toBeDefined();
  now += 61_000;
  expect(await svc.sessions.lookup(s.id)).toBeUndefined();

  // Absolute timeout: however busy, it ends ten minutes after sign-in.
  const s2 = await svc.signIn('li.wei', 'a much better password', '10.0.0.1');
  for (let i = 0; i < 14; i++) {
    now += 45_000;
    await svc.sessions.lookup(s2.id);
  }
  expect(await svc.sessions.lookup(s2.id)).toBeUndefined();

  // Disabled: sessions end at once, sign-in refused; the account stays.
  const s3 = await svc.signIn('li.wei', 'a much better password', '10.0.0.1');
  await svc.setDisabled('li.wei', true, 'admin');
  expect(await svc.sessions.lookup(s3.id)).toBeUndefined();
  await expect(svc.signIn('li.wei', 'a much better password', '10.0.0.1')).rejects.toMatchObject({
    code: 'GW_ERR_SIGN_IN_FAILED',
  });
  expect((await svc.list()).map((u) => [u.username, u.disabled, u.disabledBy])).toEqual([
    ['li.wei', true, 'admin'],
  ]);
  await svc.setDisabled('li.wei', false, 'admin');

  // A reset: sessions end, the temporary password works once and must be changed.
  const s4 = await svc.signIn('li.wei', 'a much better password', '10.0.0.1');
  const reset = await svc.resetPassword('li.wei', 'admin');
  expect(await svc.sessions.lookup(s4.id)).toBeUndefined();
  const s5 = await svc.signIn('li.wei', reset.password, '10.0.0.1');
  expect((await svc.sessions.lookup(s5.id))?.mustChangePassword).toBe(true);

  // Three failures lock the account for 30 s, even for the right password; then it works again.
  for (let i = 0; i < 3; i++)
    await expect(svc.signIn('li.wei', 'wrong password!', '10.0.0.2')).rejects.toMatchObject({
      code: 'GW_ERR_SIGN_IN_FAILED',
    });
  await expect(svc.signIn('li.wei', reset.password, '10.0.0.3')).rejects.toMatchObject({
    code: 'GW_ERR_SIGN_IN_LOCKED',
  });
  now += 31_000;
  await svc.signIn('li.wei', reset.password, '10.0.0.3');

  // An unknown name counts like a wrong password, with the same answer.
  await expect(svc.signIn('nobody', 'whatever it is', '10.0.0.4')).rejects.toMatchObject({
    code: 'GW_ERR_SIGN_IN_FAILED',
    message: 'wrong username or password, or the account is disabled',
  });
  const text = await metrics.metrics();
  expect(text).toContain('gateway_sign_in_attempts_total{result="wrong_password"} 3');
  expect(text).toContain('gateway_sign_in_attempts_total{result="locked"} 1');
  expect(text).toContain('gateway_sign_in_attempts_total{result="unknown_user"} 1');
  expect(text).toContain('gateway_sign_in_attempts_total{result="disabled"} 1');
}

describe('accounts store on both databases', () => {
  const db = sharedDbFixture(ACCOUNT_STEPS);

  it('on SQLite', async () => {
    await exercise(await db.sqlite());
  }, 60_000);

  it('on PostgreSQL', async () => {
    const shared = await db.postgres('accounts');
    expect(shared.dialect).toBe('postgres');
    await exercise(shared);
  }, 60_000);
});
