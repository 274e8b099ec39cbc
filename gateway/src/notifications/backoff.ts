/**
 * Delay before retry number `attempt` (1 = the first retry): exponential from `minMs`, capped at
 * `maxMs`, with "equal jitter" (half fixed, half random) so many receivers coming back at once are
 * not hit in lockstep. `random` is injectable for tests.
 */
export function backoffMs(
  attempt: number,
  minMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * A Retry-After header (delay seconds or an HTTP date) in milliseconds from `nowMs`; undefined when
 * absent or unreadable. Capped at `capMs` so a receiver cannot park the queue for days.
 */
export function retryAfterMs(
  header: string | null | undefined,
  nowMs: number,
  capMs: number,
): number | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  const h = header.trim();
  let ms: number;
  if (/^\d+$/.test(h)) ms = Number(h) * 1000;
  else {
    const at = Date.parse(h);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - nowMs);
  }
  return Math.min(ms, capMs);
}

/**
 * Statuses by which a receiver refuses this one event for good (its content: malformed, in conflict,
 * too large, of a type it does not take). Every other failure may be the receiver's or its
 * configuration's (a wrong secret: 401/403, a wrong URL: 404/405/410, a redirect) and is retried.
 */
const REFUSES_EVENT = new Set([400, 409, 413, 415, 422]);

/**
 * What an HTTP status means for a delivery: done, try again, or park it. A misconfigured receiver
 * (401, 404, …) holds its line and is retried with backoff, so no later event overtakes the one it
 * refused; only a refusal of the event itself parks it as dead and lets the line move on.
 */
export function verdictOf(status: number): 'delivered' | 'retry' | 'dead' {
  if (status >= 200 && status < 300) return 'delivered';
  return REFUSES_EVENT.has(status) ? 'dead' : 'retry';
}
