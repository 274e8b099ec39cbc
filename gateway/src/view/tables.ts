import { EPOCH_MS, JSON_TEXT } from '../storage/sql/columns.js';
import type { SharedMigration } from '../storage/sql/migrations.js';

/**
 * The cluster's shared view of alarms, incidents and tickets (ADR 0155). Each row is written only by
 * the instance that holds the record (`instance_id`), from its local stores' committed changes; the
 * other instances read it. Whole records are JSON in `body` (the local stores' shape, which grows
 * without migrations) beside the columns the lists filter and sort on.
 */
export type ViewTables = {
  view_alarms: {
    id: string;
    instance_id: string;
    site: string;
    device: string;
    rule: string;
    state: string;
    raised_at: number;
    updated_at: number;
    /**
     * The device's partition (ADR 0150, view-0002): what moves with it (ADR 0160). Null for rows
     * written before the column existed, until their holder writes them again.
     */
    partition: number | null;
    body: string;
  };
  view_alarm_events: {
    instance_id: string;
    /** The writer's change number: with `instance_id` the key that makes a retried batch harmless. */
    change_seq: number;
    alarm_id: string;
    ts: number;
    body: string;
  };
  view_incidents: {
    id: string;
    instance_id: string;
    site: string;
    state: string;
    opened_at: number;
    body: string;
  };
  view_tickets: {
    id: string;
    instance_id: string;
    seq: number;
    site: string;
    device: string | null;
    status: string;
    priority: string;
    assignee: string | null;
    created_at: number;
    updated_at: number;
    responded_at: number | null;
    response_due_at: number;
    resolve_due_at: number;
    paused_since: number | null;
    /** The partition of the ticket's own device (`device ?? ''`; ADR 0160). Null: written before view-0002. */
    partition: number | null;
    body: string;
  };
  view_ticket_entries: {
    ticket_id: string;
    /** Position in the ticket's audit trail: entries are appended only, so the position is their key. */
    idx: number;
    instance_id: string;
    ts: number;
    body: string;
  };
  /** The live feed: one row per change, read by the other instances after a NOTIFY or a reconnect. */
  view_changes: {
    instance_id: string;
    change_seq: number;
    type: string;
    site: string | null;
    at: number;
    /** The live stream's JSON of the change, as the holder's own stream sent it. */
    payload: string;
  };
  /** Shared counters: the next ticket number not leased to any instance. */
  view_counters: { name: string; next: number };
  /**
   * A copy of each row of the holder's local notify_queue (ADR 0160 addendum 2): when the holder dies
   * with rows still pending, the next holder of the ticket takes them (`instance_id` flipped) and
   * delivers them itself.
   */
  view_notifications: {
    event_id: string;
    channel: string;
    instance_id: string;
    ticket_id: string;
    event: string;
    created_at: number;
    /** The payload as sent, fixed when the event was queued. */
    body: string;
    target: string | null;
    /** pending, delivered or dead, as the holder's queue last reported it. */
    state: string;
    delivered_at: number | null;
    /**
     * Until when (PostgreSQL's clock, epoch ms) the holder is attempting it (ADR 0179): another member
     * does not take the row over before, even if the holder's heartbeat looks stale. Null: no attempt.
     */
    claimed_until: number | null;
  };
};

