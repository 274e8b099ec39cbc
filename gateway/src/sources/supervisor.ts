import type { Logger } from '../core/log.js';
import type { GatewaySourceContext, Source } from '../core/source.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';

/** Builds a source's context for one run; `fail` reports a run-time failure of that run. */
export type ContextFactory = (source: Source, fail: (err: Error) => void) => GatewaySourceContext;

/** How long a start() may take before the source is shown as down (OPC UA makes its keys in start). */
const START_TIMEOUT_MS = 60_000;

export interface SupervisorOptions {
  backoff: BackoffOptions;
  /** Default 60 s. */
  startTimeoutMs?: number;
  log: Logger;
  now?: () => number;
}

interface Failure {
  /** `start`: start() threw or rejected; `run`: the source reported a failure through ctx.fail. */
  during: 'start' | 'run';
  error: string;
  at: number;
  /** Absent while a hung start() is awaited. */
  nextRetryAt?: number;
}

/**
 * Wraps one source so that whatever it does cannot take the gateway or the other sources down
 * (Signal K's plugin isolation): a start() that throws, or a failure reported through
 * `ctx.fail`, shows as `down` in `/api/health` with the reason and the next retry, and the source
 * is stopped (to release what it half set up) and started again with exponential backoff.
 * `start()` of the supervisor itself never throws.
 */
export class SupervisedSource implements Component {
  readonly name: string;
  private phase: 'stopped' | 'starting' | 'running' | 'failed' = 'stopped';
  /** Bumped on every start attempt and on stop: a `fail` from an older run is ignored. */
  private run = 0;
  private attempts = 0;
  private restarts = 0;
  private runningSince = 0;
  private failure?: Failure;
  private timer?: NodeJS.Timeout;
  /** The start attempt or failure clean-up in progress; stop() waits for it. */
  private busy: Promise<void> = Promise.resolve();
  private stopping = false;
  private readonly now: () => number;

  constructor(
    readonly source: Source,
    private readonly context: ContextFactory,
    private readonly opts: SupervisorOptions,
  ) {
    this.name = source.name;
    this.now = opts.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.busy = this.attempt();
    await this.busy;
  }

  private async attempt(): Promise<void> {
    const run = ++this.run;
    this.phase = 'starting';
    const ctx = this.context(this.source, (err) => this.onRunFailure(run, err));
    let timer: NodeJS.Timeout | undefined;
    let started: Promise<void> | undefined;
    try {
      started = Promise.resolve(this.source.start(ctx));
      const limit = this.opts.startTimeoutMs ?? START_TIMEOUT_MS;
      const hung = new Promise<'hung'>((resolve) => {
        timer = setTimeout(() => resolve('hung'), limit);
      });
      if ((await Promise.race([started, hung])) === 'hung') return this.hung(run, started, limit);
    } catch (err) {
      if (run === this.run && !this.stopping) await this.failed(run, 'start', err);
      return;
    } finally {
      clearTimeout(timer);
    }
    if (run !== this.run || this.stopping) return; // failed or stopped while starting
    this.phase = 'running';
    this.runningSince = this.now();
    if (this.failure) {
      this.opts.log.info({ source: this.name, attempts: this.attempts }, 'source recovered');
      this.failure = undefined;
    }
  }

  /**
   * A start() that did not settle in time: shown as down at once, so the gateway's own start goes
   * on; retried only once that start() settled and the source was stopped, never two at once.
   */
  private hung(run: number, started: Promise<void>, limit: number): void {
    if (run !== this.run || this.stopping) return;
    this.run++;
    this.phase = 'failed';
    const error = `start() did not finish within ${limit} ms`;
    this.failure = { during: 'start', error, at: this.now() };
    this.opts.log.error(
      { source: this.name, limitMs: limit },
      'source start hangs; retrying once it returns',
    );
    const late = (err?: unknown): void => {
      if (this.stopping || this.failure?.error !== error) return;
      this.busy = this.busy.then(() =>
        this.failed(this.run, 'start', err ?? new Error(`${error} (it returned later)`)),
      );
    };
    started.then(() => late(), late);
  }

  private onRunFailure(run: number, err: Error): void {
    if (run !== this.run || this.stopping || this.phase === 'failed') return;
    // A source that ran well for a while starts its backoff again from the shortest delay.
    if (this.phase === 'running' && this.now() - this.runningSince > this.opts.backoff.maxMs)
      this.attempts = 0;
    this.busy = this.busy.then(() => this.failed(run, 'run', err));
  }

  private async failed(run: number, during: Failure['during'], err: unknown): Promise<void> {
    if (run !== this.run || this.stopping) return;
    this.run++; // later reports of this run are stale
    this.phase = 'failed';
    const error = err instanceof Error ? err.message : String(err);
    const delay = backoffDelay(this.attempts++, this.opts.backoff);
    const at = this.now();
    this.failure = { during, error, at, nextRetryAt: at + delay };
    this.opts.log.error(
      { source: this.name, during, err: error, retryInMs: delay, attempt: this.attempts },
      during === 'start' ? 'source failed to start; retrying' : 'source failed; restarting',
    );
    await this.stopSource();
    if (this.stopping) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopping) return;
      this.restarts++;
      this.busy = this.busy.then(() => this.attempt());
    }, delay);
    this.timer.unref();
  }

  private async stopSource(): Promise<void> {
    try {
      await this.source.stop();
    } catch (err) {
      this.opts.log.warn({ source: this.name, err }, 'source failed to stop cleanly');
    }
  }

  async stop(): Promise<void> {
    if (this.phase === 'stopped') return;
    this.stopping = true;
    this.run++;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.busy;
    await this.stopSource();
    this.phase = 'stopped';
  }

  health(): ComponentHealth {
    const f = this.failure;
    if (this.phase === 'failed' && f)
      return {
        state: 'down',
        detail: `${f.during === 'start' ? 'start failed' : 'failed'}: ${f.error}`,
        since: new Date(f.at).toISOString(),
        ...(f.nextRetryAt !== undefined ? { nextRetryAt: new Date(f.nextRetryAt).toISOString() } : {}),
        attempts: this.attempts,
      };
    if (this.phase === 'stopped') return { state: 'stopped' };
    if (this.phase === 'starting' && f)
      return { state: 'starting', detail: `retrying after: ${f.error}`, attempts: this.attempts };
    try {
      const h = this.source.health();
      return this.restarts > 0 ? { ...h, restarts: this.restarts } : h;
    } catch (err) {
      return { state: 'down', detail: `health() threw: ${(err as Error).message}` };
    }
  }
}
