import { sql, type Kysely } from 'kysely';
import type { Logger } from '../core/log.js';
import type { DeliveryFence } from '../notifications/fence.js';
import type { QueueRow } from '../notifications/queue.js';
import type { ViewTables } from './tables.js';

/** PostgreSQL's clock in epoch ms: claims are compared with it only, never with a member's clock. */
const NOW = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** Event ids per statement at start (a bounded list keeps plans simple). */
const CHUNK = 500;

export interface NotifyClaimsOptions {
  instanceId: string;
  db: () => Kysely<object>;
  log: Logger;
  /**
   * How long a claim waits for PostgreSQL before the attempt goes ahead unclaimed (default 1 s):
   * safety notifications do not wait on the shared store.
   */
  claimTimeoutMs?: number;
  /** How long the check at start waits (default 10 s); beyond, every row is still claimed before its attempt. */
  startTimeoutMs?: number;
}

/**
 * The notification queue's fence in the cluster's shared copy (ADR 0179). Before an attempt, a
 * member claims the row in `view_notifications` in one statement: the row is inserted as its own if
 * it was not copied yet, or stamped `claimed_until` if this member still holds it and it is not
 * recorded delivered. A row another member took over (the record mover flips `instance_id` when it
 * finds the holder dead and the row unclaimed, view/records.ts) returns nothing: the caller drops it.
 * Row locks make the claim and the takeover exclusive: two members never both attempt one row.
 */
export class NotifyClaims implements DeliveryFence {
  constructor(private readonly o: NotifyClaimsOptions) {}

  private get db(): Kysely<ViewTables> {
    return this.o.db().withTables<ViewTables>();
  }

  async claim(row: QueueRow, attemptMs: number): Promise<'go' | 'taken' | 'unfenced'> {
    const me = this.o.instanceId;
    const q = this.db
      .insertInto('view_notifications')
      .values({
        event_id: row.eventId,
        channel: row.channel,
        instance_id: me,
        ticket_id: row.ticketId,
        event: row.event,
        created_at: row.createdAt,
        body: row.body,
        target: row.target,
        state: 'pending',
        delivered_at: null,
        claimed_until: sql<number>`${NOW} + ${Math.round(attemptMs)}`,
      })
      .onConflict((oc) =>
        oc
          .columns(['event_id', 'channel'])
          .doUpdateSet((eb) => ({ claimed_until: eb.ref('excluded.claimed_until') }))
          .where('view_notifications.instance_id', '=', me)
          .where('view_notifications.state', '!=', 'delivered'),
      )
      .returning('event_id')
      .executeTakeFirst();
    try {
      const got = await within(q, this.o.claimTimeoutMs ?? 1000);
      return got ? 'go' : 'taken';
    } catch (err) {
      this.o.log.debug({ err: (err as Error).message, event: row.eventId }, 'notification claim failed');
      return 'unfenced';
    }
  }

  async release(row: QueueRow, deliveredAt: number | null): Promise<void> {
    const q = this.db
      .updateTable('view_notifications')
      .set(
        deliveredAt === null
          ? { claimed_until: null }
          : { claimed_until: null, state: 'delivered', delivered_at: deliveredAt },
      )
      .where('event_id', '=', row.eventId)
      .where('channel', '=', row.channel)
      .where('instance_id', '=', this.o.instanceId)
      .execute();
    try {
      await within(q, this.o.claimTimeoutMs ?? 1000);
    } catch (err) {
      // The claim runs out by itself; the writer copies the row's state with its next batch.
      this.o.log.debug(
        { err: (err as Error).message, event: row.eventId },
        'notification claim not released',
      );
    }
  }

  async taken(rows: readonly QueueRow[]): Promise<Set<number>> {
    const me = this.o.instanceId;
    const seqOf = new Map(rows.map((r) => [`${r.channel}\n${r.eventId}`, r.seq]));
    const ids = [...new Set(rows.map((r) => r.eventId))];
    const out = new Set<number>();
    const work = async () => {
      for (let i = 0; i < ids.length; i += CHUNK) {
        const found = await this.db
          .selectFrom('view_notifications')
          .select(['event_id', 'channel'])
          .where('event_id', 'in', ids.slice(i, i + CHUNK))
          .where((eb) => eb.or([eb('instance_id', '!=', me), eb('state', '=', 'delivered')]))
          .execute();
        for (const f of found) {
          const seq = seqOf.get(`${f.channel}\n${f.event_id}`);
          if (seq !== undefined) out.add(seq);
        }
      }
    };
    await within(work(), this.o.startTimeoutMs ?? 10_000);
    return out;
  }
}

/** `p`, or a rejection after `ms` (the query itself goes on; its answer is then ignored). */
async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the shared store within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
