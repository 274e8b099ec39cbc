import type { Component, ComponentHealth, Reading, ReadingListener } from '../core/types.js';
import type { LiveHub } from './hub.js';

/**
 * Readings for the live stream, at most one per device per interval: each device's newest reading
 * replaces the one waiting, and a timer publishes what is waiting. 10,000 devices reporting every
 * second still make at most 10,000 events per interval, never a backlog. With nobody subscribed
 * the listener returns at once.
 */
export class ReadingThrottle implements Component, ReadingListener {
  readonly name = 'live';
  /** site → device → newest reading not yet published (maps, not a key string per reading). */
  private pending = new Map<string, Map<string, Reading>>();
  private waiting = 0;
  private timer?: NodeJS.Timeout;
  private sent = 0;

  constructor(
    private readonly hub: LiveHub,
    private readonly intervalMs: number,
  ) {}

  onReading(r: Reading): void {
    if (this.hub.subscribers === 0) return;
    let devices = this.pending.get(r.site);
    if (devices === undefined) this.pending.set(r.site, (devices = new Map()));
    const size = devices.size;
    devices.set(r.device, r);
    if (devices.size !== size) this.waiting++;
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Publishes every waiting reading; called by the timer. */
  flush(): void {
    if (this.waiting === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    this.waiting = 0;
    for (const [site, devices] of pending) {
      for (const r of devices.values()) {
        const data: Record<string, unknown> = {
          site,
          device: r.device,
          kind: r.kind,
          ts: new Date(r.ts).toISOString(),
          values: r.fields,
        };
        if (r.quality !== undefined) data.quality = r.quality;
        // Per metric, so that the dashboard marks only the values that are not good.
        if (r.qualities !== undefined) data.qualities = r.qualities;
        this.hub.publish('reading', data, site);
        this.sent++;
      }
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.pending.clear();
    this.waiting = 0;
  }

  health(): ComponentHealth {
    const s = this.hub.stats();
    return {
      state: this.timer ? 'ok' : 'stopped',
      subscribers: s.subscribers,
      events: s.published,
      readingsSent: this.sent,
    };
  }
}
