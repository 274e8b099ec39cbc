import type { Kysely } from 'kysely';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { LiveHub } from '../live/hub.js';
import { PgListener } from '../storage/sql/listener.js';
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
  private readonly listener: PgListener;
  private readonly cursors = new Map<string, number>();
  private pulling?: Promise<void>;
  private again = false;
  private stopped = true;
  private pollTimer?: NodeJS.Timeout;
  /** The last pull's error (the connection's own is the listener's). */
  private lastError?: string;
  private counts = { published: 0, notifications: 0 };

  constructor(private readonly o: ViewFeedOptions) {
    // Keepalive (in the listener): an idle listening connection cut off without a reset is noticed;
    // the 5 s poll, through the pool, carries the feed meanwhile.
    this.listener = new PgListener({
      url: o.postgresUrl,
      channel: VIEW_CHANNEL,
      log: o.log,
      ...(o.retry ? { retry: o.retry } : {}),
      onNotify: (payload) => {
        this.counts.notifications++;
        if (payload !== this.o.instanceId) this.pull();
      },
      // What was committed while nobody listened (after a start or a reconnect).
      onListening: () => {
        this.lastError = undefined;
        this.pull();
      },
    });
  }

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
    await this.listener.start();
    this.pollTimer = setInterval(() => this.pull(), this.o.pollMs ?? 5000);
    this.pollTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    await this.listener.stop();
    await this.pulling;
  }

  health(): ComponentHealth {
    const connected = this.listener.connected;
    const base = {
      connected,
      instances: this.cursors.size,
      ...this.counts,
      reconnects: this.listener.reconnects,
    };
    if (this.stopped) return { state: 'stopped', ...base };
    if (!connected)
      return {
        state: 'degraded',
        detail: `live feed: ${this.lastError ?? this.listener.lastError ?? 'connecting'}`,
        ...base,
      };
    return { state: 'ok', ...base };
  }

  /** The counters, for /metrics. */
  stats(): { connected: boolean; published: number } {
    return { connected: this.listener.connected, published: this.counts.published };
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
