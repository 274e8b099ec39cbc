import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { Db } from './db.js';
import type { CheckpointHost } from './outbox.js';

/**
 * Moves the WAL checkpoints of a database opened with synchronous=NORMAL to a worker thread
 * (checkpoint-worker.mjs), so neither its commits nor its checkpoints fsync on the event loop
 * (ADR 0082). If the thread fails, the connection checkpoints itself again as SQLite does by default.
 */
export class WalCheckpointer implements Component {
  readonly name: string;
  private worker?: Worker;
  /** The checkpoints as run on the host's thread (the outbox's commit thread). */
  private hosted?: { stop(): Promise<void> };
  private lastError: string | undefined;

  constructor(
    private readonly db: Db,
    private readonly file: string,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
    /** A thread that runs them (the outbox's commit thread), rather than one of our own. */
    private readonly host?: CheckpointHost,
  ) {
    this.name = `checkpoint:${file.split('/').pop() ?? file}`;
  }

  async start(): Promise<void> {
    this.db.pragma('wal_autocheckpoint = 0');
    // Each worker thread is a V8 isolate of its own (about 10 MB resident): use the host's if any.
    const hosted = this.host?.hostCheckpoints(this.file, this.intervalMs, (reason, lost) => {
      if (!lost) {
        this.lastError = reason;
        return;
      }
      if (this.hosted !== hosted) return;
      this.hosted = undefined;
      this.fellBack(reason);
    });
    if (hosted) {
      this.hosted = hosted;
      return;
    }
    const w = new Worker(new URL('./checkpoint-worker.mjs', import.meta.url), {
      workerData: { file: this.file, intervalMs: this.intervalMs },
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4 },
    });
    w.on('message', (m: { type: string; error?: string }) => {
      if (m.type === 'error') this.lastError = m.error;
    });
    w.on('error', (err) => this.fallBack(w, err.message));
    w.on('exit', (code) => this.fallBack(w, `checkpoint thread exited with code ${code}`));
    w.unref();
    this.worker = w;
  }

  private fallBack(w: Worker, reason: string): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    this.fellBack(reason);
  }

  private fellBack(reason: string): void {
    this.lastError = reason;
    this.log.error({ reason }, 'WAL checkpoint thread failed; the connection checkpoints itself again');
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }

  async stop(): Promise<void> {
    const hosted = this.hosted;
    this.hosted = undefined;
    if (hosted) {
      await hosted.stop();
      if (this.db.open) this.db.pragma('wal_checkpoint(PASSIVE)');
      return;
    }
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    await new Promise<void>((resolve) => {
      w.once('message', () => resolve());
      w.once('exit', () => resolve());
      w.postMessage('close');
    });
    await w.terminate();
    // A last checkpoint on the way out: the next start reads a short WAL.
    if (this.db.open) this.db.pragma('wal_checkpoint(PASSIVE)');
  }

  health(): ComponentHealth {
    return {
      state: this.lastError ? 'degraded' : 'ok',
      ...(this.lastError ? { detail: this.lastError } : {}),
    };
  }
}
