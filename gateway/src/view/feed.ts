import type { Kysely } from 'kysely';
import pg from 'pg';
import { backoffMs } from '../core/backoff.js';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { LiveHub } from '../live/hub.js';
import type { ViewTables } from './tables.js';
import { VIEW_CHANNEL } from './writer.js';

export interface ViewFeedOptions {
  instanceId: string;
  postgresUrl: string;
  db: () => Kysely<object>;
  hub: LiveHub;
  log: Logger;
  /** A pull without a NOTIFY, in case one was missed (default 5 s). */
  pollMs?: number;
  retry?: { minMs: number; maxMs: number };
}

/** Rows read per query. */
const PAGE = 500;

/**
 * Other instances' alarm and ticket changes onto this instance's live stream (ADR 0156): one
 * dedicated connection LISTENs on `gateway_view`; a NOTIFY (sent by a writer's commit) makes it read
 * the feed table past its cursors, one cursor per instance (each instance numbers its own changes
 * and writes them in order, so a per-instance cursor never skips a row committed late). After a
 * reconnect it reads everything it missed in the same way.
 */
export class ViewFeed implements Component {
  readonly name = 'cluster view feed';
  private client?: pg.Client;
  private readonly cursors = new Map<string, number>();
  private pulling?: Promise<void>;
  private again = false;
  private stopped = true;
  private attempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private connected = false;
  private lastError?: string;
  private counts = { published: 0, reconnects: 0, notifications: 0 };

  constructor(private readonly o: ViewFeedOptions) {}

  private get db(): Kysely<ViewTables> {
    return this.o.db().withTables<ViewTables>();
  }

  async start(): Promise<void> {
    // From now on: what other instances changed before this one started is in the lists, not the stream.
    const rows = await this.db
      .selectFrom('view_changes')
      .select(['instance_id', (eb) => eb.fn.max('change_seq').as('m')])
      .groupBy('instance_id')
      .execute();
    for (const r of rows) this.cursors.set(r.instance_id, Number(r.m));
    this.stopped = false;
    await this.connect().catch(() => this.reconnectLater());
    this.pollTimer = setInterval(() => this.pull(), this.o.pollMs ?? 5000);
    this.pollTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.reconnectTimer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
    await this.pulling;
  }

  health(): ComponentHealth {
    const base = { connected: this.connected, instances: this.cursors.size, ...this.counts };
    if (this.stopped) return { state: 'stopped', ...base };
    if (!this.connected)
      return { state: 'degraded', detail: `live feed: ${this.lastError ?? 'connecting'}`, ...base };
    return { state: 'ok', ...base };
  }

  /** The counters, for /metrics. */
  stats(): { connected: boolean; published: number } {
    return { connected: this.connected, published: this.counts.published };
  }

  private async connect(): Promise<void> {
    // Keepalive: an idle listening connection cut off without a reset is noticed (the 5 s poll,
    // through the pool, carries the feed meanwhile).
    const c = new pg.Client({
      connectionString: this.o.postgresUrl,
      connectionTimeoutMillis: 5000,
      keepAlive: true,
    });
    this.client = c;
    c.on('notification', (n) => {
      this.counts.notifications++;
      if (n.payload !== this.o.instanceId) this.pull();
    });
    // A dropped connection (server restart, network cut): reconnect and catch up.
    const lost = (err?: Error) => {
      if (this.client !== c) return;
      this.client = undefined;
      this.connected = false;
      this.lastError = err?.message ?? 'connection ended';
      this.o.log.warn({ err: this.lastError }, 'live feed connection to PostgreSQL lost; reconnecting');
      c.end().catch(() => undefined);
      this.reconnectLater();
    };
    c.on('error', lost);
    c.on('end', () => lost());
    try {
      await c.connect();
      await c.query(`LISTEN ${VIEW_CHANNEL}`);
    } catch (err) {
      if (this.client === c) this.client = undefined;
      c.end().catch(() => undefined);
      this.lastError = (err as Error).message;
      throw err;
    }
    this.connected = true;
    this.attempt = 0;
    this.lastError = undefined;
    // What was committed while nobody listened.
    this.pull();
  }

  private reconnectLater(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.attempt++;
    this.counts.reconnects++;
    this.reconnectTimer = setTimeout(
      () => {
        this.reconnectTimer = undefined;
        if (this.stopped) return;
        this.connect().catch(() => this.reconnectLater());
      },
      backoffMs(this.attempt, this.o.retry ?? { minMs: 250, maxMs: 5000 }),
    );
    this.reconnectTimer.unref();
  }

  /** Reads past the cursors; one pull at a time, a request during one runs once more after it. */
  private pull(): void {
    if (this.stopped) return;
    if (this.pulling) {
      this.again = true;
      return;
    }
    this.pulling = this.read()
      .catch((err: unknown) => {
        this.lastError = (err as Error).message;
      })
      .finally(() => {
        this.pulling = undefined;
        if (this.again) {
          this.again = false;
          this.pull();
        }
      });
  }

  private async read(): Promise<void> {
    for (;;) {
      const known = [...this.cursors];
      const rows = await this.db
        .selectFrom('view_changes')
        .select(['instance_id', 'change_seq', 'type', 'site', 'payload'])
        .where('instance_id', '!=', this.o.instanceId)
        .where((eb) =>
          eb.or([
            ...known.map(([id, seq]) => eb.and([eb('instance_id', '=', id), eb('change_seq', '>', seq)])),
            ...(known.length > 0
              ? [
                  eb(
                    'instance_id',
                    'not in',
                    known.map(([id]) => id),
                  ),
                ]
              : [eb.val(true)]),
          ]),
        )
        .orderBy('instance_id')
        .orderBy('change_seq')
        .limit(PAGE)
        .execute();
      for (const r of rows) {
        const seq = Number(r.change_seq);
        if (seq <= (this.cursors.get(r.instance_id) ?? 0)) continue;
        this.cursors.set(r.instance_id, seq);
        this.o.hub.publish(r.type, JSON.parse(r.payload), r.site ?? undefined);
        this.counts.published++;
      }
      if (rows.length < PAGE || this.stopped) return;
    }
  }
}
