import type { Logger } from './log.js';
import type { Component, ComponentHealth } from './types.js';

export interface StartOptions {
  /** Shown in `/api/health` (default). Plumbing (a database file, a token file) is not. */
  report?: boolean;
  /** Stopped before every other component (timers that would act on stopping parts). */
  stopFirst?: boolean;
}

/**
 * Starts components in order and stops them in the reverse order, with what must go first
 * (timers) before everything and subscriptions dropped after: the order the composition root
 * used to hand-write in one method.
 */
export class Lifecycle {
  private started: Array<{ c: Component; report: boolean }> = [];
  private first: Component[] = [];
  private offs: Array<() => void> = [];

  constructor(private readonly log: Logger) {}

  async start<C extends Component>(c: C, opts: StartOptions = {}): Promise<C> {
    await c.start();
    if (opts.stopFirst) this.first.push(c);
    else this.started.push({ c, report: opts.report ?? true });
    return c;
  }

  /** Runs after every component stopped (an event subscription, say). */
  onStopped(...offs: Array<() => void>): void {
    this.offs.push(...offs);
  }

  health(out: Record<string, ComponentHealth> = {}): Record<string, ComponentHealth> {
    for (const { c, report } of this.started) if (report) out[c.name] = c.health();
    return out;
  }

  async stop(): Promise<void> {
    const order = [...this.first, ...[...this.started].reverse().map((s) => s.c)];
    this.first = [];
    this.started = [];
    for (const c of order) {
      try {
        await c.stop();
      } catch (err) {
        this.log.error({ err, component: c.name }, 'component failed to stop cleanly');
      }
    }
    for (const off of this.offs) off();
    this.offs = [];
  }
}

/** A timer as a component: `fn` every `ms`, from start to stop; a throw is logged, not fatal. */
export class IntervalTask implements Component {
  private timer?: NodeJS.Timeout;

  constructor(
    readonly name: string,
    private readonly ms: number,
    private readonly fn: () => void,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => {
      try {
        this.fn();
      } catch (err) {
        this.log.error({ err }, `${this.name} failed`);
      }
    }, this.ms);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  health(): ComponentHealth {
    return { state: this.timer ? 'ok' : 'stopped' };
  }
}
