import type Database from 'better-sqlite3';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { OutboxConfig } from '../config/schema.js';
import { openDb, type Db, type Migration } from './db.js';
import type { StateValue } from '../ingest/derive.js';

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE chunk (id INTEGER PRIMARY KEY AUTOINCREMENT, lines INTEGER NOT NULL, bytes INTEGER NOT NULL, body TEXT NOT NULL);
      CREATE TABLE parked (id INTEGER PRIMARY KEY, parked_at INTEGER NOT NULL, reason TEXT NOT NULL,
                           lines INTEGER NOT NULL, body TEXT NOT NULL);
      -- Per-device state (e.g. each meter's last index) as a log of changed entries, one row per
      -- commit, compacted now and then into a single snapshot row: one insert per commit instead
      -- of one upsert per changed device.
      CREATE TABLE state_log (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
      CREATE TABLE state_snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), log_id INTEGER NOT NULL, body TEXT NOT NULL);
    `,
  },
];

interface InFlightCommit {
  seq: number;
  lines: number;
  /** The body's length in bytes. */
  bytes: number;
  /**
   * The lines as UTF-8 bytes, in a buffer from the pool. It stays on this thread until the commit
   * is durable: the commit thread gets a copy in a second pool buffer, transferred there and back,
   * so a commit allocates nothing outside the heap once warm, and a thread that dies mid-commit
   * loses nothing.
   */
  body: Buffer;
  stateBody: string;
  /** Row ranges [first, last, first, last, ...] InfluxDB confirmed, deleted in this transaction. */
  deletes: number[];
  /** `stateBody` holds every state entry: it replaces the snapshot and the log folds into it. */
  snapshot: boolean;
  callbacks: Array<() => void>;
}

/** The commit thread hands the body's buffer back for the next commit. */
type WorkerReply =
  | { type: 'committed'; seq: number; buf?: ArrayBuffer }
  | { type: 'failed'; seq: number; error: string; buf?: ArrayBuffer }
  | { type: 'closed' }
  | { type: 'checkpoint-error'; file: string; error: string }
  | { type: 'checkpoint-stopped'; file: string };

/** Another database whose WAL the commit thread checkpoints (hostCheckpoints). */
interface HostedCheckpoint {
  onError: (reason: string, lost: boolean) => void;
  stopped?: () => void;
}

/** Checkpoints of a database run on another component's thread (`Outbox.hostCheckpoints`). */
export interface CheckpointHost {
  hostCheckpoints(
    file: string,
    intervalMs: number,
    onError: (reason: string, lost: boolean) => void,
  ): { stop(): Promise<void> } | undefined;
}

/** How long a failed commit waits before the next attempt. */
const COMMIT_RETRY_MS = 1000;

/** One group commit's transaction (the commit thread runs the same statements). */
type CommitFn = (
  lines: number,
  bytes: number,
  body: Buffer,
  stateBody: string,
  deletes: number[],
  snapshot: boolean,
) => void;

/** Body buffers kept for reuse, and the largest kept (one huge commit must not pin its memory). */
const POOL_BUFFERS = 3;
const POOL_MAX_BYTES = 4 * 1024 * 1024;
const POOL_MIN_BYTES = 256 * 1024;

/** State log rows after which the log is folded into the snapshot. */
const STATE_LOG_COMPACT_ROWS = 5000;
/**
 * State characters one commit carries at most (beyond one entry); the rest goes with the next
 * commits, and the acknowledgements wait for the last of them. Without a bound, the first commit
 * after 10,000 new devices carried all their state at once (about 35 MB of JSON, built, joined and
 * copied to the commit thread): about 80 MB of peak RSS (ADR 0080).
 */
const STATE_CHARS_PER_COMMIT = 512 * 1024;

/**
 * A full snapshot replaces the last one and takes in the log rows written so far, inside the
 * commit whose lines it matches (the commit thread runs the same statements).
 */
export const STATE_SNAPSHOT_SQL =
  'INSERT INTO state_snapshot (id, log_id, body) VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM state_log), ?) ' +
  'ON CONFLICT(id) DO UPDATE SET log_id = excluded.log_id, body = excluded.body';
export const STATE_FOLD_SQL =
  'DELETE FROM state_log WHERE id <= (SELECT log_id FROM state_snapshot WHERE id = 1)';

function parseState(body: string, into: Map<string, StateValue>): void {
  let start = 0;
  while (start < body.length) {
    const nl = body.indexOf('\n', start);
    const end = nl < 0 ? body.length : nl;
    const tab = body.indexOf('\t', start);
    if (tab > start && tab < end) into.set(body.slice(start, tab), body.slice(tab + 1, end));
    start = end + 1;
  }
}

export interface OutboxBatch {
  /** Rows [firstId, lastId] in order. */
  firstId: number;
  lastId: number;
  lines: number;
  /** Sum of the rows' byte counts (what leaves the disk budget when they are removed). */
  bytes: number;
  /** The rows' lines, in order, as UTF-8: one buffer per row, sent as they are. */
  parts: Buffer[];
}

const EMPTY = Buffer.alloc(0);

/** A buffer of at least `need` bytes: a spare one from the pool, or a new one with room to grow. */
function bodyBuffer(pool: ArrayBuffer[], need: number): ArrayBuffer {
  for (let i = 0; i < pool.length; i++) {
    if (pool[i]!.byteLength >= need) return pool.splice(i, 1)[0]!;
  }
  return new ArrayBuffer(Math.max(POOL_MIN_BYTES, Math.ceil(need * 1.25)));
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
export class Outbox implements Component, CheckpointHost {
  readonly name = 'outbox';
  private db?: Db;
  /** The lines appended since the last commit, as UTF-8: `acc[0, bufBytes)`, in a pool buffer. */
  private acc: Buffer = EMPTY;
  private bufLines = 0;
  private bufBytes = 0;
  private callbacks: Array<() => void> = [];
  private stateWrites = new Map<string, StateValue>();
  /** Confirmed row ranges to delete with the next commit (flat [first, last] pairs). */
  private deletes: number[] = [];
  /** Confirmed ranges whose delete is not durable yet: read() skips them. */
  private removing: Array<[number, number]> = [];
  /** Every state entry, as of the last commit plus pending writes (for loadState and compaction). */
  private readonly stateAll = new Map<string, StateValue>();
  private stateLogRows = 0;
  /** The next commit carries a full state snapshot (the log has grown long, or we are stopping). */
  private compactNext = false;
  /** After a failed commit, no new attempt before this time. */
  private retryAt = 0;
  private commitTx?: CommitFn;
  private worker?: Worker;
  private workerFailed = false;
  /** The commit the worker is running: what it holds and whom to call when it is durable. */
  private inFlight?: InFlightCommit;
  private readonly pool: ArrayBuffer[] = [];
  private commitAgain = false;
  private seq = 0;
  private idleWaiters: Array<() => void> = [];
  private timer?: NodeJS.Timeout;
  private pendingLines = 0;
  private pendingBytes = 0;
  private committedLines = 0;
  private droppedLines = 0;
  private commits = 0;
  private parkedBatches = 0;
  private lastError?: string;
  private readonly dataListeners = new Set<() => void>();
  /** Called as each commit is taken, to put their state in it (the rules: the devices they changed). */
  private readonly stateSources = new Set<() => void>();
  /** Other databases checkpointed on the commit thread, by file. */
  private readonly hosted = new Map<string, HostedCheckpoint>();
  private collecting = false;
  private readonly drainListeners = new Set<() => void>();
  private stmt?: {
    insert: Database.Statement;
    readFrom: Database.Statement;
    readBodies: Database.Statement;
    deleteRange: Database.Statement;
    sizeRange: Database.Statement;
    insertStateLog: Database.Statement;
  };

  constructor(
    private readonly cfg: OutboxConfig,
    private readonly dataDir: string,
    private readonly log: Logger,
    /** State log rows after which the next commit carries a full snapshot (tests set it low). */
    private readonly compactEvery = STATE_LOG_COMPACT_ROWS,
    /** State characters per commit at most (tests set it low). */
    private readonly stateCharsPerCommit = STATE_CHARS_PER_COMMIT,
  ) {}

  async start(): Promise<void> {
    const db = openDb(join(this.dataDir, 'outbox.db'), MIGRATIONS, this.cfg.synchronous);
    this.db = db;
    this.stmt = {
      insert: db.prepare('INSERT INTO chunk (lines, bytes, body) VALUES (?, ?, ?)'),
      readFrom: db.prepare('SELECT id, lines, bytes FROM chunk WHERE id >= ? ORDER BY id LIMIT ?'),
      readBodies: db.prepare('SELECT body FROM chunk WHERE id BETWEEN ? AND ? ORDER BY id').pluck(),
      deleteRange: db.prepare('DELETE FROM chunk WHERE id BETWEEN ? AND ?'),
      sizeRange: db.prepare(
        'SELECT COALESCE(SUM(lines),0) AS l, COALESCE(SUM(bytes),0) AS b FROM chunk WHERE id BETWEEN ? AND ?',
      ),
      insertStateLog: db.prepare('INSERT INTO state_log (body) VALUES (?)'),
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
    const stmt = this.stmt;
    if (!stmt) throw new Error('outbox statements missing');
    // Built once: a transaction wrapper per commit would cost more than the insert itself.
    const putSnapshot = db.prepare(STATE_SNAPSHOT_SQL);
    const foldLog = db.prepare(STATE_FOLD_SQL);
    const commit: CommitFn = (lines, bytes, body, stateBody, deletes, snapshot) => {
      if (lines) stmt.insert.run(lines, bytes, body);
      if (snapshot) {
        putSnapshot.run(stateBody);
        foldLog.run();
      } else if (stateBody) stmt.insertStateLog.run(stateBody);
      for (let i = 0; i < deletes.length; i += 2) stmt.deleteRange.run(deletes[i], deletes[i + 1]);
    };
    this.commitTx = db.transaction(commit);
    this.loadAllState(db);
    if (this.cfg.commitThread) this.spawnWorker();
    if (this.pendingLines)
      this.log.info({ pendingLines: this.pendingLines }, 'outbox holds readings from before the restart');
  }

  /** Every state entry whose key starts with the prefix (used at start-up by stateful stages). */
  loadState(prefix: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, v] of this.stateAll) if (k.startsWith(prefix)) out.set(k, String(v));
    return out;
  }

  private loadAllState(db: Db): void {
    this.stateAll.clear();
    const snap = db.prepare('SELECT log_id, body FROM state_snapshot WHERE id = 1').get() as
      { log_id: number; body: string } | undefined;
    if (snap) parseState(snap.body, this.stateAll);
    const logs = db
      .prepare('SELECT body FROM state_log WHERE id > ? ORDER BY id')
      .pluck()
      .all(snap?.log_id ?? 0) as string[];
    for (const body of logs) parseState(body, this.stateAll);
    this.stateLogRows = logs.length;
  }

  /** Writes a state entry with the next commit. Keys and values may not hold tabs or newlines. */
  putState(key: string, value: StateValue): void {
    this.stateWrites.set(key, value);
    this.stateAll.set(key, value);
    // From a state source, the commit being taken carries it: no further commit needed.
    if (!this.collecting) this.schedule();
  }

  /**
   * `collect` runs as each commit is taken and may call putState(): its state then commits in the
   * same transaction as the lines appended so far, which is what the readings that changed it are
   * acknowledged with. Returns a function that removes it.
   */
  addStateSource(collect: () => void): () => void {
    this.stateSources.add(collect);
    return () => this.stateSources.delete(collect);
  }

  /**
   * Checkpoints another database's WAL on the commit thread every `intervalMs`: one thread (and
   * V8 heap) fewer than a checkpoint thread of its own (ADR 0082). Undefined without a commit
   * thread. `onError(reason, lost)`: a checkpoint failed (it is tried again), or with `lost` the
   * thread is gone and the caller must checkpoint otherwise.
   */
  hostCheckpoints(
    file: string,
    intervalMs: number,
    onError: (reason: string, lost: boolean) => void,
  ): { stop(): Promise<void> } | undefined {
    const w = this.worker;
    if (!w || this.workerFailed || this.hosted.has(file)) return undefined;
    const h: HostedCheckpoint = { onError };
    this.hosted.set(file, h);
    w.postMessage({ type: 'checkpoint-start', file, intervalMs });
    return {
      stop: () =>
        new Promise<void>((resolve) => {
          if (this.hosted.get(file) !== h || !this.worker || this.workerFailed) {
            this.hosted.delete(file);
            resolve();
            return;
          }
          h.stopped = resolve;
          this.worker.postMessage({ type: 'checkpoint-stop', file });
        }),
    };
  }

  /** Asks for a commit soon though nothing was appended (a state source has changes from a timer). */
  requestCommit(): void {
    this.schedule();
  }

  /** Adds one line-protocol line (with its trailing newline) to the next commit. */
  append(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; lines are ASCII but for odd extra values.
    this.room(3 * line.length);
    this.bufBytes += this.acc.write(line, this.bufBytes, 'utf8');
    this.bufLines++;
    this.schedule();
  }

  /** Adds one line (newline included) given as UTF-8 bytes `src[start, end)`, copied now. */
  appendBytes(src: Buffer, start: number, end: number): void {
    this.room(end - start);
    this.bufBytes += src.copy(this.acc, this.bufBytes, start, end);
    this.bufLines++;
    this.schedule();
  }

  /**
   * At least `n` bytes free after the pending lines. Lines are written straight into the buffer the
   * commit takes: building them as strings and encoding them at commit kept every line of a
   * commit alive in the heap meanwhile.
   */
  private room(n: number): void {
    if (this.bufBytes + n <= this.acc.length) return;
    const next = Buffer.from(bodyBuffer(this.pool, this.bufBytes + n));
    this.acc.copy(next, 0, 0, this.bufBytes);
    if (this.acc.length) this.giveBack(this.acc.buffer as ArrayBuffer);
    this.acc = next;
  }

  /** Runs `cb` once everything appended so far is durable (or right after the next commit). */
  afterCommit(cb: () => void): void {
    this.callbacks.push(cb);
    this.schedule();
  }

  /** True while the disk budget is used up and the policy is to stop acknowledging. */
  isFull(): boolean {
    return (
      this.cfg.whenFull === 'stop-acking' &&
      this.pendingBytes + this.bufBytes + (this.inFlight?.bytes ?? 0) >= this.cfg.maxBytes
    );
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
    // After a failed commit the next try waits a second: a refusing disk is not hammered.
    const wait = Math.max(this.cfg.commitIntervalMs, this.retryAt - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.commit();
    }, wait);
  }

  private spawnWorker(): void {
    const w = new Worker(new URL('./outbox-worker.mjs', import.meta.url), {
      workerData: {
        file: join(this.dataDir, 'outbox.db'),
        synchronous: this.cfg.synchronous,
        snapshotSql: STATE_SNAPSHOT_SQL,
        foldSql: STATE_FOLD_SQL,
      },
      // The worker needs no TypeScript loader (plain JavaScript); do not pass ours along.
      execArgv: [],
      // It only holds the commit in hand: a small heap keeps its garbage from growing the process.
      resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 },
    });
    w.on('message', (m: WorkerReply) => this.onWorkerReply(m));
    w.on('error', (err) => this.workerLost(w, err, err.message));
    // A thread that ends without an error event (terminated, exited) while still ours is lost too.
    w.on('exit', (code) => this.workerLost(w, undefined, `commit thread exited with code ${code}`));
    w.unref();
    this.worker = w;
  }

  /**
   * The commit thread is gone: its commit in flight failed (its lines are still here and go back in
   * front), and from now on commits run on the main thread.
   */
  private workerLost(w: Worker, err: Error | undefined, reason: string): void {
    if (this.worker !== w || this.workerFailed) return;
    this.log.error({ err, reason }, 'outbox commit thread failed; committing on the main thread');
    this.workerFailed = true;
    this.dropHosted(reason);
    const f = this.inFlight;
    if (f) this.onWorkerReply({ type: 'failed', seq: f.seq, error: reason });
  }

  /**
   * Writes everything gathered so far in one transaction: on the commit thread when there is one
   * (then durable when its reply arrives), else right here. Safe to call at any time; while a
   * commit is running the next one gathers and follows as soon as it returns.
   */
  commit(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.db || !this.commitTx) return;
    if (this.inFlight) {
      this.commitAgain = true;
      return;
    }
    if (Date.now() < this.retryAt) {
      this.schedule();
      return;
    }
    this.collecting = true;
    for (const collect of this.stateSources) {
      try {
        collect();
      } catch (err) {
        // A source that fails loses its own state for this commit, never the readings'.
        this.log.error({ err }, 'collecting state for the commit failed');
      }
    }
    this.collecting = false;
    if (
      this.bufLines === 0 &&
      this.stateWrites.size === 0 &&
      this.deletes.length === 0 &&
      !this.compactNext
    ) {
      // Nothing to write and nothing running: all appended data is durable already.
      if (this.callbacks.length) {
        const cbs = this.callbacks;
        this.callbacks = [];
        for (const cb of cbs) cb();
      }
      this.notifyIdle();
      return;
    }
    const c = this.takeBuffer();
    if (this.worker && !this.workerFailed) {
      this.inFlight = c;
      let sent: Buffer | null = null;
      if (c.lines) {
        sent = Buffer.from(bodyBuffer(this.pool, c.bytes), 0, c.bytes);
        c.body.copy(sent);
      }
      this.worker.postMessage(
        {
          type: 'commit',
          seq: c.seq,
          lines: c.lines,
          bytes: c.bytes,
          body: sent,
          stateBody: c.stateBody,
          deletes: c.deletes,
          snapshot: c.snapshot,
        },
        sent ? [sent.buffer as ArrayBuffer] : [],
      );
      return;
    }
    try {
      this.commitTx(c.lines, c.bytes, c.body, c.stateBody, c.deletes, c.snapshot);
    } catch (err) {
      this.commitFailed(c, (err as Error).message);
      return;
    } finally {
      if (c.lines) this.giveBack(c.body.buffer as ArrayBuffer);
    }
    this.committed(c);
  }

  private takeBuffer(): InFlightCommit {
    const lines = this.bufLines;
    const body = lines ? this.acc.subarray(0, this.bufBytes) : EMPTY;
    // Every state value is read now, when the commit is taken: it then matches the lines of this
    // commit exactly, whether it goes to the log (what changed) or is a full snapshot.
    const snapshot = this.compactNext;
    this.compactNext = false;
    let stateBody = '';
    // State entries left for the next commit (beyond this commit's share), if any.
    let rest: Map<string, StateValue> | undefined;
    if (snapshot) {
      const parts: string[] = [];
      for (const [k, v] of this.stateAll) parts.push(k, '\t', String(v), '\n');
      stateBody = parts.join('');
    } else if (this.stateWrites.size) {
      const parts: string[] = [];
      const max = this.stateCharsPerCommit;
      let chars = 0;
      for (const [k, v] of this.stateWrites) {
        if (chars >= max) {
          (rest ??= new Map()).set(k, v);
          continue;
        }
        const s = String(v);
        parts.push(k, '\t', s, '\n');
        chars += k.length + s.length + 2;
      }
      stateBody = parts.join('');
    }
    // With state left over, the callbacks (the acks of the readings whose state it may be) wait
    // for the commit that carries the last of it: a reading is acknowledged only once the state it
    // changed is on disk.
    const callbacks = rest ? [] : this.callbacks;
    const c: InFlightCommit = {
      seq: ++this.seq,
      lines,
      bytes: body.length,
      body,
      stateBody,
      deletes: this.deletes,
      snapshot,
      callbacks,
    };
    this.deletes = [];
    // The buffer goes with the commit (to the commit thread and back into the pool).
    if (lines) this.acc = EMPTY;
    this.bufLines = 0;
    this.bufBytes = 0;
    this.stateWrites = rest ?? new Map();
    if (rest) this.schedule();
    else this.callbacks = [];
    return c;
  }

  private onWorkerReply(m: WorkerReply): void {
    if (m.type === 'closed') return;
    if (m.type === 'checkpoint-error') {
      this.hosted.get(m.file)?.onError(m.error, false);
      return;
    }
    if (m.type === 'checkpoint-stopped') {
      const h = this.hosted.get(m.file);
      this.hosted.delete(m.file);
      h?.stopped?.();
      return;
    }
    const c = this.inFlight;
    if (!c || c.seq !== m.seq) return;
    this.inFlight = undefined;
    if (m.type === 'failed') this.commitFailed(c, m.error);
    else this.committed(c);
    // After commitFailed has copied the lines out of the body (a thread that died sends no buffer).
    if (m.buf) this.giveBack(m.buf);
    if (c.lines) this.giveBack(c.body.buffer as ArrayBuffer);
    if (this.commitAgain) {
      this.commitAgain = false;
      this.commit();
    } else if (this.bufLines || this.stateWrites.size || this.deletes.length || this.callbacks.length) {
      this.schedule();
    } else {
      this.notifyIdle();
    }
  }

  private commitFailed(c: InFlightCommit, error: string): void {
    // The disk refused (full, read-only...). Nothing is acknowledged; put the data back in front
    // of what came since and try again, so the broker still holds every message not confirmed.
    this.lastError = error;
    this.log.error({ error }, 'outbox commit failed; retrying');
    if (c.lines) {
      // What came since moves up; the failed commit's lines go in front of it.
      this.room(c.bytes);
      this.acc.copyWithin(c.bytes, 0, this.bufBytes);
      c.body.copy(this.acc, 0, 0, c.bytes);
    }
    this.bufLines += c.lines;
    this.bufBytes += c.bytes;
    if (c.snapshot) this.compactNext = true;
    else if (c.stateBody) {
      const older = new Map<string, StateValue>();
      parseState(c.stateBody, older);
      for (const [k, v] of older) if (!this.stateWrites.has(k)) this.stateWrites.set(k, v);
    }
    this.callbacks.unshift(...c.callbacks);
    this.deletes.unshift(...c.deletes);
    this.retryAt = Date.now() + COMMIT_RETRY_MS;
    this.schedule();
  }

  private committed(c: InFlightCommit): void {
    if (c.snapshot) this.stateLogRows = 0;
    else if (c.stateBody && ++this.stateLogRows >= this.compactEvery) this.compactNext = true;
    if (c.deletes.length) this.forgetRemoving(c.deletes);
    this.lastError = undefined;
    this.commits++;
    this.committedLines += c.lines;
    this.pendingLines += c.lines;
    this.pendingBytes += c.bytes;
    if (this.cfg.whenFull === 'drop-oldest' && this.pendingBytes > this.cfg.maxBytes) this.dropOldest();
    for (const cb of c.callbacks) cb();
    if (c.lines) for (const fn of this.dataListeners) fn();
  }

  private giveBack(buf: ArrayBuffer): void {
    if (this.pool.length < POOL_BUFFERS && buf.byteLength <= POOL_MAX_BYTES) this.pool.push(buf);
  }

  private notifyIdle(): void {
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  /** Resolves once everything appended so far is committed. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      this.afterCommit(resolve);
      this.commit();
    });
  }

  private dropOldest(): void {
    const db = this.requireDb();
    const oldest = db.prepare('SELECT id, lines, bytes FROM chunk WHERE id >= ? ORDER BY id LIMIT 1');
    let from = 1;
    while (this.pendingBytes > this.cfg.maxBytes) {
      let row: { id: number; lines: number; bytes: number } | undefined;
      // Rows already confirmed (their delete not committed yet) no longer count: skip them.
      for (;;) {
        row = oldest.get(from) as typeof row;
        const end = row ? this.removingEnd(row.id) : 0;
        if (!end) break;
        from = end + 1;
      }
      if (!row) break;
      db.prepare('DELETE FROM chunk WHERE id = ?').run(row.id);
      this.pendingLines -= row.lines;
      this.pendingBytes -= row.bytes;
      this.droppedLines += row.lines;
      this.log.warn({ lines: row.lines }, 'outbox full: dropped the oldest readings (policy drop-oldest)');
    }
  }

  /** The oldest committed rows, concatenated, up to about `maxLines` lines (at least one row). */
  read(maxLines: number, afterId = 0, continuing = false): OutboxBatch | null {
    const stmt = this.stmt;
    if (!stmt) return null;
    // Pick the range by line counts first, then fetch only the bodies that go out. Rows already
    // confirmed, whose delete rides on the next commit, are not handed out again; a batch is a
    // contiguous id range, so it ends before such rows.
    let from = afterId + 1;
    let rows: Array<{ id: number; lines: number; bytes: number }>;
    for (;;) {
      rows = stmt.readFrom.all(from, 1024) as typeof rows;
      if (!rows.length) return null;
      const end = this.removingEnd(rows[0]!.id);
      if (!end) break;
      // A batch being extended stays one range of rows: it ends where confirmed rows begin.
      if (continuing) return null;
      from = end + 1;
    }
    let lines = 0;
    let bytes = 0;
    let lastId = rows[0]!.id;
    for (const r of rows) {
      if (lines > 0 && (lines + r.lines > maxLines || this.removingEnd(r.id))) break;
      lines += r.lines;
      bytes += r.bytes;
      lastId = r.id;
    }
    // Rows written before bodies were stored as bytes come back as text.
    const parts = (stmt.readBodies.all(rows[0]!.id, lastId) as Array<Buffer | string>).map((p) =>
      typeof p === 'string' ? Buffer.from(p, 'utf8') : p,
    );
    return { firstId: rows[0]!.id, lastId, lines, bytes, parts };
  }

  /**
   * Removes the batch's rows [firstId, lastId]: they are confirmed by the database. They leave the
   * counts at once; with a commit thread the delete itself rides on the next group commit, so the
   * event loop never waits for the disk here (a crash before it only means InfluxDB gets those
   * lines again, which rewrites the same points).
   */
  remove(batch: OutboxBatch): void {
    this.removeRows(batch, this.worker !== undefined && !this.workerFailed);
  }

  /** The last id of the confirmed range holding `id` (its delete not yet committed), else 0. */
  private removingEnd(id: number): number {
    const rs = this.removing;
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      if (id >= r[0] && id <= r[1]) return r[1];
    }
    return 0;
  }

  private forgetRemoving(deletes: number[]): void {
    for (let i = 0; i < deletes.length; i += 2) {
      const k = this.removing.findIndex((r) => r[0] === deletes[i] && r[1] === deletes[i + 1]);
      if (k >= 0) this.removing.splice(k, 1);
    }
  }

  /** Moves a batch the server will never accept aside, with its reason, so the rest flows on. */
  park(batch: Omit<OutboxBatch, 'bytes'>, reason: string): void {
    const body = Buffer.concat(batch.parts).toString('utf8');
    const db = this.requireDb();
    db.transaction(() => {
      db.prepare('INSERT INTO parked (parked_at, reason, lines, body) VALUES (?, ?, ?, ?)').run(
        Date.now(),
        reason.slice(0, 4000),
        batch.lines,
        body,
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

  /**
   * Takes rows [firstId, lastId] out of the counts by the sizes of the rows still on disk, not a
   * batch's own sums (a range: batches complete out of order, and drop-oldest may have removed
   * and counted some of them meanwhile). `deferred`: the delete rides on the next group commit.
   */
  private removeRows(batch: Pick<OutboxBatch, 'firstId' | 'lastId'>, deferred = false): void {
    const stmt = this.stmt!;
    const wasFull = this.isFull();
    const sizes = stmt.sizeRange.get(batch.firstId, batch.lastId) as { l: number; b: number };
    if (deferred) {
      this.deletes.push(batch.firstId, batch.lastId);
      this.removing.push([batch.firstId, batch.lastId]);
      this.schedule();
    } else stmt.deleteRange.run(batch.firstId, batch.lastId);
    this.pendingLines -= sizes.l;
    this.pendingBytes -= sizes.b;
    if (wasFull && !this.isFull()) for (const fn of this.drainListeners) fn();
  }

  /** Lines on disk waiting for InfluxDB: what read() can return (not the group-commit buffer). */
  storedLines(): number {
    return this.pendingLines;
  }

  stats(): OutboxStats {
    return {
      pendingLines: this.pendingLines + this.bufLines + (this.inFlight?.lines ?? 0),
      pendingBytes: this.pendingBytes + this.bufBytes + (this.inFlight?.bytes ?? 0),
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
    // The last commit folds the state log into one snapshot, so the next start reads one row.
    if (this.stateLogRows > 0) this.compactNext = true;
    await this.flush();
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      // A thread already lost answers nothing: it is only terminated.
      this.dropHosted('the outbox stopped');
      if (!this.workerFailed) {
        await new Promise<void>((resolve) => {
          w.on('message', (m: WorkerReply) => m.type === 'closed' && resolve());
          w.once('exit', () => resolve());
          w.postMessage({ type: 'close' });
        });
      }
      await w.terminate();
    }
    this.db.close();
    this.db = undefined;
    this.stmt = undefined;
    this.commitTx = undefined;
  }

  /** The commit thread is gone or stopping: whoever checkpointed on it does so otherwise now. */
  private dropHosted(reason: string): void {
    const hs = [...this.hosted.values()];
    this.hosted.clear();
    for (const h of hs) {
      h.onError(reason, true);
      h.stopped?.();
    }
  }

  private requireDb(): Db {
    if (!this.db) throw new Error('outbox not started');
    return this.db;
  }
}
