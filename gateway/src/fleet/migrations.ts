import { EPOCH_MS, JSON_TEXT, idColumn } from '../storage/sql/columns.js';
import type { SharedMigration } from '../storage/sql/migrations.js';

/**
 * The runtime configuration's tables in the shared store (ADR 0140):
 * - `fleet_setting`: what operators changed, one row per (entity, key), its value as JSON;
 * - `fleet_change`: every change to it, who and when, the value before and after (history, restore).
 */
export const FLEET_STEPS: readonly SharedMigration[] = [
  {
    name: 'fleet-0001-settings-and-changes',
    up: async (db, dialect) => {
      await db.schema
        .createTable('fleet_setting')
        .addColumn('entity', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('value', JSON_TEXT, (c) => c.notNull())
        .addColumn('updated_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('fleet_setting_pk', ['entity', 'key'])
        .execute();
      await idColumn(db.schema.createTable('fleet_change'), dialect)
        .addColumn('at', EPOCH_MS, (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('entity', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('before', JSON_TEXT)
        .addColumn('after', JSON_TEXT)
        .addColumn('note', 'text')
        .execute();
      await db.schema
        .createIndex('fleet_change_entity_key')
        .on('fleet_change')
        .columns(['entity', 'key', 'id'])
        .execute();
    },
  },
  {
    // Channel secrets (ADR 0144): kept beside the setting, out of fleet_change, sealed with
    // GATEWAY_SECRETS_KEY when it is set.
    name: 'fleet-0002-channel-secrets',
    up: async (db) => {
      await db.schema
        .createTable('fleet_secret')
        .addColumn('entity', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('updated_at', EPOCH_MS, (c) => c.notNull())
        .addPrimaryKeyConstraint('fleet_secret_pk', ['entity', 'key'])
        .execute();
    },
  },
];
