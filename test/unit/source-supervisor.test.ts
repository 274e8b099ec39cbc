import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import type { GatewayConfig } from '../../gateway/src/config/schema.js';
import type { Source, SourceContext } from '../../gateway/src/core/source.js';
import type { ComponentHealth } from '../../gateway/src/core/types.js';
import { backoffDelay } from '../../gateway/src/sources/backoff.js';
import { loadSources } from '../../gateway/src/sources/registry.js';
import { SupervisedSource } from '../../gateway/src/sources/supervisor.js';
import { fakeSourceContext } from '../fixtures/source-context.js';

const log = pino({ level: 'silent' });
/** Jitter off: every delay is the cap (1 s, 2 s, 4 s ... up to 8 s). */
const backoff = { minMs: 1000, maxMs: 8000, random: () => 1 };

/** A source scripted by the test: `startErrors` are thrown by the next start() calls, in order. */
class ScriptedSource implements Source {
  readonly name = 'scripted';
  starts = 0;
  stops = 0;
  ctx?: SourceContext;
  running = false;
  constructor(
    private readonly startErrors: Array<Error | undefined> = [],
    private readonly sync = false,
  ) {}
  start(ctx: SourceContext): Promise<void> {
    this.starts++;
    this.ctx = ctx;
    const err = this.startErrors.shift();
    if (err && this.sync) throw err; // a start() that is not async and throws at once
    if (err) return Promise.reject(err);
    this.running = true;
    return Promise.resolve();
  }
  async stop(): Promise<void> {
    this.stops++;
    this.running = false;
  }
  health(): ComponentHealth {
    return { state: this.running ? 'ok' : 'stopped', starts: this.starts };
  }
}

function supervise(source: Source): SupervisedSource {
  return new SupervisedSource(source, (_s, fail) => ({ ...fakeSourceContext(), fail }), {
    backoff,
    log,
    now: () => Date.now(),
  });
}

