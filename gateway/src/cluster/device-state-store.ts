import type { Kysely } from 'kysely';
import type { SharedMigration } from '../storage/sql/migrations.js';
import { EPOCH_MS, JSON_TEXT } from '../storage/sql/columns.js';

/**
 * Per-device state that moves with a device's partition (ADR 0151): the rules' state of each
 * device and each meter's last accepted index, as of the owner's durable watermark.
 */
export type DeviceStateTables = {
  cluster_rule_state: {
    site: string;
    device: string;
    partition: number;
    /** The device's rule state, a DeviceSnapshot (rules/snapshot.ts) in JSON. */
    state: string;
    /** The owner's durable watermark (PostgreSQL's clock) the row is as of. */
    saved_at: number;
  };
  cluster_meter_index: {
    site: string;
    device: string;
    partition: number;
    /** The timestamp of the last accepted reading, epoch ms. */
    ts: number;
    /** Its cumulative index (m³). */
    idx: number;
    saved_at: number;
  };
};

export const DEVICE_STATE_MIGRATION: SharedMigration = {
  name: 'cluster-0002-device-state',
  async up(db) {
    await db.schema
      .createTable('cluster_rule_state')
      .addColumn('site', 'text', (c) => c.notNull())
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('partition', 'integer', (c) => c.notNull())
      .addColumn('state', JSON_TEXT, (c) => c.notNull())
      .addColumn('saved_at', EPOCH_MS, (c) => c.notNull())
      .addPrimaryKeyConstraint('cluster_rule_state_pk', ['site', 'device'])
      .execute();
    await db.schema
      .createIndex('cluster_rule_state_partition')
      .on('cluster_rule_state')
      .column('partition')
      .execute();
    await db.schema
      .createTable('cluster_meter_index')
      .addColumn('site', 'text', (c) => c.notNull())
      .addColumn('device', 'text', (c) => c.notNull())
      .addColumn('partition', 'integer', (c) => c.notNull())
      // Readings may carry fractional milliseconds; a double keeps them exactly as derive saw them.
      .addColumn('ts', 'double precision', (c) => c.notNull())
      .addColumn('idx', 'double precision', (c) => c.notNull())
      .addColumn('saved_at', EPOCH_MS, (c) => c.notNull())
      .addPrimaryKeyConstraint('cluster_meter_index_pk', ['site', 'device'])
      .execute();
    await db.schema
      .createIndex('cluster_meter_index_partition')
      .on('cluster_meter_index')
      .column('partition')
      .execute();
  },
};

export interface RuleRow {
  site: string;
  device: string;
  partition: number;
  state: string;
}

export interface MeterRow {
  site: string;
  device: string;
  partition: number;
  ts: number;
  idx: number;
}

/** Rows per INSERT: far below PostgreSQL's 65,535 bind parameters, small enough to keep statements short. */
const CHUNK = 500;

/**
 * The queries of the moving device state. Written once through Kysely (ADR 0120); run on
 * PostgreSQL in cluster mode, inside the transaction that renews this member's leases, so a row
 * is written only for a partition whose lease the transaction holds (ADR 0151).
 */
export class DeviceStateStore {
  private readonly db: Kysely<DeviceStateTables>;

  constructor(db: Kysely<object>) {
    this.db = db.withTables<DeviceStateTables>();
  }

  async upsert(rules: readonly RuleRow[], meters: readonly MeterRow[], savedAt: number): Promise<void> {
    for (let i = 0; i < rules.length; i += CHUNK) {
      await this.db
        .insertInto('cluster_rule_state')
        .values(rules.slice(i, i + CHUNK).map((r) => ({ ...r, saved_at: savedAt })))
        .onConflict((oc) =>
          oc.columns(['site', 'device']).doUpdateSet((eb) => ({
            partition: eb.ref('excluded.partition'),
            state: eb.ref('excluded.state'),
            saved_at: eb.ref('excluded.saved_at'),
          })),
        )
        .execute();
    }
    for (let i = 0; i < meters.length; i += CHUNK) {
      await this.db
        .insertInto('cluster_meter_index')
        .values(meters.slice(i, i + CHUNK).map((m) => ({ ...m, saved_at: savedAt })))
        .onConflict((oc) =>
          oc.columns(['site', 'device']).doUpdateSet((eb) => ({
            partition: eb.ref('excluded.partition'),
            ts: eb.ref('excluded.ts'),
            idx: eb.ref('excluded.idx'),
            saved_at: eb.ref('excluded.saved_at'),
          })),
        )
        .execute();
    }
  }

  /** Every device's saved state in these partitions. */
  async load(
    partitions: readonly number[],
  ): Promise<{ rules: Array<{ state: string }>; meters: MeterRow[] }> {
    if (partitions.length === 0) return { rules: [], meters: [] };
    const rules = await this.db
      .selectFrom('cluster_rule_state')
      .select('state')
      .where('partition', 'in', partitions)
      .execute();
    const meters = await this.db
      .selectFrom('cluster_meter_index')
      .select(['site', 'device', 'partition', 'ts', 'idx'])
      .where('partition', 'in', partitions)
      .execute();
    return {
      rules,
      meters: meters.map((m) => ({ ...m, ts: Number(m.ts), idx: Number(m.idx) })),
    };
  }
}
