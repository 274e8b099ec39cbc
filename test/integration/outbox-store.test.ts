import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { outboxSchema } from '../../gateway/src/config/schema.js';
import { Outbox, type OutboxBatch } from '../../gateway/src/storage/outbox.js';
import { waitFor } from '../fixtures/ports.js';

// The outbox on a real SQLite file: what InfluxDB confirmed leaves the counts at once and is
// never handed out again, and its rows are gone from the file once the next commit ran.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(commitThread: boolean): Promise<{ outbox: Outbox; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fgw-outbox-'));
  dirs.push(dir);
  const outbox = new Outbox(outboxSchema.parse({ commitThread }), dir, pino({ level: 'silent' }));
  await outbox.start();
  return { outbox, dir };
}

/** Appends `n` lines in `commits` separate commits (one chunk row each). */
async function fill(outbox: Outbox, commits: number, n: number): Promise<void> {
  for (let c = 0; c < commits; c++) {
    for (let i = 0; i < n; i++) outbox.append(`m,device=d${i},site=s v=${c} ${1767225600000 + c}\n`);
    await outbox.flush();
  }
}

const text = (b: OutboxBatch): string => Buffer.concat(b.parts).toString('utf8');

const rowsInFile = (dir: string): number[] => {
  const db = new Database(join(dir, 'outbox.db'), { readonly: true });
  try {
    return (db.prepare('SELECT id FROM chunk ORDER BY id').pluck().all() as number[]).slice();
  } finally {
    db.close();
  }
};

describe('outbox at its bound with drop-oldest', () => {
  it('counts each row once when the oldest are dropped while InfluxDB takes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fgw-outbox-'));
    dirs.push(dir);
    const cfg = outboxSchema.parse({ maxBytes: 1024 * 1024, whenFull: 'drop-oldest' });
    const outbox = new Outbox(cfg, dir, pino({ level: 'silent' }));
    await outbox.start();
    const line = (c: number, i: number) =>
      `m,device=d${i},site=s v=${'9'.repeat(180)} ${1767225600000 + c}\n`;
    const commitOf = async (c: number) => {
      for (let i = 0; i < 1000; i++) outbox.append(line(c, i));
      await outbox.flush();
    };
    for (let c = 0; c < 4; c++) await commitOf(c); // about 0.8 MB
    const claimed = outbox.read(1000)!; // the oldest commit, as the writer takes it
    for (let c = 4; c < 8; c++) await commitOf(c); // past 1 MB: the oldest rows are dropped
    expect(outbox.stats().droppedLines).toBeGreaterThan(0);
    outbox.remove(claimed); // InfluxDB confirmed the batch after all
    await outbox.flush();
    const db = new Database(join(dir, 'outbox.db'), { readonly: true });
    const onDisk = db
      .prepare('SELECT COALESCE(SUM(lines), 0) AS l, COALESCE(SUM(bytes), 0) AS b FROM chunk')
      .get() as {
      l: number;
      b: number;
    };
    db.close();
    expect(outbox.stats()).toMatchObject({ pendingLines: onDisk.l, pendingBytes: onDisk.b });
    await outbox.stop();
  });
});

describe('outbox commit thread', () => {
  it('loses nothing when the thread dies in the middle of a commit: it is committed again here', async () => {
    const { outbox, dir } = await open(true);
    // Another connection holds the write lock, so the thread cannot commit before it is
    // terminated: that commit never reaches the disk.
    const locker = new Database(join(dir, 'outbox.db'));
    locker.exec('BEGIN IMMEDIATE');
    outbox.append('m,site=s v=1 1000\n');
    outbox.append('m,site=s v=2 2000\n');
    let acked = false;
    outbox.afterCommit(() => (acked = true));
    outbox.commit();
    await (outbox as unknown as { worker: Worker }).worker.terminate();
    expect(acked).toBe(false);
    locker.exec('COMMIT');
    locker.close();
    await outbox.flush();
    expect(acked).toBe(true);
    const b = outbox.read(10)!;
    expect(text(b)).toBe('m,site=s v=1 1000\nm,site=s v=2 2000\n');
    expect(b.lines).toBe(2);
    // Later commits run on the main thread.
    outbox.append('m,site=s v=3 3000\n');
    await outbox.flush();
    expect(text(outbox.read(10, b.lastId)!)).toBe('m,site=s v=3 3000\n');
    await outbox.stop();
  });
});

