import { Worker } from 'node:worker_threads';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { Db } from './db.js';

/**
 * Moves the WAL checkpoints of a database opened with synchronous=NORMAL to a worker thread
 * (checkpoint-worker.mjs), so neither its commits nor its checkpoints fsync on the event loop
 * (ADR 0082). If the thread fails, the connection checkpoints itself again as SQLite does by default.
 */
export class WalCheckpointer implements Component {
  readonly name: string;
  private worker?: Worker;
  private lastError: string | undefined;

  constructor(
    private readonly db: Db,
    private readonly file: string,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {
    this.name = `checkpoint:${file.split('/').pop() ?? file}`;
  }

  async start(): Promise<void> {
    this.db.pragma('wal_autocheckpoint = 0');
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
    this.lastError = reason;
    this.log.error({ reason }, 'WAL checkpoint thread failed; the connection checkpoints itself again');
    if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
  }

  async stop(): Promise<void> {
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
