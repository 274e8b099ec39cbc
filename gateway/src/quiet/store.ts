import { sql, type Kysely } from 'kysely';
import type { Shelf } from '../alarms/types.js';
import type { MaintenanceWindow } from '../alarms/windows.js';
import { rowToShelf, rowToWindow, shelfToRow, windowToRow } from './rows.js';
import type { QuietTables } from './tables.js';

/** The channel every instance LISTENs on; the payload is the writer's instance id. */
export const QUIET_CHANNEL = 'gateway_quiet';

export interface Ending {
  at: number;
  by: string;
  subject: string | null;
}

/**
 * The shared shelves and windows in PostgreSQL (ADR 0163), each query written once through Kysely.
 * Every write NOTIFYs the other instances in its own transaction, so they hear of it only once it
 * has committed.
 */
export class QuietStore {
  constructor(
    private readonly handle: () => Kysely<object>,
    private readonly instanceId: string,
  ) {}

  private get db(): Kysely<QuietTables> {
    return this.handle().withTables<QuietTables>();
  }

  private async notify(tx: Kysely<QuietTables>): Promise<void> {
    await sql`select pg_notify(${QUIET_CHANNEL}, ${this.instanceId})`.execute(tx);
  }

  async insertShelf(s: Shelf): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('quiet_shelves').values(shelfToRow(s)).execute();
      await this.notify(tx);
    });
  }

  async insertWindow(w: MaintenanceWindow): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('quiet_windows').values(windowToRow(w)).execute();
      await this.notify(tx);
    });
  }

  /** Ends a shelf that is still running; undefined when it is not (unknown, ended, or run out). */
  async endShelf(id: string, e: Ending, now: number): Promise<Shelf | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable('quiet_shelves')
        .set({ ended_at: e.at, ended_by: e.by, ended_by_subject: e.subject })
        .where('id', '=', id)
        .where('ended_at', 'is', null)
        .where('until_ms', '>', now)
        .returningAll()
        .executeTakeFirst();
      if (row) await this.notify(tx);
      return row && rowToShelf(row);
    });
  }

  /** Ends a window not ended yet; undefined when someone ended it first. */
  async endWindow(id: string, e: Ending): Promise<MaintenanceWindow | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const row = await tx
        .updateTable('quiet_windows')
        .set({ ended_at: e.at, ended_by: e.by, ended_by_subject: e.subject })
        .where('id', '=', id)
        .where('ended_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      if (row) await this.notify(tx);
      return row && rowToWindow(row);
    });
  }

  async window(id: string): Promise<MaintenanceWindow | undefined> {
    const row = await this.db.selectFrom('quiet_windows').selectAll().where('id', '=', id).executeTakeFirst();
    return row && rowToWindow(row);
  }

  /** Running shelves, or every one ever set (`all`), oldest first. */
  async shelves(all: boolean, now: number): Promise<Shelf[]> {
    let q = this.db.selectFrom('quiet_shelves').selectAll();
    if (!all) q = q.where('ended_at', 'is', null).where('until_ms', '>', now);
    return (await q.orderBy('created_at').execute()).map(rowToShelf);
  }

  /** Windows not ended and not run out (recurring ones: the caller checks), or every one (`all`). */
  async windows(all: boolean, now: number): Promise<MaintenanceWindow[]> {
    let q = this.db.selectFrom('quiet_windows').selectAll();
    if (!all)
      q = q
        .where('ended_at', 'is', null)
        .where((eb) => eb.or([eb('last_until', 'is', null), eb('last_until', '>', now)]));
    return (await q.orderBy('created_at').execute()).map(rowToWindow);
  }

  /**
   * What an instance applies at each sync: the running shelves and windows, and the rows of those
   * it has running itself (to hear that they ended). Few rows: shelves and windows are rare.
   */
  async forSync(
    now: number,
    shelfIds: readonly string[],
    windowIds: readonly string[],
  ): Promise<{ shelves: Shelf[]; windows: MaintenanceWindow[] }> {
    const shelves = await this.db
      .selectFrom('quiet_shelves')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([eb('ended_at', 'is', null), eb('until_ms', '>', now)]),
          ...(shelfIds.length ? [eb('id', 'in', shelfIds)] : []),
        ]),
      )
      .orderBy('created_at')
      .execute();
    const windows = await this.db
      .selectFrom('quiet_windows')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb.and([
            eb('ended_at', 'is', null),
            eb.or([eb('last_until', 'is', null), eb('last_until', '>', now)]),
          ]),
          ...(windowIds.length ? [eb('id', 'in', windowIds)] : []),
        ]),
      )
      .orderBy('created_at')
      .execute();
    return { shelves: shelves.map(rowToShelf), windows: windows.map(rowToWindow) };
  }

  /** Records this instance had before it joined a cluster: shared, unless they are already. */
  async share(shelves: readonly Shelf[], windows: readonly MaintenanceWindow[]): Promise<void> {
    if (shelves.length === 0 && windows.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const s of shelves)
        await tx
          .insertInto('quiet_shelves')
          .values(shelfToRow(s))
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      for (const w of windows)
        await tx
          .insertInto('quiet_windows')
          .values(windowToRow(w))
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      await this.notify(tx);
    });
  }
}
