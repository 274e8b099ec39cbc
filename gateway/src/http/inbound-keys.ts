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

/** A claim refused: the key is applied, or being applied, by this instance or another. */
export interface ClaimedBy {
  instanceId: string;
  at: number;
}

/** What the inbound route needs to keep an idempotency key cluster-wide (absent: one instance). */
export interface InboundKeys {
  /** This instance's id (a claim it holds from before a restart is its own to settle). */
  readonly instanceId: string;
  /** Whether any instance applied, or is applying, an action under this key at or after `since` (epoch ms). */
  seen(key: string, since: number): Promise<boolean>;
  /**
   * Claims the key before its action is applied (ADR 0176), in one statement: of two instances
   * claiming at once, one gets `true`; the other gets who holds it. A key last claimed before
   * `since` (older than the keep window) is claimed anew.
   */
  claim(key: string, ticketId: string, action: string, at: number, since: number): Promise<true | ClaimedBy>;
  /** Gives a claim back (its action was refused or failed): a retry under the key may apply. */
  release(key: string, at: number): Promise<void>;
}

/**
 * Cluster mode: the keys in the shared table. The holder claims a key here before acting, then
 * keeps it with the ticket change in its workorders.db in one transaction, as on one instance; this
 * table makes a concurrent delivery, a retry that reaches another instance, or the ticket's next
 * holder, a replay too.
 */
export class SharedInboundKeys implements InboundKeys {
  constructor(
    readonly instanceId: string,
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

  async claim(
    key: string,
    ticketId: string,
    action: string,
    at: number,
    since: number,
  ): Promise<true | ClaimedBy> {
    const row = { key, ticket_id: ticketId, action, instance_id: this.instanceId, applied_at: at };
    // INSERT … ON CONFLICT DO UPDATE … WHERE expired … RETURNING: claimed only if the row is ours now.
    const won = await this.db
      .insertInto('inbound_keys')
      .values(row)
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet({ ticket_id: ticketId, action, instance_id: this.instanceId, applied_at: at })
          .where('inbound_keys.applied_at', '<', since),
      )
      .returning('key')
      .executeTakeFirst();
    if (won) return true;
    const by = await this.db
      .selectFrom('inbound_keys')
      .select(['instance_id', 'applied_at'])
      .where('key', '=', key)
      .executeTakeFirst();
    // Released between the two statements (its action failed): answered as in progress.
    return { instanceId: by?.instance_id ?? '', at: by?.applied_at ?? at };
  }

  async release(key: string, at: number): Promise<void> {
    await this.db
      .deleteFrom('inbound_keys')
      .where('key', '=', key)
      .where('instance_id', '=', this.instanceId)
      .where('applied_at', '=', at)
      .execute();
  }
}
