import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenStore } from '../../gateway/src/http/auth.js';
import { SharedTokenDb, TOKEN_STEPS } from '../../gateway/src/http/shared-tokens.js';
import type { TokenCacheLimits } from '../../gateway/src/http/token-cache.js';
import { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { waitFor } from '../fixtures/ports.js';
import { startPostgres, type Postgres } from '../fixtures/postgres.js';

const log = pino({ level: 'silent' });
const CONFIG_TOKENS = () => [{ name: 'admin', role: 'admin' as const }];

/**
 * The cache of the shared token table (ADR 0175) on a real PostgreSQL with its LISTEN connection:
 * unknown bearers cost almost no queries, a revocation on one instance is heard by the other at
 * once, and during an outage a recently confirmed token keeps working while a revoked one does not.
 */
describe('shared token cache on PostgreSQL', () => {
  let pg: Postgres;
  let url: string;
  let shared: SharedDb;
  const started: SharedTokenDb[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase('tokens_cache');
    shared = new SharedDb({ dataDir: '/nonexistent', postgresUrl: url, log }, TOKEN_STEPS);
    await shared.start();
  }, 120_000);

  afterAll(async () => {
    for (const d of started) await d.stop();
    await shared?.stop();
    await pg?.close();
  });

  /** An instance on the shared table; `skew` moves its clock (the outage bound). */
  async function instance(cache?: Partial<TokenCacheLimits>) {
    const clock = { skew: 0 };
    const tokens = new TokenStore(() => Date.now() + clock.skew);
    const db = new SharedTokenDb({
      db: () => shared.db,
      tokens,
      configTokens: CONFIG_TOKENS,
      log,
      listenUrl: url,
      flushMs: 3_600_000,
      now: () => Date.now() + clock.skew,
      cache,
    });
    await db.start();
    started.push(db);
    expect(db.stats().listening).toBe(true);
    return { tokens, db, clock };
  }

  it('an unknown bearer sent 100 times costs at most a handful of queries; a known one too', async () => {
    const a = await instance();
    const unknown = randomBytes(24).toString('base64url');
    const before = a.db.stats().queries;
    for (let i = 0; i < 100; i++) expect(await a.tokens.lookup(unknown)).toBeUndefined();
    // One query, then the miss is cached for 2 s (a slow machine may need a second or two).
    expect(a.db.stats().queries - before).toBeLessThanOrEqual(3);
    expect(a.db.stats().missCached).toBeGreaterThanOrEqual(97);

    const { secret } = await a.db.create({ name: 'poller', role: 'viewer' }, 'admin');
    const mid = a.db.stats().queries;
    for (let i = 0; i < 100; i++) expect(await a.tokens.lookup(secret)).toMatchObject({ name: 'poller' });
    expect(a.db.stats().queries - mid).toBeLessThanOrEqual(3);
  });

  it('made-up bearers that all differ: at most `unknownPerSecond` queries, then 503; a known token still works', async () => {
    const a = await instance({ unknownPerSecond: 5 });
    const { secret } = await a.db.create({ name: 'meter-reader', role: 'viewer' }, 'admin');
    expect(await a.tokens.lookup(secret)).toMatchObject({ name: 'meter-reader' });
    const before = a.db.stats().queries;
    const answers = await Promise.all(
      Array.from({ length: 50 }, () =>
        a.tokens.lookup(randomBytes(24).toString('base64url')).then(
          (r) => (r === undefined ? 'unknown' : 'found'),
          () => 'unavailable',
        ),
      ),
    );
    expect(answers.filter((r) => r === 'unknown').length).toBeLessThanOrEqual(10);
    expect(answers.filter((r) => r === 'unavailable').length).toBeGreaterThanOrEqual(40);
    expect(a.db.stats().queries - before).toBeLessThanOrEqual(10);
    expect(a.db.stats().throttled).toBeGreaterThanOrEqual(40);
    // Known: never held back by the flood (from the cache, or asked though the budget is spent).
    expect(await a.tokens.lookup(secret)).toMatchObject({ name: 'meter-reader' });
  });

  it('an instance started during a flood of made-up bearers: a live token it never saw is not held back', async () => {
    const a = await instance();
    const { secret } = await a.db.create({ name: 'bms-link', role: 'viewer' }, 'admin');
    const { secret: late } = await (
      await instance()
    ).db.create({ name: 'late-link', role: 'viewer' }, 'admin');
    // B starts afresh (its cache empty) with a budget the flood spends at once.
    const b = await instance({ unknownPerSecond: 2 });
    const flood = () =>
      Promise.all(
        Array.from({ length: 20 }, () =>
          b.tokens.lookup(randomBytes(24).toString('base64url')).catch(() => 'unavailable'),
        ),
      );
    await flood();
    expect(b.db.stats().throttled).toBeGreaterThanOrEqual(15);
    // Never confirmed on B, yet a live token in the table: asked, not refused with 503.
    expect(await b.tokens.lookup(secret)).toMatchObject({ name: 'bms-link' });
    await flood();
    expect(await b.tokens.lookup(late)).toMatchObject({ name: 'late-link' });
    // Made-up bearers stay throttled.
    await expect(b.tokens.lookup(randomBytes(24).toString('base64url'))).rejects.toThrow(/too many/);
  });

  it('a token revoked on A is refused on B within a second, though B has it cached', async () => {
    // B would trust its cache for a minute: only the NOTIFY of the revocation can refuse it sooner.
    const a = await instance();
    const b = await instance({ positiveMs: 60_000 });
    const { secret } = await a.db.create({ name: 'scada-b', role: 'engineer' }, 'admin');
    expect(await b.tokens.lookup(secret)).toMatchObject({ name: 'scada-b' });
    const warm = b.db.stats().queries;
    expect(await b.tokens.lookup(secret)).toMatchObject({ name: 'scada-b' });
    expect(b.db.stats().queries).toBe(warm);

    await a.db.revoke('scada-b', 'li');
    await waitFor(async () => (await b.tokens.lookup(secret)) === undefined, 1000, 'revocation heard on B');
  });

  it('PostgreSQL down: a recently used token works, a revoked or unknown one does not; revocations apply once it is back', async () => {
    const a = await instance();
    const b = await instance();
    const used = (await a.db.create({ name: 'historian-x', role: 'viewer' }, 'admin')).secret;
    const gone = (await a.db.create({ name: 'contractor-x', role: 'engineer' }, 'admin')).secret;
    const late = (await a.db.create({ name: 'never-used-x', role: 'viewer' }, 'admin')).secret;
    expect(await b.tokens.lookup(used)).toMatchObject({ name: 'historian-x' });
    expect(await b.tokens.lookup(gone)).toMatchObject({ name: 'contractor-x' });
    // Revoked before the outage: heard by B, which forgets it.
    await a.db.revoke('contractor-x', 'li');
    await waitFor(async () => (await b.tokens.lookup(gone)) === undefined, 1000, 'revocation heard on B');

    await pg.kill();
    try {
      expect(await b.tokens.lookup(used)).toMatchObject({ name: 'historian-x', role: 'viewer' });
      expect(b.db.stats().outage).toBeGreaterThan(0);
      // Never confirmed on B: it cannot tell (the route answers 503, retryable).
      await expect(b.tokens.lookup(late)).rejects.toThrow();
      // Revoked: refused (401 while its miss is cached, 503 after), never let through.
      expect(await b.tokens.lookup(gone).catch(() => 'unavailable')).not.toMatchObject({
        name: 'contractor-x',
      });
      await expect(b.tokens.lookup(randomBytes(24).toString('base64url'))).rejects.toThrow();
      // Confirmed longer ago than the outage bound (5 min): refused too.
      b.clock.skew = 5 * 60_000 + 1000;
      await expect(b.tokens.lookup(used)).rejects.toThrow();
      b.clock.skew = 0;
    } finally {
      await pg.start();
    }
    await waitFor(() => b.db.stats().listening, 30_000, 'B listens again');
    await waitFor(
      async () => {
        try {
          await a.db.revoke('historian-x', 'li');
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      'revoked once PostgreSQL is back',
    );
    await waitFor(async () => (await b.tokens.lookup(used)) === undefined, 2000, 'revocation applied on B');
  }, 90_000);
});
