import type { Generated, Kysely, Selectable, Transaction } from 'kysely';

/** What operators can change at runtime; each is a set of rows keyed within the entity. */
export const FLEET_ENTITIES = [
  'rule-override',
  'device',
  'contact',
  'on-call',
  'schedule',
  'pm-occurrence',
  'channel',
] as const;
export type FleetEntity = (typeof FLEET_ENTITIES)[number];

// A type alias, not an interface: Kysely's table maps need an index signature.
type FleetTables = {
  fleet_setting: { entity: string; key: string; value: string; updated_at: number; updated_by: string };
  fleet_change: {
    id: Generated<number>;
    at: number;
    actor: string;
    entity: string;
    key: string;
    before: string | null;
    after: string | null;
    note: string | null;
  };
  // A channel's secrets, sealed (fleet/secret-box.ts): beside its setting, never in fleet_change.
  fleet_secret: { entity: string; key: string; sealed: string; updated_at: number };
};

export interface FleetSetting {
  entity: FleetEntity;
  key: string;
  value: unknown;
  updatedAt: number;
  updatedBy: string;
}

export interface FleetChange {
  id: number;
  at: number;
  actor: string;
  entity: FleetEntity;
  key: string;
  /** null: the setting did not exist before (created) / does not exist after (removed). */
  before: unknown;
  after: unknown;
  note: string | null;
}

/**
 * The runtime configuration's rows in the shared store, written once for SQLite and PostgreSQL:
 * each write changes the setting and appends its history row in one transaction, so the history
 * never misses a change and never holds one that did not happen.
 */
export class FleetStore {
  private readonly db: Kysely<FleetTables>;

  constructor(db: Kysely<object>) {
    this.db = db.withTables<FleetTables>();
  }

  async list(entity?: FleetEntity): Promise<FleetSetting[]> {
    let q = this.db.selectFrom('fleet_setting').selectAll();
    if (entity !== undefined) q = q.where('entity', '=', entity);
    const rows = await q.orderBy('entity').orderBy('key').execute();
    return rows.map((r) => ({
      entity: r.entity as FleetEntity,
      key: r.key,
      value: JSON.parse(r.value) as unknown,
      updatedAt: r.updated_at,
      updatedBy: r.updated_by,
    }));
  }

  /**
   * Sets (value) or removes (null) one setting and records the change. Returns the change, or
   * undefined when the value is the one already stored (nothing recorded).
   */
  async put(
    entity: FleetEntity,
    key: string,
    value: unknown,
    actor: string,
    note: string | null = null,
    at = Date.now(),
  ): Promise<FleetChange | undefined> {
    return this.db.transaction().execute((tx) => write(tx, { entity, key, value, actor, note, at }));
  }

  /** Several settings in one transaction (a CSV import): all recorded, or none. */
  async putMany(
    entity: FleetEntity,
    rows: ReadonlyArray<{ key: string; value: unknown }>,
    actor: string,
    note: string | null = null,
    at = Date.now(),
  ): Promise<FleetChange[]> {
    return this.db.transaction().execute(async (tx) => {
      const out: FleetChange[] = [];
      for (const { key, value } of rows) {
        const change = await write(tx, { entity, key, value, actor, note, at });
        if (change) out.push(change);
      }
      return out;
    });
  }

  /**
   * Like put, with the setting's secrets written in the same transaction but outside the history:
   * `sealed` undefined leaves them as they are, null removes them. The change is recorded when the
   * setting changed; a new secret alone is recorded through the setting's `secretsRev`.
   */
  async putWithSecrets(
    entity: FleetEntity,
    key: string,
    value: unknown,
    sealed: string | null | undefined,
    actor: string,
    note: string | null = null,
    at = Date.now(),
  ): Promise<FleetChange | undefined> {
    return this.db.transaction().execute(async (tx) => {
      const change = await write(tx, { entity, key, value, actor, note, at });
      if (sealed === null || value === null)
        await tx.deleteFrom('fleet_secret').where('entity', '=', entity).where('key', '=', key).execute();
      else if (sealed !== undefined)
        await tx
          .insertInto('fleet_secret')
          .values({ entity, key, sealed, updated_at: at })
          .onConflict((oc) => oc.columns(['entity', 'key']).doUpdateSet({ sealed, updated_at: at }))
          .execute();
      return change;
    });
  }

  /** The sealed secrets of an entity's settings, by key. */
  async secrets(entity: FleetEntity): Promise<Map<string, string>> {
    const rows = await this.db
      .selectFrom('fleet_secret')
      .select(['key', 'sealed'])
      .where('entity', '=', entity)
      .execute();
    return new Map(rows.map((r) => [r.key, r.sealed]));
  }

  async history(f: { entity?: FleetEntity; key?: string; limit?: number } = {}): Promise<FleetChange[]> {
    let q = this.db.selectFrom('fleet_change').selectAll();
    if (f.entity !== undefined) q = q.where('entity', '=', f.entity);
    if (f.key !== undefined) q = q.where('key', '=', f.key);
    const rows = await q
      .orderBy('id', 'desc')
      .limit(f.limit ?? 100)
      .execute();
    return rows.map(toChange);
  }

  async change(id: number): Promise<FleetChange | undefined> {
    const r = await this.db.selectFrom('fleet_change').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toChange(r) : undefined;
  }

  /** The newest change's id (0: none): another instance of a cluster changed something if it moved. */
  async lastChangeId(): Promise<number> {
    const r = await this.db
      .selectFrom('fleet_change')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(r?.id ?? 0);
  }
}

function parse(v: string | null): unknown {
  return v === null ? null : (JSON.parse(v) as unknown);
}

function toChange(r: Selectable<FleetTables['fleet_change']>): FleetChange {
  return {
    id: r.id,
    at: r.at,
    actor: r.actor,
    entity: r.entity as FleetEntity,
    key: r.key,
    before: parse(r.before),
    after: parse(r.after),
    note: r.note,
  };
}

/**
 * One setting written (or removed, value null) with its change record, inside the caller's
 * transaction; undefined when the stored value is already this one.
 */
async function write(
  tx: Transaction<FleetTables>,
  c: { entity: FleetEntity; key: string; value: unknown; actor: string; note: string | null; at: number },
): Promise<FleetChange | undefined> {
  const { entity, key, actor, note, at } = c;
  const cur = await tx
    .selectFrom('fleet_setting')
    .select('value')
    .where('entity', '=', entity)
    .where('key', '=', key)
    .executeTakeFirst();
  const before = cur?.value ?? null;
  const after = c.value === null ? null : JSON.stringify(c.value);
  if (before === after) return undefined;
  if (after === null)
    await tx.deleteFrom('fleet_setting').where('entity', '=', entity).where('key', '=', key).execute();
  else
    await tx
      .insertInto('fleet_setting')
      .values({ entity, key, value: after, updated_at: at, updated_by: actor })
      .onConflict((oc) =>
        oc.columns(['entity', 'key']).doUpdateSet({ value: after, updated_at: at, updated_by: actor }),
      )
      .execute();
  const row = await tx
    .insertInto('fleet_change')
    .values({ at, actor, entity, key, before, after, note })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { id: row.id, at, actor, entity, key, before: parse(before), after: parse(after), note };
}
