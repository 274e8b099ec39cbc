import type Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { OutboxConfig } from '../config/schema.js';
import { openDb, type Db, type Migration } from './db.js';

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE chunk (id INTEGER PRIMARY KEY, lines INTEGER NOT NULL, bytes INTEGER NOT NULL, body TEXT NOT NULL);
      CREATE TABLE parked (id INTEGER PRIMARY KEY, parked_at INTEGER NOT NULL, reason TEXT NOT NULL,
                           lines INTEGER NOT NULL, body TEXT NOT NULL);
      CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
];

export interface OutboxBatch {
  /** Rows [firstId, lastId] in order. */
  firstId: number;
  lastId: number;
  lines: number;
  body: string;
}

export interface OutboxStats {
  pendingLines: number;
  pendingBytes: number;
  parkedBatches: number;
  committedLines: number;
  droppedLines: number;
  commits: number;
}

/**
 * Durable store-and-forward for line protocol. Appends gather in memory and are written in one
 * transaction per commit interval (group commit); callbacks registered with `afterCommit` run once
 * what was appended before them is on disk, which is when MQTT messages are acknowledged.
 * State rows (e.g. each meter's last index) are written in the same transaction, so derived
 * values and the lines they produced are durable together.
 */
export class Outbox implements Component {
  readonly name = 'outbox';
  private db?: Db;
  private buf: string[] = [];
  private bufLines = 0;
  private bufBytes = 0;
  private callbacks: Array<() => void> = [];
  private stateWrites = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private pendingLines = 0;
  private pendingBytes = 0;
  private committedLines = 0;
  private droppedLines = 0;
  private commits = 0;
  private parkedBatches = 0;
  private lastError?: string;
  private readonly dataListeners = new Set<() => void>();
  private readonly drainListeners = new Set<() => void>();
  private stmt?: {
    insert: Database.Statement;
    readFrom: Database.Statement;
    readBodies: Database.Statement;
    deleteUpTo: Database.Statement;
    putState: Database.Statement;
  };

  constructor(
    private readonly cfg: OutboxConfig,
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const db = openDb(join(this.dataDir, 'outbox.db'), MIGRATIONS, this.cfg.synchronous);
    this.db = db;
    this.stmt = {
      insert: db.prepare('INSERT INTO chunk (lines, bytes, body) VALUES (?, ?, ?)'),
      readFrom: db.prepare('SELECT id, lines FROM chunk WHERE id >= ? ORDER BY id LIMIT ?'),
      readBodies: db.prepare('SELECT body FROM chunk WHERE id BETWEEN ? AND ? ORDER BY id').pluck(),
      deleteUpTo: db.prepare('DELETE FROM chunk WHERE id <= ?'),
      putState: db.prepare(
        'INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
    };
    const row = db
      .prepare('SELECT COALESCE(SUM(lines),0) AS l, COALESCE(SUM(bytes),0) AS b FROM chunk')
      .get() as {
      l: number;
      b: number;
    };
    this.pendingLines = row.l;
    this.pendingBytes = row.b;
    this.parkedBatches = (db.prepare('SELECT COUNT(*) AS n FROM parked').get() as { n: number }).n;
    if (this.pendingLines)
      this.log.info({ pendingLines: this.pendingLines }, 'outbox holds readings from before the restart');
  }

  /** Loads every state row whose key starts with the prefix (used at start-up by stateful stages). */
  loadState(prefix: string): Map<string, string> {
    const rows = this.requireDb()
      .prepare('SELECT key, value FROM state WHERE key >= ? AND key < ?')
      .all(prefix, prefix + '\uffff') as Array<{ key: string; value: string }>;
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  /** Writes a state row with the next commit. */
  putState(key: string, value: string): void {
    this.stateWrites.set(key, value);
    this.schedule();
  }

  /** Adds one line-protocol line (with its trailing newline) to the next commit. */
  append(line: string): void {
    this.buf.push(line);
    this.bufLines++;
    this.bufBytes += line.length;
    this.schedule();
  }

  /** Runs `cb` once everything appended so far is durable (or right after the next commit). */
  afterCommit(cb: () => void): void {
    this.callbacks.push(cb);
    this.schedule();
  }

  /** True while the disk budget is used up and the policy is to stop acknowledging. */
  isFull(): boolean {
    return this.cfg.whenFull === 'stop-acking' && this.pendingBytes + this.bufBytes >= this.cfg.maxBytes;
  }

  onData(fn: () => void): () => void {
    this.dataListeners.add(fn);
    return () => this.dataListeners.delete(fn);
  }

  /** Called when the store drops below its bound again (sources resume reading). */
  onDrain(fn: () => void): () => void {
    this.drainListeners.add(fn);
    return () => this.drainListeners.delete(fn);
  }

  private schedule(): void {
    if (this.timer || !this.db) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.commit();
    }, this.cfg.commitIntervalMs);
  }

