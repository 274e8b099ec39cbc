import type PgModule from 'pg';
import { backoffMs } from '../../core/backoff.js';
import type { Logger } from '../../core/log.js';

export interface PgListenerOptions {
  url: string;
  channel: string;
  log: Logger;
  /** A notification's payload. */
  onNotify(payload: string | undefined): void;
  /** Listening (again): what was committed while nobody listened must be read now. */
  onListening(): void;
  retry?: { minMs: number; maxMs: number };
}

/**
 * One dedicated PostgreSQL connection (not from the pool) that LISTENs on a channel, reconnecting
 * with the gateway's backoff after a server restart or a network cut: the view's live feed (ADR
 * 0156) and the shared shelves and windows (ADR 0163).
 */
export class PgListener {
  private client?: PgModule.Client;
  private stopped = true;
  private attempt = 0;
  private timer?: NodeJS.Timeout;
  connected = false;
  lastError?: string;
  reconnects = 0;

  constructor(private readonly o: PgListenerOptions) {}

  /** Resolves after the first attempt to connect, whether it succeeded or a retry is scheduled. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.connect().catch(() => this.later());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    // Loaded here, not at start-up: only cluster mode uses the driver (dialect.ts).
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: this.o.url, connectionTimeoutMillis: 5000, keepAlive: true });
    this.client = c;
    c.on('notification', (n) => this.o.onNotify(n.payload));
    const lost = (err?: Error) => {
      if (this.client !== c) return;
      this.client = undefined;
      this.connected = false;
      this.lastError = err?.message ?? 'connection ended';
      this.o.log.warn(
        { err: this.lastError, channel: this.o.channel },
        'LISTEN connection lost; reconnecting',
      );
      c.end().catch(() => undefined);
      this.later();
    };
    c.on('error', lost);
    c.on('end', () => lost());
    try {
      await c.connect();
      await c.query(`LISTEN ${this.o.channel}`);
    } catch (err) {
      if (this.client === c) this.client = undefined;
      c.end().catch(() => undefined);
      this.lastError = (err as Error).message;
      throw err;
    }
    if (this.stopped) {
      await c.end().catch(() => undefined);
      return;
    }
    this.connected = true;
    this.attempt = 0;
    this.lastError = undefined;
    this.o.onListening();
  }

  private later(): void {
    if (this.stopped || this.timer) return;
    this.attempt++;
    this.reconnects++;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        if (this.stopped) return;
        this.connect().catch(() => this.later());
      },
      backoffMs(this.attempt, this.o.retry ?? { minMs: 250, maxMs: 5000 }),
    );
    this.timer.unref();
  }
}
