import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  classify,
  parseRetryAfter,
  retryDelayMs,
  serverMessage,
} from '../../gateway/src/sinks/influx/verdict.js';

describe('classify', () => {
  it.each([
    [200, 'ok'],
    [204, 'ok'],
    [400, 'park'],
    [422, 'park'],
    [413, 'split'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [401, 'alarm'],
    [403, 'alarm'],
    [404, 'alarm'],
    [405, 'alarm'],
    [301, 'alarm'],
  ])('%i → %s', (status, kind) => {
    expect(classify(status, '').kind).toBe(kind);
  });

  it('keeps the server reason of a refused batch', () => {
    const body =
      '{"error":"partial write: field type conflict: input field \\"f\\" on measurement \\"m\\" is type boolean, already exists as type float dropped=1"}';
    expect(classify(400, body)).toEqual({
      kind: 'park',
      reason:
        '400 partial write: field type conflict: input field "f" on measurement "m" is type boolean, already exists as type float dropped=1',
    });
  });

  it('recognises a missing InfluxDB 1.x database, and only that 404', () => {
    expect(classify(404, '{"error":"database not found: \\"x\\""}')).toMatchObject({
      kind: 'alarm',
      missingDatabase: true,
    });
    expect(classify(404, '{"code":"not found","message":"bucket \\"b\\" not found"}')).toMatchObject({
      kind: 'alarm',
      missingDatabase: false,
    });
  });

  it('passes Retry-After on for retryable answers', () => {
    expect(classify(429, '', '3')).toEqual({ kind: 'retry', reason: '429', retryAfterMs: 3000 });
    expect(classify(503, 'busy', 'junk')).toEqual({ kind: 'retry', reason: '503 busy' });
  });
});

describe('serverMessage', () => {
  it('reads 1.x and 2.x error bodies and plain text', () => {
    expect(serverMessage('{"error":"boom"}')).toBe('boom');
    expect(serverMessage('{"code":"invalid","message":"bad"}')).toBe('bad');
    expect(serverMessage('  <html>gateway timeout</html>\n')).toBe('<html>gateway timeout</html>');
    expect(serverMessage('{not json')).toBe('{not json');
    expect(serverMessage('x'.repeat(5000))).toHaveLength(1000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
    expect(parseRetryAfter('0.5', now)).toBe(500);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('backoff', () => {
  it('grows exponentially within [minMs, maxMs] whatever the jitter', () => {
    for (const r of [0, 0.5, 0.999]) {
      const random = (): number => r;
      const seq = [1, 2, 3, 4, 5, 6, 7, 8, 20, 100].map((a) => backoffMs(a, 500, 60_000, random));
      for (const d of seq) {
        expect(d).toBeGreaterThanOrEqual(500);
        expect(d).toBeLessThanOrEqual(60_000);
      }
      for (let i = 1; i < seq.length; i++) expect(seq[i]!).toBeGreaterThanOrEqual(seq[i - 1]!);
    }
    expect(backoffMs(1, 500, 60_000, () => 0)).toBe(500);
    expect(backoffMs(4, 500, 60_000, () => 1)).toBe(4000);
    expect(backoffMs(100, 500, 60_000, () => 1)).toBe(60_000);
  });

  it('never retries sooner than Retry-After, up to maxMs', () => {
    expect(retryDelayMs(1, 50, 60_000, 1000, () => 0)).toBe(1000);
    expect(retryDelayMs(1, 50, 60_000, undefined, () => 0)).toBe(50);
    expect(retryDelayMs(1, 50, 10_000, 3_600_000, () => 0)).toBe(10_000);
  });
});
