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
