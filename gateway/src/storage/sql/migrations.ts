import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { SqlDialect } from './dialect.js';

/**
 * One versioned step of a module's tables. `name` sorts the steps and is recorded once applied:
 * prefix it with the module (`accounts-0001-users`) so that two modules never claim one name.
 * `up` gets the dialect, for the few column types the two databases spell differently
 * (see columns.ts); everything else is written once through Kysely's schema builder.
 */
export interface SharedMigration {
  name: string;
  // The schema builder is untyped by design: a migration runs before the tables it creates exist.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  up(db: Kysely<any>, dialect: SqlDialect): Promise<void>;
}

/**
 * Applies every module's migrations not applied yet, in name order, each in a transaction.
 * Kysely's migrator takes a lock (a row in `kysely_migration_lock`, `SELECT … FOR UPDATE` on
 * PostgreSQL), so instances of a cluster starting at once apply each step exactly once; the others
 * wait for the lock and then find nothing left to do. Modules add their steps independently, so a
 * step may sort before one already applied (`allowUnorderedMigrations`).
 */
export async function migrateShared(
  db: Kysely<object>,
  dialect: SqlDialect,
  steps: readonly SharedMigration[],
): Promise<string[]> {
  const seen = new Set<string>();
  for (const s of steps) {
    if (seen.has(s.name)) throw new Error(`two shared-state migrations are named ${s.name}`);
    seen.add(s.name);
  }
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const s of steps) out[s.name] = { up: (db) => s.up(db, dialect) };
      return out;
    },
  };
  const migrator = new Migrator({ db, provider, allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(
      `shared-state migration ${failed ?? '(before any step)'} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
