/**
 * Exponential backoff for restarting a failed source: `minMs` after the first failure, doubling
 * up to `maxMs`, with "equal jitter" (half fixed, half random) so sources that failed together
 * do not retry in lockstep. Kept here, tiny, until one shared helper replaces the copies.
 */
export interface BackoffOptions {
  minMs: number;
  maxMs: number;
  /** 0..1; tests pass a fixed value. */
  random?: () => number;
}

/** The delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const cap = Math.min(opts.maxMs, opts.minMs * 2 ** Math.min(attempt, 30));
  const r = (opts.random ?? Math.random)();
  return Math.round(cap / 2 + (r * cap) / 2);
}
