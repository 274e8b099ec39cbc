import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../gateway/src/gateway.js';
import { testConfig } from '../fixtures/gateway.js';

/**
 * `http.trustProxy`: the sign-in limit per address counts the address named in X-Forwarded-For only
 * when the request comes from a listed proxy. Two gateways on loopback: one trusting 127.0.0.1 (the
 * test plays the proxy), one trusting nothing (the default), each with a lock after 3 failures per
 * address and a high limit per account so that only the address lock can answer 429.
 */
const signInLimits = {
  maxFailuresPerAccount: 1000,
  maxFailuresPerAddress: 3,
  windowSeconds: 3600,
  lockSeconds: 3600,
};
let trusting: Gateway;
let plain: Gateway;

async function start(trustProxy: string[] | undefined): Promise<Gateway> {
  const cfg = testConfig({
    influx: { enabled: false },
    accounts: { signIn: signInLimits },
    ...(trustProxy ? { http: { trustProxy } } : {}),
  });
  const gw = new Gateway(cfg, pino({ level: 'silent' }));
  await gw.start();
  return gw;
}

async function wrongPassword(gw: Gateway, forwardedFor: string): Promise<number> {
  const res = await fetch(`${gw.httpUrl}/api/session`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      origin: gw.httpUrl!,
      'x-forwarded-for': forwardedFor,
    },
    body: JSON.stringify({ username: 'nobody', password: 'guess-guess-guess' }),
  });
  await res.text();
  return res.status;
}

beforeAll(async () => {
  [trusting, plain] = await Promise.all([start(['127.0.0.1', '::1']), start(undefined)]);
}, 60_000);
afterAll(async () => {
  for (const gw of [trusting, plain]) {
    await gw?.stop();
    if (gw) rmSync(gw.cfg.dataDir, { recursive: true, force: true });
  }
});

describe('http.trustProxy and the sign-in limit per address', () => {
  it('from a trusted proxy, each forwarded client is counted on its own', async () => {
    const a: number[] = [];
    for (let i = 0; i < 4; i++) a.push(await wrongPassword(trusting, '203.0.113.7'));
    expect(a).toEqual([401, 401, 401, 429]);
    // Another client behind the same proxy is not locked out by the first one's guesses.
    expect(await wrongPassword(trusting, '203.0.113.8')).toBe(401);
  });

  it('without a trusted proxy, X-Forwarded-For is ignored: the peer address is counted', async () => {
    const a: number[] = [];
    // A guesser changing the header at each try still hits the lock of its real address.
    for (let i = 0; i < 4; i++) a.push(await wrongPassword(plain, `198.51.100.${i}`));
    expect(a).toEqual([401, 401, 401, 429]);
    expect(await wrongPassword(plain, '198.51.100.200')).toBe(429);
  });

  it('refuses an entry that is not an address or a CIDR', () => {
    expect(() => testConfig({ http: { trustProxy: ['proxy.example'] } })).toThrow(/trustProxy/);
  });
});