  /** Writes everything gathered so far in one transaction. Safe to call at any time. */
  commit(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const db = this.db;
    const stmt = this.stmt;
    if (!db || !stmt) return;
    if (this.bufLines === 0 && this.stateWrites.size === 0 && this.callbacks.length === 0) return;
    const lines = this.bufLines;
    const bytes = this.bufBytes;
    const body = lines ? this.buf.join('') : '';
    const states = this.stateWrites;
    const callbacks = this.callbacks;
    this.buf = [];
    this.bufLines = 0;
    this.bufBytes = 0;
    this.stateWrites = new Map();
    this.callbacks = [];
    try {
      db.transaction(() => {
        if (lines) stmt.insert.run(lines, bytes, body);
        for (const [k, v] of states) stmt.putState.run(k, v);
      })();
    } catch (err) {
      // The disk refused (full, read-only...). Nothing is acknowledged; keep the data in memory
      // and try again, so the broker still holds every message we have not confirmed.
      this.lastError = (err as Error).message;
      this.log.error({ err }, 'outbox commit failed; retrying');
      this.buf.unshift(body);
      this.bufLines += lines;
      this.bufBytes += bytes;
      for (const [k, v] of states) if (!this.stateWrites.has(k)) this.stateWrites.set(k, v);
      this.callbacks.unshift(...callbacks);
      setTimeout(() => this.schedule(), 1000);
      return;
    }
    this.lastError = undefined;
    this.commits++;
    this.committedLines += lines;
    this.pendingLines += lines;
    this.pendingBytes += bytes;
    if (this.cfg.whenFull === 'drop-oldest' && this.pendingBytes > this.cfg.maxBytes) this.dropOldest();
    for (const cb of callbacks) cb();
    if (lines) for (const fn of this.dataListeners) fn();
  }

  private dropOldest(): void {
    const db = this.requireDb();
    while (this.pendingBytes > this.cfg.maxBytes) {
      const row = db.prepare('SELECT id, lines, bytes FROM chunk ORDER BY id LIMIT 1').get() as
        { id: number; lines: number; bytes: number } | undefined;
      if (!row) break;
      db.prepare('DELETE FROM chunk WHERE id = ?').run(row.id);
      this.pendingLines -= row.lines;
      this.pendingBytes -= row.bytes;
      this.droppedLines += row.lines;
      this.log.warn({ lines: row.lines }, 'outbox full: dropped the oldest readings (policy drop-oldest)');
    }
  }

  /** The oldest committed rows, concatenated, up to about `maxLines` lines (at least one row). */
  read(maxLines: number, afterId = 0): OutboxBatch | null {
    const stmt = this.stmt;
    if (!stmt) return null;
    // Pick the range by line counts first, then fetch only the bodies that go out.
    const rows = stmt.readFrom.all(afterId + 1, 1024) as Array<{ id: number; lines: number }>;
    if (!rows.length) return null;
    let lines = 0;
    let lastId = rows[0]!.id;
    for (const r of rows) {
      if (lines > 0 && lines + r.lines > maxLines) break;
      lines += r.lines;
      lastId = r.id;
    }
    const parts = stmt.readBodies.all(rows[0]!.id, lastId) as string[];
    return { firstId: rows[0]!.id, lastId, lines, body: parts.join('') };
  }

  /** Removes rows up to and including `lastId`: they are confirmed by the database. */
  remove(batch: OutboxBatch): void {
    this.removeRows(batch);
  }

  /** Moves a batch the server will never accept aside, with its reason, so the rest flows on. */
  park(batch: OutboxBatch, reason: string): void {
    const db = this.requireDb();
    db.transaction(() => {
      db.prepare('INSERT INTO parked (parked_at, reason, lines, body) VALUES (?, ?, ?, ?)').run(
        Date.now(),
        reason.slice(0, 4000),
        batch.lines,
        batch.body,
      );
      this.removeRows(batch);
    })();
    this.parkedBatches++;
  }

  listParked(limit = 100): Array<{ id: number; parkedAt: number; reason: string; lines: number }> {
    return (
      this.requireDb()
        .prepare('SELECT id, parked_at, reason, lines FROM parked ORDER BY id DESC LIMIT ?')
        .all(limit) as Array<{ id: number; parked_at: number; reason: string; lines: number }>
    ).map((r) => ({ id: r.id, parkedAt: r.parked_at, reason: r.reason, lines: r.lines }));
  }

  private removeRows(batch: OutboxBatch): void {
    const stmt = this.stmt!;
    const wasFull = this.isFull();
    // Subtract the exact sizes of the rows removed.
    const sizes = this.requireDb()
      .prepare('SELECT COALESCE(SUM(lines),0) AS l, COALESCE(SUM(bytes),0) AS b FROM chunk WHERE id <= ?')
      .get(batch.lastId) as { l: number; b: number };
    stmt.deleteUpTo.run(batch.lastId);
    this.pendingLines -= sizes.l;
    this.pendingBytes -= sizes.b;
    if (wasFull && !this.isFull()) for (const fn of this.drainListeners) fn();
  }

  stats(): OutboxStats {
    return {
      pendingLines: this.pendingLines + this.bufLines,
      pendingBytes: this.pendingBytes + this.bufBytes,
      parkedBatches: this.parkedBatches,
      committedLines: this.committedLines,
      droppedLines: this.droppedLines,
      commits: this.commits,
    };
  }

  health(): ComponentHealth {
    if (!this.db) return { state: 'stopped' };
    const s = this.stats();
    if (this.lastError) return { state: 'down', detail: `commit failing: ${this.lastError}`, ...s };
    if (this.isFull()) return { state: 'degraded', detail: 'disk budget used up: not acknowledging', ...s };
    return { state: 'ok', ...s };
  }

  async stop(): Promise<void> {
    if (!this.db) return;
    this.commit();
    this.db.close();
    this.db = undefined;
    this.stmt = undefined;
  }

  private requireDb(): Db {
    if (!this.db) throw new Error('outbox not started');
    return this.db;
  }
}
