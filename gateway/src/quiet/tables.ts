import { EPOCH_MS, JSON_TEXT } from '../storage/sql/columns.js';
import type { SharedMigration } from '../storage/sql/migrations.js';

/**
 * Shelves and maintenance windows shared by the cluster (ADR 0163): the same fields as alarms.db's
 * `shelves` and `maintenance_windows`. Any instance inserts a row and ends it (`ended_at`, set once,
 * `WHERE ended_at IS NULL`); every instance applies the rows to its own alarm service. Nothing is
 * deleted ("不得丢失").
 */
export type QuietTables = {
  quiet_shelves: {
    id: string;
    site: string | null;
    device: string | null;
    rule: string | null;
    from_ms: number;
    until_ms: number;
    user_name: string;
    user_subject: string | null;
    reason: string;
    created_at: number;
    ended_at: number | null;
    ended_by: string | null;
    ended_by_subject: string | null;
  };
  quiet_windows: {
    id: string;
    site: string | null;
    device: string | null;
    kind: string | null;
    rule: string | null;
    schedule_json: string;
    reason: string;
    created_by: string;
    created_by_subject: string | null;
    created_at: number;
    /** When no occurrence can cover anything any more (a one-off window's end); null: open-ended. */
    last_until: number | null;
    ended_at: number | null;
    ended_by: string | null;
    ended_by_subject: string | null;
  };
};

export const QUIET_STEPS: readonly SharedMigration[] = [
  {
    name: 'quiet-0001-shelves-and-windows',
    async up(db) {
      await db.schema
        .createTable('quiet_shelves')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('site', 'text')
        .addColumn('device', 'text')
        .addColumn('rule', 'text')
        .addColumn('from_ms', EPOCH_MS, (c) => c.notNull())
        .addColumn('until_ms', EPOCH_MS, (c) => c.notNull())
        .addColumn('user_name', 'text', (c) => c.notNull())
        .addColumn('user_subject', 'text')
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('created_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('ended_at', EPOCH_MS)
        .addColumn('ended_by', 'text')
        .addColumn('ended_by_subject', 'text')
        .execute();
      await db.schema
        .createIndex('quiet_shelves_open')
        .on('quiet_shelves')
        .columns(['ended_at', 'until_ms'])
        .execute();
      await db.schema
        .createTable('quiet_windows')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('site', 'text')
        .addColumn('device', 'text')
        .addColumn('kind', 'text')
        .addColumn('rule', 'text')
        .addColumn('schedule_json', JSON_TEXT, (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_by_subject', 'text')
        .addColumn('created_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('last_until', EPOCH_MS)
        .addColumn('ended_at', EPOCH_MS)
        .addColumn('ended_by', 'text')
        .addColumn('ended_by_subject', 'text')
        .execute();
      await db.schema
        .createIndex('quiet_windows_open')
        .on('quiet_windows')
        .columns(['ended_at', 'last_until'])
        .execute();
    },
  },
];
