import type { Registry } from 'prom-client';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { SharedDb } from '../storage/sql/shared-db.js';
import { OidcSignIn } from './oidc.js';
import { AccountService } from './service.js';
import type { AccountTables } from './tables.js';

/** The first admin's username when GATEWAY_ADMIN_PASSWORD creates it. */
export const FIRST_ADMIN = 'admin';

/**
 * Builds the accounts service over the shared store and, on a store without any account, creates
 * the first admin from GATEWAY_ADMIN_PASSWORD (docs/security.md). The password is never logged.
 */
export async function startAccounts(d: {
  cfg: GatewayConfig;
  shared: SharedDb;
  log: Logger;
  metrics: Registry;
  env?: NodeJS.ProcessEnv;
}): Promise<{ service: AccountService; oidc?: OidcSignIn }> {
  const { sessions, signIn } = d.cfg.accounts;
  const log = d.log.child({ module: 'accounts' });
  const window = signIn.windowSeconds * 1000;
  const lock = signIn.lockSeconds * 1000;
  const service = new AccountService(d.shared.db.withTables<AccountTables>(), {
    timeouts: { idleMs: sessions.idleSeconds * 1000, absoluteMs: sessions.absoluteSeconds * 1000 },
    limits: {
      perAccount: { maxFailures: signIn.maxFailuresPerAccount, windowMs: window, lockMs: lock },
      perAddress: { maxFailures: signIn.maxFailuresPerAddress, windowMs: window, lockMs: lock },
    },
    log,
    metrics: d.metrics,
  });
  const password = (d.env ?? process.env).GATEWAY_ADMIN_PASSWORD;
  if (password !== undefined && password !== '' && (await service.count()) === 0) {
    await service.create(
      {
        username: FIRST_ADMIN,
        displayName: 'Administrator',
        language: 'en',
        role: 'admin',
        password,
        // The operator chose it in the environment: changing it at first sign-in is advised, not forced.
        mustChangePassword: false,
      },
      'GATEWAY_ADMIN_PASSWORD',
    );
    log.warn(
      { username: FIRST_ADMIN },
      'first admin account created from GATEWAY_ADMIN_PASSWORD: sign in and change the password, then unset the variable',
    );
  }
  const o = d.cfg.accounts.oidc;
  const secret = o?.clientSecret ?? (d.env ?? process.env).GATEWAY_OIDC_CLIENT_SECRET;
  const oidc = o
    ? new OidcSignIn(
        { ...o, ...(secret ? { clientSecret: secret } : {}) },
        service,
        log.child({ sso: 'oidc' }),
      )
    : undefined;
  return { service, oidc };
}
