import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DeadLetterStore, StoredLetter } from './dead-letters.js';

/**
 * Dead letters kept on disk until the broker's PUBACK (ADR 0090): `dead-letters.db` in the data
 * directory, a file of its own so that neither its writes nor its lock touch the ingest outbox.
 *
 * Writes are batched: letters queued and acknowledged in one event-loop turn are written in one
 * transaction at its end (a letter acknowledged in the turn it was queued is never written).
 * WAL with synchronous=NORMAL: a commit appends to the WAL without an fsync, which survives a
 * process crash or SIGKILL (what this is for); a power cut may lose the last letters. Only rejected
 * messages come here: the path of a good reading never touches this file.
 */
export class SqliteDeadLetterStore implements DeadLetterStore {
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;
  private readonly del: Database.Statement;
  private nextKey: number;
  private adds = new Map<number, { topic: string; payload: Buffer }>();
  private removes: number[] = [];
  private scheduled = false;
  /** Batches that could not be written (the letters stay in memory and are still sent). */
  errors = 0;

  constructor(
    readonly file: string,
    private readonly onError: (err: unknown) => void = () => {},
  ) {
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS dead_letters (
         id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, queued_at INTEGER NOT NULL
       )`,
    );
    this.insert = this.db.prepare(
      'INSERT INTO dead_letters (id, topic, payload, queued_at) VALUES (?, ?, ?, ?)',
    );
    this.del = this.db.prepare('DELETE FROM dead_letters WHERE id = ?');
    const r = this.db.prepare('SELECT COALESCE(MAX(id), 0) + 1 AS n FROM dead_letters').get() as {
      n: number;
    };
    this.nextKey = r.n;
  }

  load(): StoredLetter[] {
    return this.db.prepare('SELECT id, topic, payload FROM dead_letters ORDER BY id').all() as StoredLetter[];
  }

  add(topic: string, payload: Buffer): number {
    const key = this.nextKey++;
    this.adds.set(key, { topic, payload });
    this.schedule();
    return key;
  }

  remove(key: number): void {
    // Queued and acknowledged (or dropped) within one turn: nothing to write either way.
    if (this.adds.delete(key)) return;
    this.removes.push(key);
    this.schedule();
  }

  /** Writes what the current turn queued and acknowledged, in one transaction. */
  flush(): void {
    this.scheduled = false;
    if (this.adds.size === 0 && this.removes.length === 0) return;
    const adds = this.adds;
    const removes = this.removes;
    this.adds = new Map();
    this.removes = [];
    if (!this.db.open) return;
    try {
      const now = Date.now();
      this.db.transaction(() => {
        for (const [key, l] of adds) this.insert.run(key, l.topic, l.payload, now);
        for (const key of removes) this.del.run(key);
      })();
    } catch (err) {
      this.errors++;
      this.onError(err);
    }
  }

  close(): void {
    this.flush();
    if (this.db.open) this.db.close();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }
}
