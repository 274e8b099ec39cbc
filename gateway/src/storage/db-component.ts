import type { Component, ComponentHealth } from '../core/types.js';
import { openDb, type Db, type Migration } from './db.js';

/** An SQLite database file as a component: opened and migrated in start(), closed in stop(). */
export class DbComponent implements Component {
  private handle?: Db;

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly migrations: Migration[],
    /** `normal`: commits without an fsync, for a database whose losses are rebuilt (ADR 0082). */
    private readonly synchronous: 'full' | 'normal' = 'full',
  ) {}

  /** The open database; only between start() and stop(). */
  get db(): Db {
    if (!this.handle) throw new Error(`${this.name} is not open`);
    return this.handle;
  }

  async start(): Promise<void> {
    this.handle = openDb(this.file, this.migrations, this.synchronous);
  }

  async stop(): Promise<void> {
    this.handle?.close();
    this.handle = undefined;
  }

  health(): ComponentHealth {
    return { state: this.handle ? 'ok' : 'stopped' };
  }
}
