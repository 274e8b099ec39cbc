import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export type Db = Database.Database;

export interface Migration {
  version: number;
  sql: string;
}

/**
 * Opens an SQLite database in WAL mode and applies the migrations it has not seen yet,
 * each in its own transaction, recording the version in `user_version`.
 */
export function openDb(file: string, migrations: Migration[], synchronous: 'full' | 'normal' = 'full'): Db {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  // Several modules may share one file (work orders and notifications) and one version sequence:
  // two of them picking the same number would silently skip one migration.
  const versions = new Set<number>();
  for (const m of migrations) {
    if (versions.has(m.version)) {
      db.close();
      throw new Error(`${file}: two migrations claim version ${m.version}`);
    }
    versions.add(m.version);
  }
  const current = db.pragma('user_version', { simple: true }) as number;
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return db;
}
