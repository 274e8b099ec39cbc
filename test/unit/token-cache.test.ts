import { describe, expect, it } from 'vitest';
import { Budget, Lru, TokenCache } from '../../gateway/src/http/token-cache.js';

const LIMITS = {
  positiveMs: 10_000,
  negativeMs: 2_000,
  outageMs: 300_000,
  maxEntries: 3,
  unknownPerSecond: 50,
};
const rec = (name: string) => ({ name, role: 'viewer' as const, hash: name });

describe('token cache (ADR 0175)', () => {
  it('an LRU map keeps the most recently used entries up to its bound', () => {
    const l = new Lru<number>(2);
    l.set('a', 1);
    l.set('b', 2);
    l.get('a');
    l.set('c', 3);
    expect([...l.entries()].map(([k]) => k)).toEqual(['a', 'c']);
    expect(l.size).toBe(2);
  });

  it('a miss lasts negativeMs; the cache holds at most maxEntries misses', () => {
    const c = new TokenCache(LIMITS);
    for (const h of ['h1', 'h2', 'h3', 'h4']) c.answer(h, undefined, 0, c.ask());
    expect(c.sizes.missed).toBe(3);
    expect(c.isMiss('h1', 1)).toBe(false);
    expect(c.isMiss('h4', 1_999)).toBe(true);
    expect(c.isMiss('h4', 2_000)).toBe(false);
  });

  it('a known token is fresh for positiveMs since its confirmation and after `since`, kept for an outage for outageMs', () => {
    const c = new TokenCache(LIMITS);
    c.answer('t', rec('scada'), 1_000, c.ask());
    expect(c.fresh('t', 5_000, 0)).toMatchObject({ name: 'scada' });
    expect(c.fresh('t', 11_000, 0)).toBeUndefined();
    expect(c.fresh('t', 5_000, 1_001)).toBeUndefined();
    expect(c.lastKnown('t', 300_999)).toMatchObject({ name: 'scada' });
    expect(c.lastKnown('t', 301_000)).toBeUndefined();
  });

  it('a revocation forgets the name at once; an answer asked before it is not stored after it', () => {
    const c = new TokenCache(LIMITS);
    c.answer('t', rec('scada'), 0, c.ask());
    const asked = c.ask();
    c.revoked('scada');
    expect(c.lastKnown('t', 1)).toBeUndefined();
    c.answer('t', rec('scada'), 1, asked);
    expect(c.lastKnown('t', 2)).toBeUndefined();
    // A creation does not void a live answer, only a miss.
    const before = c.ask();
    c.created();
    c.answer('t', rec('scada'), 3, before);
    c.answer('m', undefined, 3, before);
    expect(c.lastKnown('t', 4)).toMatchObject({ name: 'scada' });
    expect(c.isMiss('m', 4)).toBe(false);
  });

  it('a creation drops every cached miss', () => {
    const c = new TokenCache(LIMITS);
    c.answer('new', undefined, 0, c.ask());
    c.created();
    expect(c.isMiss('new', 1)).toBe(false);
  });

  it('a budget allows `rate` takes at once, then `rate` per second', () => {
    const b = new Budget(3, 0);
    expect([1, 2, 3, 4].map(() => b.take(0))).toEqual([true, true, true, false]);
    expect(b.take(300)).toBe(false);
    expect(b.take(340)).toBe(true);
    expect(b.take(10_000)).toBe(true);
    expect([1, 2, 3].map(() => b.take(10_000))).toEqual([true, true, false]);
  });
});
