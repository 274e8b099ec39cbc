import type { Generated } from 'kysely';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EPOCH_MS, FLAG, idColumn } from '../../gateway/src/storage/sql/columns.js';
import type { SharedMigration } from '../../gateway/src/storage/sql/migrations.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

// One small store, written once, run against both dialects: what every shared store relies on.
// A type alias, not an interface: Kysely's table maps need an index signature.
type NoteTables = {
  note: { id: Generated<number>; body: string; at: number; done: Generated<number> };
  note_tag: { name: string; uses: number };
};

const STEPS: SharedMigration[] = [
  {
    name: 'test-0001-note',
    up: async (db, dialect) => {
      await idColumn(db.schema.createTable('note'), dialect)
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('at', EPOCH_MS, (c) => c.notNull())
        .addColumn('done', FLAG, (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  {
    name: 'test-0002-tag',
    up: async (db) => {
      await db.schema
        .createTable('note_tag')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('uses', 'integer', (c) => c.notNull())
        .execute();
    },
  },
];

const log = pino({ level: 'silent' });

async function exercise(shared: SharedDb): Promise<void> {
  const db = shared.db.withTables<NoteTables>();
  const at = Date.UTC(2026, 11, 6, 12, 0, 0, 123);
  const a = await db
    .insertInto('note')
    .values({ body: 'first', at })
    .returning('id')
    .executeTakeFirstOrThrow();
  const b = await db
    .insertInto('note')
    .values({ body: 'second', at: at + 1 })
    .returning('id')
    .executeTakeFirstOrThrow();
  expect(b.id).toBeGreaterThan(a.id);
  const rows = await db.selectFrom('note').selectAll().orderBy('id').execute();
  // Epoch milliseconds come back as numbers in both dialects (pg's int8 parser, dialect.ts).
  expect(rows.map((r) => [r.body, r.at, r.done])).toEqual([
    ['first', at, 0],
    ['second', at + 1, 0],
  ]);
  for (let i = 0; i < 3; i++)
    await db
      .insertInto('note_tag')
      .values({ name: 'pump', uses: 1 })
      .onConflict((oc) => oc.column('name').doUpdateSet((eb) => ({ uses: eb('note_tag.uses', '+', 1) })))
      .execute();
  expect(await db.selectFrom('note_tag').selectAll().execute()).toEqual([{ name: 'pump', uses: 3 }]);
}

describe('shared state store: one query builder, two databases', () => {
  let pg: Postgres;
  const dirs: string[] = [];
  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);
  afterAll(async () => {
    await pg?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('runs the same migrations and queries on SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fgw-shared-'));
    dirs.push(dir);
    const shared = new SharedDb({ dataDir: dir, log }, STEPS);
    await shared.start();
    expect(shared.dialect).toBe('sqlite');
    await exercise(shared);
    await shared.stop();
    // Started again: nothing left to apply, the rows are still there.
    const again = new SharedDb({ dataDir: dir, log }, STEPS);
    await again.start();
    expect(await again.db.withTables<NoteTables>().selectFrom('note').select('body').execute()).toHaveLength(
      2,
    );
    await again.stop();
  });

  it('runs the same migrations and queries on PostgreSQL', async () => {
    const url = await pg.createDatabase('same_queries');
    const shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, STEPS);
    await shared.start();
    expect(shared.dialect).toBe('postgres');
    await exercise(shared);
    expect(shared.health()).toMatchObject({ state: 'ok', dialect: 'postgres' });
    expect(JSON.stringify(shared.health())).not.toContain('password');
    await shared.stop();
  });

  it('three instances starting at once apply each migration exactly once', async () => {
    const url = await pg.createDatabase('concurrent_start');
    const instances = [0, 1, 2].map(
      () => new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, STEPS),
    );
    await Promise.all(instances.map((s) => s.start()));
    const db = instances[0]!.db.withTables<{ kysely_migration: { name: string } }>();
    const applied = await db.selectFrom('kysely_migration').select('name').orderBy('name').execute();
    expect(applied.map((r) => r.name)).toEqual(['test-0001-note', 'test-0002-tag']);
    await Promise.all(instances.map((s) => s.stop()));
  });

  it('a failing migration stops the start with its name', async () => {
    const url = await pg.createDatabase('failing_step');
    const bad: SharedMigration = {
      name: 'test-0003-broken',
      up: async (db) => {
        await db.schema.createTable('note').addColumn('x', 'text').execute(); // exists already
      },
    };
    const shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, [...STEPS, bad]);
    await expect(shared.start()).rejects.toThrow(/test-0003-broken/);
    await shared.stop();
  });

  it('health shows a PostgreSQL outage and recovers by itself', async () => {
    const url = await pg.createDatabase('outage');
    const shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log, pingMs: 200 }, STEPS);
    await shared.start();
    await pg.kill();
    await expect.poll(() => shared.health().state, { timeout: 10_000 }).toBe('down');
    await pg.start();
    await expect.poll(() => shared.health().state, { timeout: 20_000 }).toBe('ok');
    await exercise(shared);
    await shared.stop();
  }, 60_000);
});
