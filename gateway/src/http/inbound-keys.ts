import { sql, type Kysely } from 'kysely';
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
    /** When it was claimed (the claimant's clock). */
    applied_at: number;
    /** When its action was committed on the claimant; null while claimed only (ADR 0176 addendum). */
    confirmed_at: number | null;
  };
};

/**
 * A claim of another instance never confirmed after this long is not in progress any more: its
 * claimant died between the claim and its commit, or could not release it after a refusal. The
 * ticket's holder then claims the key anew (its own copy of the ticket decides whether the action
 * still applies), instead of answering "applied already" for `keepKeysHours` for an action never
 * applied. Far longer than any claim-to-commit (milliseconds), and than clock skew between members.
 */
export const INBOUND_CLAIM_SETTLE_MS = 60_000;

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
  {
    name: 'inbound-0002-confirmed',
    up: async (db) => {
      await db.schema.alterTable('inbound_keys').addColumn('confirmed_at', EPOCH_MS).execute();
      // Rows from before were applied, or are claims from before this column: taken as applied.
      await sql`update inbound_keys set confirmed_at = applied_at`.execute(db);
    },
  },
];

/** A claim refused: the key is applied, or being applied, by this instance or another. */
export interface ClaimedBy {
  instanceId: string;
  at: number;
  /** Its action was committed (a replay); false: being applied now. */
  confirmed: boolean;
}

/** What the inbound route needs to keep an idempotency key cluster-wide (absent: one instance). */
export interface InboundKeys {
  /** This instance's id (a claim it holds from before a restart is its own to settle). */
  readonly instanceId: string;
  /**
   * Whether any instance applied, or is applying, an action under this key at or after `since` (epoch
   * ms). Given `now`, a claim never confirmed and older than INBOUND_CLAIM_SETTLE_MS does not count.
   */
  seen(key: string, since: number, now?: number): Promise<boolean>;
  /**
   * Claims the key before its action is applied (ADR 0176), in one statement: of two instances
   * claiming at once, one gets `true`; the other gets who holds it. A key last claimed before
   * `since` (older than the keep window), or claimed and never confirmed for INBOUND_CLAIM_SETTLE_MS
   * before `at`, is claimed anew.
   */
  claim(key: string, ticketId: string, action: string, at: number, since: number): Promise<true | ClaimedBy>;
  /** Gives a claim back (its action was refused or failed): a retry under the key may apply. */
  release(key: string, at: number): Promise<void>;
  /** The claim made at `at` was committed (its action applied): a replay from now on, for good. */
  confirm(key: string, at: number, confirmedAt: number): Promise<void>;
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

  async seen(key: string, since: number, now?: number): Promise<boolean> {
    let q = this.db
      .selectFrom('inbound_keys')
      .select('key')
      .where('key', '=', key)
      .where('applied_at', '>=', since);
    if (now !== undefined)
      q = q.where((eb) =>
        eb.or([eb('confirmed_at', 'is not', null), eb('applied_at', '>=', now - INBOUND_CLAIM_SETTLE_MS)]),
      );
    const r = await q.executeTakeFirst();
    return r !== undefined;
  }

  async claim(
    key: string,
    ticketId: string,
    action: string,
    at: number,
    since: number,
  ): Promise<true | ClaimedBy> {
    const claim = {
      ticket_id: ticketId,
      action,
      instance_id: this.instanceId,
      applied_at: at,
      confirmed_at: null,
    };
    // INSERT … ON CONFLICT DO UPDATE … WHERE expired or abandoned … RETURNING: claimed only if the
    // row is ours now.
    const won = await this.db
      .insertInto('inbound_keys')
      .values({ key, ...claim })
      .onConflict((oc) =>
        oc
          .column('key')
          .doUpdateSet(claim)
          .where((eb) =>
            eb.or([
              eb('inbound_keys.applied_at', '<', since),
              eb.and([
                eb('inbound_keys.confirmed_at', 'is', null),
                eb('inbound_keys.applied_at', '<', at - INBOUND_CLAIM_SETTLE_MS),
              ]),
            ]),
          ),
      )
      .returning('key')
      .executeTakeFirst();
    if (won) return true;
    const by = await this.db
      .selectFrom('inbound_keys')
      .select(['instance_id', 'applied_at', 'confirmed_at'])
      .where('key', '=', key)
      .executeTakeFirst();
    // Released between the two statements (its action failed): answered as in progress.
    if (!by) return { instanceId: '', at, confirmed: false };
    return { instanceId: by.instance_id, at: Number(by.applied_at), confirmed: by.confirmed_at !== null };
  }

  async confirm(key: string, at: number, confirmedAt: number): Promise<void> {
    await this.db
      .updateTable('inbound_keys')
      .set({ confirmed_at: confirmedAt })
      .where('key', '=', key)
      .where('instance_id', '=', this.instanceId)
      .where('applied_at', '=', at)
      .execute();
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
