import type { ColumnDataType, CreateTableBuilder } from 'kysely';
import type { SqlDialect } from './dialect.js';

/**
 * The column conventions of the shared tables, so that one query works on both databases:
 * - times are epoch milliseconds in `bigint` (read back as numbers, see dialect.ts);
 * - flags are `integer` 0/1 (SQLite has no boolean; PostgreSQL's would come back as `true`);
 * - structured values are JSON in `text`, parsed by the store that owns them;
 * - generated keys are `idColumn` (an identity column on PostgreSQL, AUTOINCREMENT on SQLite).
 */
export const EPOCH_MS: ColumnDataType = 'bigint';
export const FLAG: ColumnDataType = 'integer';
export const JSON_TEXT: ColumnDataType = 'text';

/** Adds a generated integer primary key `name` in each dialect's own spelling. */
export function idColumn<T extends string, C extends string>(
  t: CreateTableBuilder<T, C>,
  dialect: SqlDialect,
  name = 'id',
): CreateTableBuilder<T, C | typeof name> {
  return dialect === 'postgres'
    ? t.addColumn(name, 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
    : t.addColumn(name, 'integer', (c) => c.primaryKey().autoIncrement());
}
