/**
 * The one retry/backoff rule of the gateway (InfluxDB writes, ticket notifications, MQTT reconnects):
 * capped exponential backoff with "equal jitter" (half of the step fixed, half random), so many
 * gateways or queues coming back after the same outage spread out instead of retrying in lockstep,
 * and a server's Retry-After honoured on top. docs/adr/0021-one-backoff.md says why this shape.
 */

/** How long retries wait: the first step and the longest wait (the settings' `minMs`/`maxMs`). */
export interface BackoffPolicy {
  readonly minMs: number;
  readonly maxMs: number;
}

export interface RetryDelayOptions {
  /** The server's Retry-After, in ms (parseRetryAfter); absent: backoff alone. */
  retryAfterMs?: number | undefined;
  /**
   * The longest Retry-After honoured (default `maxMs`): a server cannot park the caller for days.
   * A caller whose waits hold nothing up for others may allow more than its own backoff.
   */
  retryAfterCapMs?: number;
  /** Injectable for tests. */
  random?: () => number;
}

/**
 * The wait before retry number `attempt` (1 = the first retry): the step doubles from `minMs` up to
 * `maxMs`; the wait is between half the step and the step, and never below `minMs` nor above `maxMs`.
 */
export function backoffMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const { minMs, maxMs } = policy;
  // The exponent is bounded so 2 ** n stays finite for any attempt count.
  const step = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.max(minMs, Math.min(maxMs, Math.round(step / 2 + (random() * step) / 2)));
}

/**
 * The wait before retry number `attempt`: the backoff, or the server's Retry-After when that is longer
 * (never retried sooner than asked), the latter capped at `retryAfterCapMs`.
 */
export function retryDelayMs(attempt: number, policy: BackoffPolicy, opts: RetryDelayOptions = {}): number {
  const backoff = backoffMs(attempt, policy, opts.random);
  if (opts.retryAfterMs === undefined) return backoff;
  return Math.max(backoff, Math.min(opts.retryAfterMs, opts.retryAfterCapMs ?? policy.maxMs));
}

/**
 * An HTTP `Retry-After` (delay-seconds, fractions accepted, or an HTTP date) in ms from `nowMs`;
 * undefined when absent or unreadable, 0 for a date already past.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  // An HTTP date names its month ("Thu, 01 Jan 2026 00:00:30 GMT"); without that check Date.parse
  // would read "-5" as the year -5, a date long past, and retry at once.
  if (!/[A-Za-z]/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