describe('source supervisor', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports a source that throws in start() as down with the reason and the next retry, and retries it', async () => {
    const src = new ScriptedSource([new Error('port 502 refused')]);
    const sup = supervise(src);
    await expect(sup.start()).resolves.toBeUndefined();
    expect(sup.health()).toEqual({
      state: 'down',
      detail: 'start failed: port 502 refused',
      since: '2026-01-01T00:00:00.000Z',
      nextRetryAt: '2026-01-01T00:00:01.000Z',
      attempts: 1,
    });
    // What the failed start set up is released before the retry.
    expect(src.stops).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(src.starts).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(src.starts).toBe(2);
    expect(sup.health()).toEqual({ state: 'ok', starts: 2, restarts: 1 });
    await sup.stop();
    expect(sup.health()).toEqual({ state: 'stopped' });
  });

  it('catches a start() that throws synchronously', async () => {
    const src = new ScriptedSource([new Error('bad serial port')], true);
    const sup = supervise(src);
    await sup.start();
    expect(sup.health()).toMatchObject({ state: 'down', detail: 'start failed: bad serial port' });
    await sup.stop();
  });

  it('doubles the delay after each failed attempt up to the maximum', async () => {
    const errors = Array.from({ length: 6 }, (_, i) => new Error(`attempt ${i + 1}`));
    const src = new ScriptedSource(errors);
    const sup = supervise(src);
    await sup.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const h = sup.health();
      delays.push(Date.parse(h.nextRetryAt as string) - Date.now());
      await vi.advanceTimersByTimeAsync(delays[i]!);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(src.starts).toBe(6);
    await vi.advanceTimersByTimeAsync(8000);
    expect(src.starts).toBe(7);
    expect(sup.health().state).toBe('ok');
    await sup.stop();
  });

  it('restarts a source that reports a failure at run time through ctx.fail', async () => {
    const src = new ScriptedSource();
    const sup = supervise(src);
    await sup.start();
    expect(sup.health()).toEqual({ state: 'ok', starts: 1 });
    const oldCtx = src.ctx!;
    oldCtx.fail!(new Error('listener closed'));
    await vi.advanceTimersByTimeAsync(0);
    expect(sup.health()).toMatchObject({ state: 'down', detail: 'failed: listener closed' });
    expect(src.stops).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(src.starts).toBe(2);
    expect(sup.health().state).toBe('ok');
    // A late report from the run that already failed does not stop the new one.
    oldCtx.fail!(new Error('late echo'));
    await vi.advanceTimersByTimeAsync(0);
    expect(sup.health().state).toBe('ok');
    expect(src.stops).toBe(1);
    await sup.stop();
  });

  it('stops for good while waiting to retry', async () => {
    const src = new ScriptedSource([new Error('down')]);
    const sup = supervise(src);
    await sup.start();
    await sup.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(src.starts).toBe(1);
    expect(sup.health()).toEqual({ state: 'stopped' });
  });

  it('keeps one failing source from touching another', async () => {
    const bad = supervise(new ScriptedSource([new Error('a'), new Error('b'), new Error('c')]));
    const good = supervise(new ScriptedSource());
    await bad.start();
    await good.start();
    await vi.advanceTimersByTimeAsync(3000);
    expect(bad.health().state).toBe('down');
    expect(good.health()).toEqual({ state: 'ok', starts: 1 });
    await Promise.all([bad.stop(), good.stop()]);
  });

  it('shows a start() that hangs as down without holding up the caller, and retries once it returned', async () => {
    let finish: (() => void) | undefined;
    const src = new ScriptedSource();
    const realStart = src.start.bind(src);
    src.start = (ctx) => {
      if (src.starts === 0) {
        src.starts++;
        return new Promise<void>((resolve) => (finish = resolve)); // a connect that never times out
      }
      return realStart(ctx);
    };
    const sup = new SupervisedSource(src, (_s, fail) => ({ ...fakeSourceContext(), fail }), {
      backoff,
      log,
      startTimeoutMs: 5000,
    });
    let returned = false;
    const starting = sup.start().then(() => (returned = true));
    await vi.advanceTimersByTimeAsync(4999);
    expect(returned).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await starting;
    expect(sup.health()).toEqual({
      state: 'down',
      detail: 'start failed: start() did not finish within 5000 ms',
      since: '2026-01-01T00:00:05.000Z',
      attempts: 0,
    });
    // No second start while the first is still pending.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(src.starts).toBe(1);
    finish!();
    await vi.advanceTimersByTimeAsync(0);
    expect(src.stops).toBe(1);
    expect(sup.health()).toMatchObject({ state: 'down', nextRetryAt: '2026-01-01T00:01:06.000Z' });
    await vi.advanceTimersByTimeAsync(1000);
    expect(src.starts).toBe(2);
    expect(sup.health().state).toBe('ok');
    await sup.stop();
  });

  it('shows a health() that throws as down instead of failing the health endpoint', async () => {
    const src = new ScriptedSource();
    src.health = () => {
      throw new Error('no state yet');
    };
    const sup = supervise(src);
    await sup.start();
    expect(sup.health()).toEqual({ state: 'down', detail: 'health() threw: no state yet' });
    await sup.stop();
  });
});

describe('backoff', () => {
  it('is half fixed, half random, capped', () => {
    expect(backoffDelay(0, { minMs: 100, maxMs: 1000, random: () => 0 })).toBe(50);
    expect(backoffDelay(3, { minMs: 100, maxMs: 1000, random: () => 1 })).toBe(800);
    expect(backoffDelay(40, { minMs: 100, maxMs: 1000, random: () => 0.5 })).toBe(750);
  });
});

describe('source registry', () => {
  it('turns an adapter whose factory throws into a source that reports why, and keeps the others', async () => {
    const ok = new ScriptedSource();
    const sources = await loadSources({} as GatewayConfig, {
      broken: async () => {
        throw new Error("Cannot find package 'serialport'");
      },
      fine: async () => [ok],
    });
    expect(sources.map((s) => s.name)).toEqual(['broken', 'scripted']);
    const sup = supervise(sources[0]!);
    await sup.start();
    expect(sup.health()).toMatchObject({
      state: 'down',
      detail: "start failed: adapter could not be loaded: Cannot find package 'serialport'",
    });
    await sup.stop();
  });
});
