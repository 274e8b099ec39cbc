import { describe, expect, it } from 'vitest';
import { hashToken, TokenStore, type TokenBackend, type TokenRecord } from '../../gateway/src/http/auth.js';

/** A backend over a list, recording what it was asked (pure logic: the real one is shared-tokens.ts). */
function backend(rows: TokenRecord[], fail = false) {
  const asked: string[] = [];
  const b: TokenBackend = {
    byHash: async (hash) => {
      asked.push(hash);
      if (fail) throw new Error('connection refused');
      return rows.find((r) => r.hash === hash);
    },
    isLive: async (name) => {
      if (fail) throw new Error('connection refused');
      return rows.some((r) => r.name === name);
    },
  };
  return { b, asked };
}

describe('token lookup with a shared backend (cluster mode, ADR 0165)', () => {
  const T0 = 1_000_000;

  it("answers the config's tokens from memory without asking the backend", async () => {
    const store = new TokenStore(() => T0);
    store.add('admin', 'admin', 'config-secret');
    const { b, asked } = backend([]);
    store.useBackend(b);
    expect(await store.lookup('config-secret')).toMatchObject({ name: 'admin', role: 'admin' });
    expect(await store.isLive('admin')).toBe(true);
    expect(asked).toEqual([]);
  });

  it('asks the backend by hash, never the token, and refuses an expired token', async () => {
    let now = T0;
    const store = new TokenStore(() => now);
    const { b, asked } = backend([
      { name: 'scada', role: 'engineer', hash: hashToken('api-secret'), expiresAt: T0 + 10 },
    ]);
    store.useBackend(b);
    expect(await store.lookup('api-secret')).toMatchObject({ name: 'scada', role: 'engineer' });
    expect(asked).toEqual([hashToken('api-secret')]);
    expect(await store.lookup('other')).toBeUndefined();
    now = T0 + 10;
    expect(await store.lookup('api-secret')).toBeUndefined();
    expect(await store.isLive('scada')).toBe(true);
  });

  it('a backend that cannot be read rejects (the caller answers 503), it never says "unknown"', async () => {
    const store = new TokenStore(() => T0);
    store.useBackend(backend([], true).b);
    await expect(store.lookup('api-secret')).rejects.toThrow(/connection refused/);
    await expect(store.isLive('scada')).rejects.toThrow(/connection refused/);
    store.useBackend(undefined);
    expect(await store.lookup('api-secret')).toBeUndefined();
  });
});