export const VIEW_STEPS: readonly SharedMigration[] = [
  {
    name: 'view-0001-alarms-incidents-tickets',
    async up(db) {
      await db.schema
        .createTable('view_alarms')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('site', 'text', (c) => c.notNull())
        .addColumn('device', 'text', (c) => c.notNull())
        .addColumn('rule', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('raised_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('updated_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('body', JSON_TEXT, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('view_alarms_state')
        .on('view_alarms')
        .columns(['state', 'raised_at'])
        .execute();
      await db.schema.createIndex('view_alarms_raised').on('view_alarms').column('raised_at').execute();
      await db.schema
        .createTable('view_alarm_events')
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('change_seq', EPOCH_MS, (c) => c.notNull())
        .addColumn('alarm_id', 'text', (c) => c.notNull())
        .addColumn('ts', EPOCH_MS, (c) => c.notNull())
        .addColumn('body', JSON_TEXT, (c) => c.notNull())
        .addPrimaryKeyConstraint('view_alarm_events_pk', ['instance_id', 'change_seq'])
        .execute();
      await db.schema
        .createIndex('view_alarm_events_alarm')
        .on('view_alarm_events')
        .columns(['alarm_id', 'ts'])
        .execute();
      await db.schema
        .createTable('view_incidents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('site', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('opened_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('body', JSON_TEXT, (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('view_tickets')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('seq', EPOCH_MS, (c) => c.notNull())
        .addColumn('site', 'text', (c) => c.notNull())
        .addColumn('device', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('priority', 'text', (c) => c.notNull())
        .addColumn('assignee', 'text')
        .addColumn('created_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('updated_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('responded_at', EPOCH_MS)
        .addColumn('response_due_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('resolve_due_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('paused_since', EPOCH_MS)
        .addColumn('body', JSON_TEXT, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('view_tickets_seq').on('view_tickets').column('seq').execute();
      await db.schema
        .createIndex('view_tickets_updated')
        .on('view_tickets')
        .columns(['updated_at', 'seq'])
        .execute();
      await db.schema
        .createTable('view_ticket_entries')
        .addColumn('ticket_id', 'text', (c) => c.notNull())
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('ts', EPOCH_MS, (c) => c.notNull())
        .addColumn('body', JSON_TEXT, (c) => c.notNull())
        .addPrimaryKeyConstraint('view_ticket_entries_pk', ['ticket_id', 'idx'])
        .execute();
      await db.schema
        .createTable('view_changes')
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('change_seq', EPOCH_MS, (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('site', 'text')
        .addColumn('at', EPOCH_MS, (c) => c.notNull())
        .addColumn('payload', JSON_TEXT, (c) => c.notNull())
        .addPrimaryKeyConstraint('view_changes_pk', ['instance_id', 'change_seq'])
        .execute();
      await db.schema.createIndex('view_changes_at').on('view_changes').column('at').execute();
      await db.schema
        .createTable('view_counters')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('next', EPOCH_MS, (c) => c.notNull())
        .execute();
    },
  },
  {
    // Records move with their device's partition (ADR 0160): the new owner finds the open ones of the
    // partitions it takes by this column. Nullable: rows already there get it when written again.
    name: 'view-0002-record-partitions',
    async up(db) {
      for (const table of ['view_alarms', 'view_tickets'])
        await db.schema.alterTable(table).addColumn('partition', 'integer').execute();
      await db.schema
        .createIndex('view_alarms_partition')
        .on('view_alarms')
        .columns(['partition', 'state'])
        .execute();
      await db.schema
        .createIndex('view_tickets_partition')
        .on('view_tickets')
        .columns(['partition', 'status'])
        .execute();
    },
  },
  {
    // Queued ticket notifications copied beside the tickets, so that a dead holder's undelivered
    // ones are delivered by the ticket's next holder (ADR 0160 addendum 2).
    name: 'view-0003-notifications',
    async up(db) {
      await db.schema
        .createTable('view_notifications')
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('ticket_id', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('created_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('body', JSON_TEXT, (c) => c.notNull())
        .addColumn('target', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('delivered_at', EPOCH_MS)
        .addPrimaryKeyConstraint('view_notifications_pk', ['event_id', 'channel'])
        .execute();
      await db.schema
        .createIndex('view_notifications_ticket')
        .on('view_notifications')
        .columns(['ticket_id', 'state'])
        .execute();
    },
  },
  {
    // Each attempt of a shared row is claimed first (ADR 0179): a member that comes back after a
    // crash does not send what another member took over, and no two members attempt one row at once.
    name: 'view-0004-notification-claims',
    async up(db) {
      await db.schema.alterTable('view_notifications').addColumn('claimed_until', EPOCH_MS).execute();
    },
  },
];
