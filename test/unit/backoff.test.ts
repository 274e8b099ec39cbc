import { describe, expect, it } from 'vitest';
import { backoffMs, parseRetryAfter, retryDelayMs } from '../../gateway/src/core/backoff.js';

/** The one retry rule of InfluxDB writes, notifications and MQTT reconnects (gateway/src/core/backoff.ts). */
const NOW = Date.parse('2026-01-01T00:00:00Z');
const at = (r: number) => (): number => r;

describe('backoffMs', () => {
  it('doubles from minMs up to maxMs, the wait within [half the step, the step]', () => {
    const p = { minMs: 1000, maxMs: 60_000 };
    expect(backoffMs(2, p, at(0))).toBe(1000);
    expect(backoffMs(2, p, at(1))).toBe(2000);
    expect(backoffMs(4, p, at(0))).toBe(4000);
    expect(backoffMs(4, p, at(1))).toBe(8000);
    expect(backoffMs(20, p, at(1))).toBe(60_000);
    expect(backoffMs(10_000, p, at(0.5))).toBe(45_000);
    for (let a = 2; a < 40; a++) {
      const d = backoffMs(a, { minMs: 250, maxMs: 30_000 });
      const step = Math.min(30_000, 250 * 2 ** (a - 1));
      expect(d).toBeGreaterThanOrEqual(step / 2);
      expect(d).toBeLessThanOrEqual(step);
    }
  });

  it('never waits less than minMs nor more than maxMs, whatever the jitter or attempt', () => {
    for (const r of [0, 0.5, 0.999, 1]) {
      const seq = [0, 1, 2, 3, 5, 8, 20, 100, 1e9].map((a) =>
        backoffMs(a, { minMs: 500, maxMs: 60_000 }, at(r)),
      );
      for (const d of seq) {
        expect(d).toBeGreaterThanOrEqual(500);
        expect(d).toBeLessThanOrEqual(60_000);
        expect(Number.isFinite(d)).toBe(true);
      }
      for (let i = 1; i < seq.length; i++) expect(seq[i]!).toBeGreaterThanOrEqual(seq[i - 1]!);
    }
    // The first retry waits minMs exactly: the jitter's lower half would fall below it.
    expect(backoffMs(1, { minMs: 500, maxMs: 60_000 }, at(0))).toBe(500);
    expect(backoffMs(1, { minMs: 500, maxMs: 60_000 }, at(1))).toBe(500);
  });

  it('spreads retries: random draws give different waits', () => {
    const waits = new Set(Array.from({ length: 50 }, () => backoffMs(6, { minMs: 1000, maxMs: 60_000 })));
    expect(waits.size).toBeGreaterThan(10);
  });
});

describe('retryDelayMs', () => {
  const p = { minMs: 50, maxMs: 60_000 };
  it('is the backoff without a Retry-After', () => {
    expect(retryDelayMs(1, p, { random: at(0) })).toBe(50);
    expect(retryDelayMs(3, p, { random: at(1) })).toBe(200);
  });

  it('never retries sooner than Retry-After, capped at maxMs by default', () => {
    expect(retryDelayMs(1, p, { retryAfterMs: 1000, random: at(0) })).toBe(1000);
    expect(retryDelayMs(1, { minMs: 50, maxMs: 10_000 }, { retryAfterMs: 3_600_000, random: at(0) })).toBe(
      10_000,
    );
    // A Retry-After of 0 does not make the caller spin: the backoff still holds.
    expect(retryDelayMs(1, p, { retryAfterMs: 0, random: at(0) })).toBe(50);
    // A shorter Retry-After than the backoff: the backoff wins.
    expect(retryDelayMs(5, p, { retryAfterMs: 100, random: at(1) })).toBe(800);
  });

  it('honours a Retry-After beyond maxMs up to its own cap', () => {
    const q = { minMs: 100, maxMs: 400 };
    expect(retryDelayMs(1, q, { retryAfterMs: 30_000, retryAfterCapMs: 3_600_000, random: at(0) })).toBe(
      30_000,
    );
    expect(retryDelayMs(1, q, { retryAfterMs: 86_400_000, retryAfterCapMs: 3_600_000, random: at(0) })).toBe(
      3_600_000,
    );
  });
});

describe('parseRetryAfter', () => {
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('1', NOW)).toBe(1000);
    expect(parseRetryAfter(' 120 ', NOW)).toBe(120_000);
    expect(parseRetryAfter('0.5', NOW)).toBe(500);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter(new Date(NOW + 30_000).toUTCString(), NOW)).toBe(30_000);
  });

  it('gives 0 for a date already past and nothing for garbage or absence', () => {
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', NOW)).toBe(0);
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
  });
});
