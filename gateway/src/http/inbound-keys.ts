import type { Kysely } from 'kysely';
import { EPOCH_MS } from '../storage/sql/columns.js';
import type { SharedMigration } from '../storage/sql/migrations.js';

/** The idempotency keys of the inbound CMMS webhook that a cluster has applied (ADR 0166). */
export type InboundKeyTables = {
  inbound_keys: {
    key: string;
    ticket_id: string;
    action: string;
    /** The instance that applied it (the ticket's holder then). */
    instance_id: string;
    applied_at: number;
  };
};

export const INBOUND_KEY_STEPS: readonly SharedMigration[] = [
  {
    name: 'inbound-0001-keys',
    up: async (db) => {
      await db.schema
        .createTable('inbound_keys')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('ticket_id', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('instance_id', 'text', (c) => c.notNull())
        .addColumn('applied_at', EPOCH_MS, (c) => c.notNull())
        .execute();
    },
  },
];

/** What the inbound route needs to keep an idempotency key cluster-wide (absent: one instance). */
export interface InboundKeys {
  /** Whether any instance applied an action under this key at or after `since` (epoch ms). */
  seen(key: string, since: number): Promise<boolean>;
  /** Records a key once its action is applied (a second record of the same key changes nothing). */
  record(key: string, ticketId: string, action: string, at: number): Promise<void>;
}

/**
 * Cluster mode: the keys in the shared table. The holder's own workorders.db keeps the key with the
 * ticket change in one transaction, as on one instance; this table makes a retry that reaches
 * another instance, or the ticket's next holder, a replay too.
 */
export class SharedInboundKeys implements InboundKeys {
  constructor(
    private readonly instanceId: string,
    private readonly open: () => Kysely<object>,
  ) {}

  private get db(): Kysely<InboundKeyTables> {
    return this.open().withTables<InboundKeyTables>();
  }

  async seen(key: string, since: number): Promise<boolean> {
    const r = await this.db
      .selectFrom('inbound_keys')
      .select('key')
      .where('key', '=', key)
      .where('applied_at', '>=', since)
      .executeTakeFirst();
    return r !== undefined;
  }

  async record(key: string, ticketId: string, action: string, at: number): Promise<void> {
    await this.db
      .insertInto('inbound_keys')
      .values({ key, ticket_id: ticketId, action, instance_id: this.instanceId, applied_at: at })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }
}
