import { createHmac, timingSafeEqual } from 'node:crypto';

/** The signature header's value: `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`. */
export function sign(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export type VerifyFailure = 'missing' | 'malformed' | 'stale' | 'mismatch';

export type VerifyResult = { ok: true } | { ok: false; reason: VerifyFailure; message: string };

/**
 * Checks a signed request: the timestamp (Unix seconds) within `toleranceSec` of `nowMs`, and the
 * signature made with one of `secrets` (several while a secret is rotated), compared in constant time.
 */
export function verify(
  secrets: readonly string[],
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  toleranceSec: number,
  nowMs: number,
): VerifyResult {
  const { timestamp, signature } = headers;
  if (!timestamp || !signature)
    return {
      ok: false,
      reason: 'missing',
      message: `missing ${!timestamp ? 'X-Gateway-Timestamp' : 'X-Gateway-Signature'} header`,
    };
  if (!/^\d{1,12}$/.test(timestamp))
    return { ok: false, reason: 'malformed', message: 'X-Gateway-Timestamp must be Unix seconds' };
  const m = /^sha256=([0-9a-f]{64})$/.exec(signature);
  if (!m)
    return { ok: false, reason: 'malformed', message: 'X-Gateway-Signature must be sha256=<64 hex digits>' };
  const skew = Math.abs(nowMs / 1000 - Number(timestamp));
  if (skew > toleranceSec)
    return {
      ok: false,
      reason: 'stale',
      message: `X-Gateway-Timestamp is ${Math.round(skew)} s from now (at most ${toleranceSec} s)`,
    };
  const given = Buffer.from(m[1]!, 'hex');
  let match = false;
  for (const s of secrets) {
    const want = Buffer.from(sign(s, timestamp, body).slice(7), 'hex');
    if (timingSafeEqual(want, given)) match = true;
  }
  return match ? { ok: true } : { ok: false, reason: 'mismatch', message: 'signature does not match' };
}
