import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import type PgModule from 'pg';

/** Which database holds the shared state: the embedded SQLite file, or PostgreSQL for a cluster. */
export type SqlDialect = 'sqlite' | 'postgres';

export interface SqlTarget {
  /** `postgres://…`: shared state in PostgreSQL. */
  postgresUrl?: string;
  /** The SQLite file used when no PostgreSQL URL is given. */
  sqliteFile: string;
  /** Connections in the PostgreSQL pool (default 10). */
  poolSize?: number;
}

export interface OpenedSql {
  // The tables are declared by each store (`db.withTables<…>()`), not in one list here, so that a
  // module adds its tables without touching this file.
  db: Kysely<object>;
  dialect: SqlDialect;
  /** Where it is, without a password (for logs and health). */
  where: string;
}

let pgModule: typeof PgModule | undefined;
/**
 * The PostgreSQL driver, loaded when a PostgreSQL URL is configured and not at start: the embedded
 * default does not carry it on its heap, which the ingest path's garbage collector feels.
 */
function loadPg(): typeof PgModule {
  if (pgModule) return pgModule;
  const pg = createRequire(import.meta.url)('pg') as typeof PgModule;
  // PostgreSQL's int8 (bigint) arrives as a string by default, because it can exceed 2^53. The
  // shared tables keep epoch milliseconds and counters in bigint columns, all far below 2^53, so
  // they are read as numbers, the same type the SQLite driver gives.
  pg.types.setTypeParser(20, (v: string) => Number(v));
  return (pgModule = pg);
}

/** Opens the shared-state database through Kysely, one query builder for both dialects (ADR 0120). */
export function openSql(t: SqlTarget): OpenedSql {
  if (t.postgresUrl !== undefined) {
    // Bounded waits: a connection attempt, or a wait for a free client while every one is held by a
    // statement hung on a silent network cut, fails after 10 s instead of never, so a lease renewal
    // fails (and the member steps back) rather than waiting forever; keepalive lets the kernel
    // end a socket whose peer is gone.
    const pool = new (loadPg().Pool)({
      connectionString: t.postgresUrl,
      max: t.poolSize ?? 10,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
    });
    // A dropped connection (server restart) is an error event on the idle client: without a
    // listener it would crash the process. The pool replaces the client on the next query.
    pool.on('error', () => undefined);
    // The pool listens only on idle clients: a connection that drops while checked out between two
    // statements of a transaction would emit an unheard 'error' and end the process. The statement
    // that uses it next fails instead, and its caller retries.
    pool.on('connect', (client) => client.on('error', () => undefined));
    return {
      db: new Kysely<object>({ dialect: new PostgresDialect({ pool }) }),
      dialect: 'postgres',
      where: redact(t.postgresUrl),
    };
  }
  if (t.sqliteFile !== ':memory:') mkdirSync(dirname(t.sqliteFile), { recursive: true });
  const sqlite = new Database(t.sqliteFile);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  return {
    db: new Kysely<object>({ dialect: new SqliteDialect({ database: sqlite }) }),
    dialect: 'sqlite',
    where: t.sqliteFile,
  };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}
