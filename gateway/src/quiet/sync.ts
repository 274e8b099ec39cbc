import type { AlarmEvent, Shelf } from '../alarms/types.js';
import type { MaintenanceWindow } from '../alarms/windows.js';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { PgListener } from '../storage/sql/listener.js';
import { notShared } from './rows.js';
import { QUIET_CHANNEL, type QuietStore } from './store.js';

/** What the sync needs of the alarm service (its idempotent entry points). */
export interface QuietTarget {
  applyShelf(s: Shelf): AlarmEvent[];
  applyWindow(w: MaintenanceWindow): AlarmEvent[];
  /** The shelves running on this instance. */
  listShelves(activeOnly: true): Shelf[];
  /** The windows that may still cover something on this instance. */
  listWindows(all: false): MaintenanceWindow[];
}

export interface QuietSyncOptions {
  instanceId: string;
  postgresUrl: string;
  store: QuietStore;
  alarms: QuietTarget;
  log: Logger;
  now?: () => number;
  /** A sync without a NOTIFY, in case one was missed (default 5 s). */
  pollMs?: number;
}

/**
 * Applies the cluster's shelves and windows to this instance's alarm service (ADR 0163): at start,
 * on every NOTIFY from another instance (within tens of milliseconds of its commit), after each
 * reconnect of the LISTEN connection (catch-up), and every `pollMs` as a fallback. A sync reads the
 * running rows and the rows of what runs here (to hear of their end), and applies each: the alarm
 * service ignores what it already has, so a sync may repeat any number of times.
 */
export class QuietSync implements Component {
  readonly name = 'cluster shelves';
  private readonly listener: PgListener;
  private running?: Promise<void>;
  private again = false;
  private stopped = true;
  private timer?: NodeJS.Timeout;
  private lastError?: string;
  private lastSyncAt?: number;
  private counts = { syncs: 0, failures: 0, notifications: 0, shared: 0 };
  private readonly now: () => number;

  constructor(private readonly o: QuietSyncOptions) {
    this.now = o.now ?? Date.now;
    this.listener = new PgListener({
      url: o.postgresUrl,
      channel: QUIET_CHANNEL,
      log: o.log,
      onNotify: (payload) => {
        this.counts.notifications++;
        if (payload !== o.instanceId) this.sync();
      },
      onListening: () => this.sync(),
    });
  }

  async start(): Promise<void> {
    this.stopped = false;
    // Before the rules run: an alarm raised in the first second honours the cluster's shelves.
    this.sync();
    await this.running;
    await this.listener.start();
    this.timer = setInterval(() => this.sync(), this.o.pollMs ?? 5000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.listener.stop();
    await this.running;
  }

  health(): ComponentHealth {
    const base = {
      listening: this.listener.connected,
      lastSyncAt: this.lastSyncAt === undefined ? null : new Date(this.lastSyncAt).toISOString(),
      reconnects: this.listener.reconnects,
      ...this.counts,
    };
    if (this.stopped) return { state: 'stopped', ...base };
    const err =
      this.lastError ?? (this.listener.connected ? undefined : (this.listener.lastError ?? 'connecting'));
    if (err !== undefined)
      return {
        state: 'degraded',
        detail: `shared shelves and windows: ${err} (the last copy applies)`,
        ...base,
      };
    return { state: 'ok', ...base };
  }

  /** One sync at a time; a request during one runs once more after it. */
  sync(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.once()
      .catch((err: unknown) => {
        this.counts.failures++;
        if (this.lastError === undefined)
          this.o.log.warn(
            { err: (err as Error).message },
            'shared shelves and windows unreadable; the local copy applies',
          );
        this.lastError = (err as Error).message;
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.sync();
        }
      });
  }

  private async once(): Promise<void> {
    const { alarms, store } = this.o;
    const now = this.now();
    const localShelves = alarms.listShelves(true);
    const localWindows = alarms.listWindows(false);
    const rows = await store.forSync(
      now,
      localShelves.map((s) => s.id),
      localWindows.map((w) => w.id),
    );
    for (const s of rows.shelves) alarms.applyShelf(s);
    for (const w of rows.windows) alarms.applyWindow(w);
    // Set before this instance joined a cluster: shared now.
    const shelves = notShared(localShelves, rows.shelves);
    const windows = notShared(localWindows, rows.windows);
    if (shelves.length || windows.length) {
      await store.share(shelves, windows);
      this.counts.shared += shelves.length + windows.length;
    }
    this.counts.syncs++;
    this.lastSyncAt = now;
    if (this.lastError !== undefined) this.o.log.info('shared shelves and windows readable again');
    this.lastError = undefined;
  }
}