describe.each([true, false])('outbox (commit thread %s)', (commitThread) => {
  it('drops confirmed rows from the counts at once, never reads them again, and deletes them on disk', async () => {
    const { outbox, dir } = await open(commitThread);
    await fill(outbox, 4, 10);
    expect(outbox.stats().pendingLines).toBe(40);

    const first = outbox.read(20)!;
    expect(first.lines).toBe(20);
    expect(first.bytes).toBe(text(first).length);
    outbox.remove(first);
    expect(outbox.stats().pendingLines).toBe(20);
    // Every line has the same length, so the two chunks left weigh what the two removed did.
    expect(outbox.stats().pendingBytes).toBe(first.bytes);

    // Read from the start again (as the writer does with nothing in flight): the confirmed rows
    // are skipped whether or not their delete has reached the disk yet.
    const next = outbox.read(100)!;
    expect(next.firstId).toBeGreaterThan(first.lastId);
    expect(next.lines).toBe(20);
    expect(text(next)).not.toContain(' 1767225600000\n');
    expect(text(next)).not.toContain(' 1767225600001\n');
    outbox.remove(next);
    expect(outbox.read(100)).toBeNull();
    expect(outbox.stats()).toMatchObject({ pendingLines: 0, pendingBytes: 0 });

    await outbox.flush();
    expect(rowsInFile(dir)).toEqual([]);
    await outbox.stop();
  });

  it('keeps a batch one range of rows: it ends where rows already confirmed begin', async () => {
    const { outbox } = await open(commitThread);
    await fill(outbox, 3, 10);
    const a = outbox.read(10)!; // the first row
    const b = outbox.read(10, a.lastId)!; // the second
    outbox.remove(b);
    // Extending a batch that ends before a confirmed row (its delete still to be committed) gives
    // nothing; a fresh read skips it. Without a commit thread the row is already gone.
    if (commitThread) expect(outbox.read(10, a.lastId, true)).toBeNull();
    else expect(outbox.read(10, a.lastId, true)!.firstId).toBeGreaterThan(b.lastId);
    const c = outbox.read(10, a.lastId)!;
    expect(c.firstId).toBeGreaterThan(b.lastId);
    expect(outbox.stats().pendingLines).toBe(20);
    await outbox.stop();
  });

  it('keeps rows that were not confirmed across a restart, and only those', async () => {
    const { outbox, dir } = await open(commitThread);
    await fill(outbox, 3, 5);
    const b = outbox.read(5)!;
    outbox.remove(b);
    await outbox.stop();

    const again = new Outbox(outboxSchema.parse({ commitThread }), dir, pino({ level: 'silent' }));
    await again.start();
    expect(again.stats().pendingLines).toBe(10);
    const rest = again.read(100)!;
    expect(rest.firstId).toBeGreaterThan(b.lastId);
    expect(rest.lines).toBe(10);
    await again.stop();
  });

  it('writes a state object as it is when its commit is taken, and reads it back as text after a restart', async () => {
    const { outbox, dir } = await open(commitThread);
    const meter = { ts: 1, index: 10, toString: () => `${meter.ts} ${meter.index}` };
    outbox.putState('consumption:s/m1', meter);
    outbox.append('m,site=s v=1 1\n');
    meter.ts = 2; // before the commit is taken: this is what is written
    meter.index = 12;
    await outbox.flush();
    await outbox.stop();
    const again = new Outbox(outboxSchema.parse({ commitThread }), dir, pino({ level: 'silent' }));
    await again.start();
    expect(again.loadState('consumption:')).toEqual(new Map([['consumption:s/m1', '2 12']]));
    await again.stop();
  });

  it('folds the state log into a snapshot inside a commit, and a restart reads the latest state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fgw-outbox-'));
    dirs.push(dir);
    const outbox = new Outbox(outboxSchema.parse({ commitThread }), dir, pino({ level: 'silent' }), 3);
    await outbox.start();
    for (let i = 1; i <= 8; i++) {
      outbox.putState(`consumption:s/m${i % 2}`, `${i} ${i * 10}`);
      outbox.append(`m,site=s v=${i} ${i}\n`);
      await outbox.flush();
    }
    const db = new Database(join(dir, 'outbox.db'), { readonly: true });
    const logRows = db.prepare('SELECT COUNT(*) FROM state_log').pluck().get() as number;
    const snap = db.prepare('SELECT body FROM state_snapshot WHERE id = 1').pluck().get() as
      string | undefined;
    db.close();
    // 8 state writes, a snapshot after every 3 log rows: the log holds at most the rows since the last one.
    expect(snap).toBeDefined();
    expect(logRows).toBeLessThan(3);
    // Opened beside the running one, as after a crash: the snapshot plus the log rows since.
    const again = new Outbox(outboxSchema.parse({ commitThread }), dir, pino({ level: 'silent' }));
    await again.start();
    expect(again.loadState('consumption:')).toEqual(
      new Map([
        ['consumption:s/m0', '8 80'],
        ['consumption:s/m1', '7 70'],
      ]),
    );
    await again.stop();
    await outbox.stop();
  });

  it('spreads a large state over several commits and acknowledges only once all of it is on disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fgw-outbox-'));
    dirs.push(dir);
    // About two entries per commit.
    const outbox = new Outbox(outboxSchema.parse({ commitThread }), dir, pino({ level: 'silent' }), 1000, 40);
    await outbox.start();
    const keys = Array.from({ length: 7 }, (_, i) => `rules:s/d${i}`);
    for (const k of keys) outbox.putState(k, `{"v":"${'x'.repeat(12)}"}`);
    outbox.append('m,site=s v=1 1000\n');
    let onDiskAtAck: string[] = [];
    let logRowsAtAck = 0;
    outbox.afterCommit(() => {
      const db = new Database(join(dir, 'outbox.db'), { readonly: true });
      const bodies = db.prepare('SELECT body FROM state_log').pluck().all() as string[];
      db.close();
      logRowsAtAck = bodies.length;
      onDiskAtAck = bodies.flatMap((b) =>
        b
          .split('\n')
          .filter(Boolean)
          .map((l) => l.split('\t')[0]!),
      );
    });
    await outbox.flush();
    expect(logRowsAtAck).toBeGreaterThan(2);
    expect(onDiskAtAck.sort()).toEqual([...keys].sort());
    await outbox.stop();
  });

  it('checkpoints another database on its commit thread, and says when it no longer can', async () => {
    const { outbox, dir } = await open(commitThread);
    const file = join(dir, 'other.db');
    const other = new Database(file);
    other.pragma('journal_mode = WAL');
    other.pragma('wal_autocheckpoint = 0');
    other.exec('CREATE TABLE t (v TEXT)');
    const insert = other.prepare('INSERT INTO t VALUES (?)');
    for (let i = 0; i < 200; i++) insert.run('x'.repeat(1000));
    const unchecked = statSync(file).size;
    const errors: Array<[string, boolean]> = [];
    const hosted = outbox.hostCheckpoints(file, 20, (reason, lost) => errors.push([reason, lost]));
    if (!commitThread) {
      // No commit thread: the caller checkpoints on its own.
      expect(hosted).toBeUndefined();
    } else {
      // The WAL's pages reach the database file.
      await waitFor(() => statSync(file).size > unchecked + 100_000, 10_000, 'checkpointed');
      await hosted!.stop();
      expect(errors).toEqual([]);
      expect(outbox.hostCheckpoints(file, 20, (reason, lost) => errors.push([reason, lost]))).toBeDefined();
    }
    await outbox.stop();
    if (commitThread) expect(errors).toEqual([['the outbox stopped', true]]);
    other.close();
  });

  it('puts the lines of a refused commit back in front of later ones, acknowledged only once durable', async () => {
    const { outbox, dir } = await open(commitThread);
    // Another connection holds the write lock: the commit waits out busy_timeout and fails.
    const locker = new Database(join(dir, 'outbox.db'));
    locker.exec('BEGIN IMMEDIATE');
    let acked = false;
    outbox.append('m,site=s v=1 1000\n');
    outbox.appendBytes(Buffer.from('..m,site=s v=2 2000\n..'), 2, 20);
    outbox.afterCommit(() => (acked = true));
    outbox.commit();
    await waitFor(() => outbox.health().state === 'down', 15_000, 'commit refused');
    outbox.append('m,site=s v=3 3000\n');
    expect(acked).toBe(false);
    expect(outbox.stats().committedLines).toBe(0);
    locker.exec('COMMIT');
    locker.close();
    await outbox.flush();
    expect(acked).toBe(true);
    expect(outbox.health().state).toBe('ok');
    const b = outbox.read(10)!;
    expect(text(b)).toBe('m,site=s v=1 1000\nm,site=s v=2 2000\nm,site=s v=3 3000\n');
    expect(b.lines).toBe(3);
    expect(b.bytes).toBe(54);
    await outbox.stop();
  });

  it('reads rows stored as text (before bodies were stored as bytes) beside newer ones', async () => {
    const { outbox, dir } = await open(commitThread);
    await outbox.stop();
    const db = new Database(join(dir, 'outbox.db'));
    db.prepare('INSERT INTO chunk (lines, bytes, body) VALUES (?, ?, ?)').run(1, 22, 'm,site=s v=1 1000\n');
    db.close();
    const again = new Outbox(outboxSchema.parse({ commitThread }), dir, pino({ level: 'silent' }));
    await again.start();
    again.append('m,site=s v=2 2000\n');
    await again.flush();
    const b = again.read(10)!;
    expect(b.parts.every((p) => Buffer.isBuffer(p))).toBe(true);
    expect(text(b)).toBe('m,site=s v=1 1000\nm,site=s v=2 2000\n');
    expect(b.lines).toBe(2);
    await again.stop();
  });
});
