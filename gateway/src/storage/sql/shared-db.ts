import { sql, type Kysely } from 'kysely';
import { join } from 'node:path';
import type { Logger } from '../../core/log.js';
import type { Component, ComponentHealth } from '../../core/types.js';
import { openSql, type SqlDialect } from './dialect.js';
import { migrateShared, type SharedMigration } from './migrations.js';

export interface SharedDbOptions {
  dataDir: string;
  /** `storage.postgres`: the shared state lives in PostgreSQL instead of `<dataDir>/shared.db`. */
  postgresUrl?: string;
  log: Logger;
  /** How often a PostgreSQL connection is checked for health (default 5 s). */
  pingMs?: number;
}

/**
 * The store of state that a cluster shares (accounts, sessions, runtime configuration, …): one
 * Kysely instance over the embedded SQLite file `<dataDir>/shared.db`, or over PostgreSQL when
 * `storage.postgres` is set. Each module hands its migrations to the constructor and reads and
 * writes its own tables through `db.withTables<…>()`; the queries are written once for both.
 */
export class SharedDb implements Component {
  readonly name = 'shared db';
  private handle?: Kysely<object>;
  private kind?: SqlDialect;
  private where = '';
  private timer?: NodeJS.Timeout;
  private lastError?: string;
  private applied: string[] = [];

  constructor(
    private readonly opts: SharedDbOptions,
    private readonly steps: readonly SharedMigration[],
  ) {}

  /** The open database; only between start() and stop(). */
  get db(): Kysely<object> {
    if (!this.handle) throw new Error('the shared state database is not open');
    return this.handle;
  }

  get dialect(): SqlDialect {
    if (!this.kind) throw new Error('the shared state database is not open');
    return this.kind;
  }

  async start(): Promise<void> {
    const opened = openSql({
      postgresUrl: this.opts.postgresUrl,
      sqliteFile: join(this.opts.dataDir, 'shared.db'),
    });
    this.handle = opened.db;
    this.kind = opened.dialect;
    this.where = opened.where;
    try {
      this.applied = await migrateShared(opened.db, opened.dialect, this.steps);
    } catch (err) {
      await opened.db.destroy();
      this.handle = undefined;
      throw err;
    }
    this.opts.log.info(
      { dialect: this.kind, where: this.where, applied: this.applied },
      'shared state database open',
    );
    if (this.kind === 'postgres') {
      this.timer = setInterval(() => void this.ping(), this.opts.pingMs ?? 5_000);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.handle?.destroy();
    this.handle = undefined;
  }

  health(): ComponentHealth {
    if (!this.handle) return { state: 'stopped' };
    return this.lastError === undefined
      ? { state: 'ok', dialect: this.kind, where: this.where }
      : { state: 'down', dialect: this.kind, where: this.where, error: this.lastError };
  }

  private async ping(): Promise<void> {
    try {
      await sql`select 1`.execute(this.db);
      if (this.lastError !== undefined)
        this.opts.log.info({ where: this.where }, 'shared state database reachable again');
      this.lastError = undefined;
    } catch (err) {
      if (this.lastError === undefined)
        this.opts.log.error(
          { where: this.where, err: (err as Error).message },
          'shared state database unreachable',
        );
      this.lastError = (err as Error).message;
    }
  }
}
