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

/** `Retry-After` as delay-seconds or an HTTP date; undefined when unreadable. */
export function parseRetryAfter(value: string, now = Date.now()): number | undefined {
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * Capped exponential backoff with "equal jitter": half of the step is fixed, half random, so many
 * gateways retrying after the same outage spread out, yet no retry comes sooner than `minMs`.
 * `attempt` counts from 1.
 */
export function backoffMs(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const step = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.max(minMs, Math.min(maxMs, Math.round(step / 2 + (random() * step) / 2)));
}

/**
 * The wait before the next try. A server's `Retry-After` is honoured (never retried sooner) up to
 * `maxMs`: the operator's longest backoff bounds how long readings wait, and a server that still
 * wants more time simply answers 429 again.
 */
export function retryDelayMs(
  attempt: number,
  minMs: number,
  maxMs: number,
  retryAfterMs?: number,
  random = Math.random,
): number {
  const backoff = backoffMs(attempt, minMs, maxMs, random);
  return retryAfterMs === undefined ? backoff : Math.max(backoff, Math.min(retryAfterMs, maxMs));
}
