import type { Engine, SimMessage } from './engine.js';

export interface RunnerOptions {
  speed: number;
  startTime: number;
  /** Real milliseconds between ticks. */
  tickMs: number;
  /** Never let simulated time pass the wall clock (timestamps a gateway would reject as future). */
  clampToWallClock: boolean;
  /** Most messages emitted in one tick, whatever the sinks could take. */
  maxPerTick: number;
  /** How many messages the sinks can take now. */
  capacity(): number;
  dispatch(messages: SimMessage[]): void;
  onError(err: unknown): void;
}

export interface RunnerStats {
  generated: number;
  /** Messages per real second over the last few seconds. */
  ratePerSec: number;
  /** Messages per real second the schedule asks for (all devices, at this speed). */
  scheduledPerSec: number;
  /** How far the emitted stream trails the simulated clock, in simulated ms. */
  lagMs: number;
  behind: boolean;
  simTime: number;
  uptimeSec: number;
}

/**
 * Drives the engine from the wall clock: one timer for the whole fleet, each tick emits every
 * report now due. Determinism does not depend on the tick: the engine orders by simulated time.
 */
export class Runner {
  private timer: NodeJS.Timeout | null = null;
  private wallStart = 0;
  private generated = 0;
  private target = 0;
  private readonly window: { t: number; n: number }[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly opts: RunnerOptions,
  ) {}

  start(): void {
    this.wallStart = performance.now();
    this.target = this.opts.startTime;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.opts.tickMs);
  }

  simNow(): number {
    const t = this.opts.startTime + (performance.now() - this.wallStart) * this.opts.speed;
    return this.opts.clampToWallClock ? Math.min(t, Math.max(Date.now(), this.opts.startTime)) : t;
  }

  private tick(): void {
    try {
      this.target = this.simNow();
      const limit = Math.min(this.opts.maxPerTick, this.opts.capacity());
      const msgs = limit > 0 ? this.engine.advanceTo(this.target, limit) : [];
      if (msgs.length > 0) this.opts.dispatch(msgs);
      this.generated += msgs.length;
      const now = performance.now();
      this.window.push({ t: now, n: msgs.length });
      while (this.window.length > 0 && (this.window[0] as { t: number }).t < now - 5000) this.window.shift();
    } catch (err) {
      this.opts.onError(err);
    }
  }

  stats(): RunnerStats {
    const now = performance.now();
    const span = Math.min(5000, now - this.wallStart);
    const n = this.window.reduce((a, w) => a + w.n, 0);
    const lagMs = Math.max(0, this.target - this.engine.now);
    return {
      generated: this.generated,
      ratePerSec: span > 0 ? (n * 1000) / span : 0,
      scheduledPerSec: this.engine.scheduledPerSimSecond * this.opts.speed,
      lagMs,
      // More than one real second of schedule not yet emitted.
      behind: lagMs > 1000 * this.opts.speed,
      simTime: this.engine.now,
      uptimeSec: (now - this.wallStart) / 1000,
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
