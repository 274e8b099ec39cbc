import { describe, expect, it } from 'vitest';
import { classify, serverMessage } from '../../gateway/src/sinks/influx/verdict.js';

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
