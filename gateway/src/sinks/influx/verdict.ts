import { parseRetryAfter } from '../../core/backoff.js';

/**
 * What to do with a write request's answer. Pure, so the policy is unit-tested without a server.
 *
 * - ok: the server has the lines; remove them from the outbox.
 * - retry: the server (or the network) is unwell; the same lines are sent again after a backoff.
 * - split: the body is too large (413); send it in halves.
 * - park: the server will never accept these lines (400 bad line protocol or field type conflict,
 *   422 outside retention); they are set aside with the server's reason so the rest flows on.
 * - alarm: the configuration is wrong (401/403 bad credentials, 404 no such database or bucket,
 *   any other unexpected answer). Nothing is dropped: the lines wait and the write is retried at
 *   the longest backoff until an operator fixes it.
 */
export type Verdict =
  | { kind: 'ok' }
  | { kind: 'retry'; reason: string; retryAfterMs?: number }
  | { kind: 'split'; reason: string }
  | { kind: 'park'; reason: string }
  | { kind: 'alarm'; reason: string; missingDatabase: boolean };

export function classify(status: number, body: string, retryAfter?: string, now = Date.now()): Verdict {
  if (status >= 200 && status < 300) return { kind: 'ok' };
  const reason = `${status} ${serverMessage(body)}`.trim();
  if (status === 429 || status === 408 || status >= 500) {
    const retryAfterMs = retryAfter === undefined ? undefined : parseRetryAfter(retryAfter, now);
    return retryAfterMs === undefined ? { kind: 'retry', reason } : { kind: 'retry', reason, retryAfterMs };
  }
  if (status === 413) return { kind: 'split', reason };
  if (status === 400 || status === 422) return { kind: 'park', reason };
  return { kind: 'alarm', reason, missingDatabase: status === 404 && /database not found/i.test(body) };
}

/** The human part of an error body: InfluxDB 1.x `{"error"}`, 2.x `{"code","message"}`, or text. */
export function serverMessage(body: string): string {
  const text = body.trim();
  if (text.startsWith('{')) {
    try {
      const json = JSON.parse(text) as { error?: unknown; message?: unknown };
      const msg = json.error ?? json.message;
      if (typeof msg === 'string') return msg.slice(0, 1000);
    } catch {
      // Not JSON after all: fall through to the raw text.
    }
  }
  return text.slice(0, 1000);
}
