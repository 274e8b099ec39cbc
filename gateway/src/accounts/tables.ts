import type { SharedMigration } from '../storage/sql/migrations.js';
import { EPOCH_MS, FLAG } from '../storage/sql/columns.js';

/** The accounts module's tables in the shared store (storage/sql, ADR 0120). */
export type AccountTables = {
  accounts_users: {
    username: string;
    display_name: string;
    language: string;
    role: string;
    email: string | null;
    phone: string | null;
    /** `scrypt$N$r$p$salt$hash` (password.ts); null for an account that signs in only through SSO. */
    password_hash: string | null;
    must_change_password: number;
    disabled: number;
    created_at: number;
    created_by: string;
    updated_at: number;
    disabled_at: number | null;
    disabled_by: string | null;
    /** SSO: the provider's `iss` and `sub` this account is bound to (`<iss>#<sub>`); null for local accounts. */
    sso_subject: string | null;
  };
  accounts_sessions: {
    /** sha256 of the session id (hex): the id itself is only in the browser's cookie. */
    id_hash: string;
    username: string;
    role: string;
    via: string;
    subject: string | null;
    created_at: number;
    last_seen_at: number;
    expires_at: number;
  };
  /** Failed sign-ins per key (`user:<name>` or `addr:<ip>`) in the current window, and a lock. */
  accounts_sign_in_failures: {
    key: string;
    failures: number;
    window_start: number;
    locked_until: number | null;
  };
};

export const ACCOUNT_STEPS: readonly SharedMigration[] = [
  {
    name: 'accounts-0001-users',
    up: async (db) => {
      await db.schema
        .createTable('accounts_users')
        .addColumn('username', 'text', (c) => c.primaryKey())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('language', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('phone', 'text')
        .addColumn('password_hash', 'text')
        .addColumn('must_change_password', FLAG, (c) => c.notNull().defaultTo(0))
        .addColumn('disabled', FLAG, (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('disabled_at', EPOCH_MS)
        .addColumn('disabled_by', 'text')
        .execute();
    },
  },
  {
    name: 'accounts-0002-sessions',
    up: async (db) => {
      await db.schema
        .createTable('accounts_sessions')
        .addColumn('id_hash', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('via', 'text', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('created_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('last_seen_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('expires_at', EPOCH_MS, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('accounts_sessions_username')
        .on('accounts_sessions')
        .column('username')
        .execute();
    },
  },
  {
    name: 'accounts-0003-sign-in-failures',
    up: async (db) => {
      await db.schema
        .createTable('accounts_sign_in_failures')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('window_start', EPOCH_MS, (c) => c.notNull())
        .addColumn('locked_until', EPOCH_MS)
        .execute();
    },
  },
  {
    name: 'accounts-0004-sso-subject',
    up: async (db) => {
      await db.schema.alterTable('accounts_users').addColumn('sso_subject', 'text').execute();
    },
  },
];
