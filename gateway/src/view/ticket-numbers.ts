import { sql, type Kysely } from 'kysely';
import type { Logger } from '../core/log.js';
import type { TicketNumbers } from '../workorders/types.js';
import type { ViewTables } from './tables.js';

const COUNTER = 'ticket';

/**
 * Ticket numbers unique across the cluster (ADR 0158): blocks of `blockSize` numbers leased from one
 * shared counter (`UPDATE … SET next = next + n RETURNING next`, atomic in PostgreSQL), the next
 * block leased while the current one still has half left. `next()` is synchronous and never waits
 * on PostgreSQL; a number leased and not used is skipped, never given to anyone else.
 */
export class LeasedTicketNumbers implements TicketNumbers {
  private from = 0;
  private to = 0;
  /** The block leased ahead, taken when the current one runs out. */
  private spare: { from: number; to: number } | undefined;
  private leasing?: Promise<void>;
  private failures = 0;

  constructor(
    private readonly db: Kysely<ViewTables>,
    private readonly log: Logger,
    private readonly blockSize = 100,
  ) {}

  /** Leases the first block, above `localNext` (the next number this instance's own file would use). */
  async start(localNext: number): Promise<void> {
    await this.db
      .insertInto('view_counters')
      .values({ name: COUNTER, next: 1 })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    const b = await this.lease(localNext);
    this.from = b.from;
    this.to = b.to;
    this.refill();
  }

  next(): number {
    if (this.from >= this.to) {
      if (!this.spare) {
        this.refill();
        // Leases are taken ahead of need; running out means PostgreSQL has been unreachable for a
        // whole block. Giving a number that may collide would be worse than failing the ticket:
        // the alarm stays recorded and its ticket is raised at the next start (reconcileAlarms).
        throw new Error('no ticket numbers left: the shared counter in PostgreSQL could not be reached');
      }
      this.from = this.spare.from;
      this.to = this.spare.to;
      this.spare = undefined;
    }
    const n = this.from++;
    if (!this.spare && this.to - this.from <= this.blockSize / 2) this.refill();
    return n;
  }

  health(): { left: number; spare: number; failures: number } {
    return {
      left: this.to - this.from,
      spare: this.spare ? this.spare.to - this.spare.from : 0,
      failures: this.failures,
    };
  }

  private refill(): void {
    if (this.leasing || this.spare) return;
    this.leasing = this.lease(0)
      .then((b) => {
        this.spare = b;
      })
      .catch((err: unknown) => {
        this.failures++;
        this.log.warn(
          { err: (err as Error).message },
          'could not lease ticket numbers; trying again at the next ticket',
        );
      })
      .finally(() => {
        this.leasing = undefined;
      });
  }

  /** One statement: the block is [next before, next after), at least `atLeast`. */
  private async lease(atLeast: number): Promise<{ from: number; to: number }> {
    const n = this.blockSize;
    const row = await this.db
      .updateTable('view_counters')
      .set({
        next: sql<number>`(case when ${sql.ref('next')} < ${atLeast} then ${atLeast} else ${sql.ref('next')} end) + ${n}`,
      })
      .where('name', '=', COUNTER)
      .returning('next')
      .executeTakeFirstOrThrow();
    const to = Number(row.next);
    return { from: to - n, to };
  }
}
