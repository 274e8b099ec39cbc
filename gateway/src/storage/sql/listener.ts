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
  /**
   * How often the connection is asked `SELECT 1`, and how long the answer may take before the
   * connection counts as lost. Defaults: every 10 s, 5 s.
   */
  probe?: { everyMs: number; timeoutMs: number };
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
  private probeTimer?: NodeJS.Timeout;
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
    clearInterval(this.probeTimer);
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
      clearInterval(this.probeTimer);
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
    this.probe(c, lost);
    this.o.onListening();
  }

  /**
   * A network cut without a reset leaves the socket open and silent: TCP keepalive would notice only
   * after minutes, and until then nothing is heard while health says "listening". A short query
   * on the connection itself proves it carries traffic; one not answered in time ends it, and the
   * reconnect (with `onListening`, so the caller reads what it missed) follows as after any loss.
   */
  private probe(c: PgModule.Client, lost: (err?: Error) => void): void {
    const { everyMs, timeoutMs } = this.o.probe ?? { everyMs: 10_000, timeoutMs: 5000 };
    let inFlight = false;
    clearInterval(this.probeTimer);
    this.probeTimer = setInterval(() => {
      if (inFlight || this.client !== c) return;
      inFlight = true;
      const timeout = setTimeout(
        () => lost(new Error(`no answer to a probe within ${timeoutMs} ms`)),
        timeoutMs,
      );
      c.query('SELECT 1').then(
        () => {
          inFlight = false;
          clearTimeout(timeout);
        },
        (err: Error) => {
          inFlight = false;
          clearTimeout(timeout);
          lost(err);
        },
      );
    }, everyMs);
    this.probeTimer.unref();
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
