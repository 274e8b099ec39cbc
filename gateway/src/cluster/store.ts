import { sql, type Kysely } from 'kysely';
import type { SharedMigration } from '../storage/sql/migrations.js';
import { EPOCH_MS } from '../storage/sql/columns.js';
import { DEVICE_STATE_MIGRATION } from './device-state-store.js';

/** The cluster's tables in the shared state store (ADR 0150). */
export type ClusterTables = {
  cluster_meta: { key: string; value: string };
  cluster_members: {
    instance_id: string;
    client_id: string;
    session: string;
    started_at: number;
    heartbeat_at: number;
    http_url: string | null;
    /** How far behind now the member has written its readings to InfluxDB (its durable watermark). */
    lag_ms: number;
  };
  cluster_partitions: {
    partition: number;
    owner: string | null;
    prev_owner: string | null;
    expires_at: number;
    durable_until: number;
  };
  cluster_leader: { name: string; owner: string | null; expires_at: number };
};

export const CLUSTER_MIGRATIONS: readonly SharedMigration[] = [
  {
    name: 'cluster-0001-members-leases',
    async up(db) {
      await db.schema
        .createTable('cluster_meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('cluster_members')
        .addColumn('instance_id', 'text', (c) => c.primaryKey())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('session', 'text', (c) => c.notNull())
        .addColumn('started_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('heartbeat_at', EPOCH_MS, (c) => c.notNull())
        .addColumn('http_url', 'text')
        .addColumn('lag_ms', EPOCH_MS, (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('cluster_partitions')
        .addColumn('partition', 'integer', (c) => c.primaryKey())
        .addColumn('owner', 'text')
        .addColumn('prev_owner', 'text')
        .addColumn('expires_at', EPOCH_MS, (c) => c.notNull().defaultTo(0))
        .addColumn('durable_until', EPOCH_MS, (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('cluster_leader')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('owner', 'text')
        .addColumn('expires_at', EPOCH_MS, (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  // The per-device state that moves with a partition (ADR 0151).
  DEVICE_STATE_MIGRATION,
];

/** PostgreSQL's clock in epoch ms: every lease and heartbeat is on it, never on a member's clock. */
const NOW = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/**
 * The partitions of `parts` whose lease `owner` holds now in PostgreSQL, their lease rows locked for
 * share until `db`'s transaction ends: a claim by another member (`for update skip locked`) passes
 * them by meanwhile. What moving records checks inside its flip (ADR 0160): a sweep or adoption
 * that reaches PostgreSQL late (its queries hung past the lease) takes nothing another member holds.
 */
export async function leasedTo(
  db: Kysely<object>,
  owner: string,
  parts: readonly number[],
): Promise<number[]> {
  if (parts.length === 0) return [];
  const r = await sql<{ partition: number }>`
    select partition from cluster_partitions
     where owner = ${owner} and expires_at > ${NOW} and partition in (${sql.join([...parts])})
     for share`.execute(db);
  return r.rows.map((x) => Number(x.partition));
}

export interface Claimed {
  partition: number;
  prevOwner: string | null;
  durableUntil: number;
}

/**
 * The queries of membership, partition leases and the leader lease. PostgreSQL only (cluster mode):
 * the arbitration is PostgreSQL's row locking (`FOR UPDATE SKIP LOCKED`) and its clock.
 */
export class ClusterStore {
  private readonly db: Kysely<ClusterTables>;

  constructor(db: Kysely<object>) {
    this.db = db.withTables<ClusterTables>();
  }

  /** Runs `fn` in one transaction: `tx` is this store's queries on it, `db` the transaction itself. */
  async transaction<T>(fn: (tx: ClusterStore, db: Kysely<object>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute((t) => {
      // A transaction is a Kysely over the same tables; other stores add theirs with withTables().
      const db = t as unknown as Kysely<object>;
      return fn(new ClusterStore(db), db);
    });
  }

  /** Records the partition count on first start; returns the count the cluster was created with. */
  async ensurePartitions(n: number): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('cluster_meta')
        .values({ key: 'partitions', value: String(n) })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      const row = await tx
        .selectFrom('cluster_meta')
        .select('value')
        .where('key', '=', 'partitions')
        .executeTakeFirstOrThrow();
      const count = Number(row.value);
      if (count === n) {
        const rows = Array.from({ length: n }, (_, partition) => ({
          partition,
          expires_at: 0,
          durable_until: 0,
        }));
        await tx
          .insertInto('cluster_partitions')
          .values(rows)
          .onConflict((oc) => oc.column('partition').doNothing())
          .execute();
        await tx
          .insertInto('cluster_leader')
          .values({ name: 'leader', owner: null, expires_at: 0 })
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
      }
      return count;
    });
  }

  async now(): Promise<number> {
    const r = await sql<{ now: number }>`select ${NOW} as now`.execute(this.db);
    return Number(r.rows[0]!.now);
  }

  /** Members (other than `session`) holding this instance id or client id with a heartbeat younger than `ttl`. */
  async holders(instanceId: string, clientId: string, session: string, ttl: number) {
    return this.db
      .selectFrom('cluster_members')
      .select(['instance_id', 'client_id', 'heartbeat_at', 'session'])
      .where((eb) => eb.or([eb('instance_id', '=', instanceId), eb('client_id', '=', clientId)]))
      .where('session', '!=', session)
      .where('heartbeat_at', '>', sql<number>`${NOW} - ${ttl}`)
      .execute();
  }

  /** Inserts or refreshes this member's row; returns PostgreSQL's time of the write. */
  async heartbeat(m: {
    instanceId: string;
    clientId: string;
    session: string;
    httpUrl: string | null;
    lagMs: number;
  }) {
    const row = await this.db
      .insertInto('cluster_members')
      .values({
        instance_id: m.instanceId,
        client_id: m.clientId,
        session: m.session,
        started_at: NOW,
        heartbeat_at: NOW,
        http_url: m.httpUrl,
        lag_ms: m.lagMs,
      })
      .onConflict((oc) =>
        oc.column('instance_id').doUpdateSet({
          client_id: m.clientId,
          session: m.session,
          heartbeat_at: NOW,
          http_url: m.httpUrl,
          lag_ms: m.lagMs,
          // A new session (a restart) starts again; the same session keeps its start time.
          started_at: sql<number>`case when cluster_members.session = ${m.session} then cluster_members.started_at else ${NOW} end`,
        }),
      )
      .returning('heartbeat_at')
      .executeTakeFirstOrThrow();
    return Number(row.heartbeat_at);
  }

  /**
   * Removes this member's row, then gives back any lease still recorded as its own: one claimed by a
   * renewal that hung past stop and reached PostgreSQL after the hand-over (ADR 0168). The delete
   * waits for a claim holding the row; the release, a later statement, sees what it claimed.
   */
  async leave(instanceId: string, session: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const gone = await tx
        .deleteFrom('cluster_members')
        .where('instance_id', '=', instanceId)
        .where('session', '=', session)
        .executeTakeFirst();
      // Without this session's row no claim of it can have run; leases of the id are another session's.
      if (Number(gone.numDeletedRows) === 0) return;
      await tx
        .updateTable('cluster_partitions')
        .set({ owner: null, prev_owner: instanceId, expires_at: 0 })
        .where('owner', '=', instanceId)
        .execute();
    });
  }

  /** Members with a heartbeat younger than `ttl`, by id. */
  async liveMembers(ttl: number) {
    return this.db
      .selectFrom('cluster_members')
      .select([
        'instance_id',
        'client_id',
        'started_at',
        'heartbeat_at',
        'http_url',
        'lag_ms',
        sql<number>`${NOW} - heartbeat_at`.as('age'),
      ])
      .where('heartbeat_at', '>', sql<number>`${NOW} - ${ttl}`)
      .orderBy('instance_id')
      .execute();
  }

  /** Every partition's owner while its lease runs. */
  async owners(): Promise<Array<{ partition: number; owner: string | null }>> {
    return this.db
      .selectFrom('cluster_partitions')
      .select([
        'partition',
        sql<string | null>`case when expires_at > ${NOW} then owner else null end`.as('owner'),
      ])
      .orderBy('partition')
      .execute();
  }

  /**
   * Extends the leases this member holds; `settled` partitions also record the durable watermark
   * (PostgreSQL's clock), `durableUntil` or, for those in `earlier`, their own earlier one. Returns
   * the partitions still held.
   */
  async renew(
    owner: string,
    ttl: number,
    settled: readonly number[],
    durableUntil: number,
    earlier: ReadonlyMap<number, number> = new Map(),
  ): Promise<number[]> {
    const byValue = new Map<number, number[]>();
    for (const [p, v] of earlier) (byValue.get(v) ?? byValue.set(v, []).get(v)!).push(p);
    const rest = settled.filter((p) => !earlier.has(p));
    const whens = [...byValue].map(([v, parts]) => sql`when partition in (${sql.join(parts)}) then ${v}`);
    if (rest.length > 0) whens.push(sql`when partition in (${sql.join(rest)}) then ${durableUntil}`);
    const rows = await this.db
      .updateTable('cluster_partitions')
      .set({
        expires_at: sql<number>`${NOW} + ${ttl}`,
        durable_until:
          whens.length > 0
            ? sql<number>`case ${sql.join(whens, sql` `)} else durable_until end`
            : sql<number>`durable_until`,
      })
      .where('owner', '=', owner)
      .where('expires_at', '>', NOW)
      .returning('partition')
      .execute();
    return rows.map((r) => r.partition);
  }

  /** Gives partitions back at once (a member over its share, or stopping). */
  async release(owner: string, parts: readonly number[]): Promise<void> {
    if (parts.length === 0) return;
    await this.db
      .updateTable('cluster_partitions')
      .set({ owner: null, prev_owner: owner, expires_at: 0 })
      .where('owner', '=', owner)
      .where('partition', 'in', parts)
      .execute();
  }

  /**
   * Claims up to `k` partitions that are free or whose lease ran out; rows another member is claiming
   * are skipped. Only while this member's row of `session` is in PostgreSQL (ADR 0168): a claim
   * that reaches PostgreSQL after the member left (a renewal that hung past stop) claims nothing.
   * The row is locked for share, so a concurrent leave() waits for this claim and then gives back
   * what it claimed.
   */
  async claim(owner: string, ttl: number, k: number, session: string): Promise<Claimed[]> {
    if (k <= 0) return [];
    const r = await sql<{ partition: number; prev_owner: string | null; durable_until: number }>`
      update cluster_partitions p
         set owner = ${owner}, prev_owner = coalesce(p.owner, p.prev_owner), expires_at = ${NOW} + ${ttl}
        from (select partition from cluster_partitions
               where (owner is null or expires_at <= ${NOW})
                 and exists (select 1 from cluster_members
                              where instance_id = ${owner} and session = ${session} for share)
               order by partition limit ${k}
               for update skip locked) c
       where p.partition = c.partition
      returning p.partition, p.prev_owner, p.durable_until`.execute(this.db);
    return r.rows.map((x) => ({
      partition: Number(x.partition),
      prevOwner: x.prev_owner,
      durableUntil: Number(x.durable_until),
    }));
  }

  /** Takes or keeps the leader lease; true while this member holds it. */
  async lead(owner: string, ttl: number): Promise<boolean> {
    const rows = await this.db
      .updateTable('cluster_leader')
      .set({ owner, expires_at: sql<number>`${NOW} + ${ttl}` })
      .where('name', '=', 'leader')
      .where((eb) => eb.or([eb('owner', '=', owner), eb('owner', 'is', null), eb('expires_at', '<=', NOW)]))
      .returning('owner')
      .execute();
    return rows.length > 0;
  }

  async resign(owner: string): Promise<void> {
    await this.db
      .updateTable('cluster_leader')
      .set({ owner: null, expires_at: 0 })
      .where('name', '=', 'leader')
      .where('owner', '=', owner)
      .execute();
  }
}
