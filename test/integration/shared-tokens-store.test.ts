import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenStore } from '../../gateway/src/http/auth.js';
import {
  INBOUND_CLAIM_SETTLE_MS,
  INBOUND_KEY_STEPS,
  SharedInboundKeys,
} from '../../gateway/src/http/inbound-keys.js';
import { SharedTokenDb, TOKEN_STEPS } from '../../gateway/src/http/shared-tokens.js';
import { TokenDb, TokenError } from '../../gateway/src/http/token-db.js';
import type { SharedDb } from '../../gateway/src/storage/sql/shared-db.js';
import { sharedDbFixture } from '../fixtures/shared-db.js';

const T0 = Date.UTC(2026, 11, 7, 1);
const CONFIG_TOKENS = () => [{ name: 'admin', role: 'admin' as const }];

/** A pino logger whose warnings are kept, to see what the copy of tokens.db said. */
function recordingLog() {
  const lines: { level: number; msg: string; name?: string }[] = [];
  const log = pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as (typeof lines)[number]) },
  );
  return { log, warnings: () => lines.filter((l) => l.level === 40) };
}

/**
 * The shared token table and inbound keys (ADR 0165, 0166) on both databases: a token created by
 * one instance is found by another, a revocation is seen by the next lookup, `lastUsed` is written
 * once per flush, and an instance's tokens.db is copied in at start, a name conflict kept shared.
 */
describe.each(['sqlite', 'postgres'] as const)('shared tokens on %s', (dialect) => {
  const fx = sharedDbFixture([...TOKEN_STEPS, ...INBOUND_KEY_STEPS]);
  const dirs: string[] = [];
  let n = 0;
  const open = (): Promise<SharedDb> => (dialect === 'sqlite' ? fx.sqlite() : fx.postgres(`tokens_${++n}`));
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function instance(shared: SharedDb, extra: { localFile?: string; log?: pino.Logger } = {}) {
    let now = T0;
    const tokens = new TokenStore(() => now);
    const db = new SharedTokenDb({
      db: () => shared.db,
      tokens,
      configTokens: CONFIG_TOKENS,
      now: () => now,
      flushMs: 3_600_000,
      ...extra,
    });
    return { tokens, db, tick: (ms: number) => (now += ms) };
  }

  it('a token created on one instance works on the other until revoked there', async () => {
    const shared = await open();
    const a = instance(shared);
    const b = instance(shared);
    await a.db.start();
    await b.db.start();
    const { secret, info } = await a.db.create({ name: 'scada', role: 'engineer' }, 'admin');
    expect(info).toMatchObject({ name: 'scada', role: 'engineer', source: 'api', revoked: false });
    expect(await b.tokens.lookup(secret)).toMatchObject({ name: 'scada', role: 'engineer' });
    expect(await b.tokens.isLive('scada')).toBe(true);
    await expect(b.db.create({ name: 'scada', role: 'viewer' }, 'admin')).rejects.toThrow(TokenError);
    await expect(b.db.create({ name: 'admin', role: 'viewer' }, 'admin')).rejects.toThrow(/exists/);

    const revoked = await b.db.revoke('scada', 'li');
    expect(revoked).toMatchObject({ revoked: true, revokedBy: 'li' });
    expect(await a.tokens.lookup(secret)).toBeUndefined();
    expect(await a.tokens.isLive('scada')).toBe(false);
    await expect(a.db.revoke('nobody', 'li')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_NOT_FOUND' });
    await expect(a.db.revoke('admin', 'li')).rejects.toMatchObject({ code: 'GW_ERR_TOKEN_READONLY' });
    await a.db.stop();
    await b.db.stop();
  });

  it('an expired token is refused; lastUsed is written once per flush, not per request', async () => {
    const shared = await open();
    const a = instance(shared);
    const b = instance(shared);
    await a.db.start();
    await b.db.start();
    const { secret } = await a.db.create({ name: 'short', role: 'viewer', expiresAt: T0 + 60_000 }, 'admin');
    for (let i = 0; i < 50; i++) {
      const rec = await a.tokens.lookup(secret);
      a.tokens.noteUse(rec!);
    }
    // Nothing written yet: the other instance does not know of the uses.
    expect((await b.db.list()).find((t) => t.name === 'short')!.lastUsed).toBeNull();
    await a.db.flush();
    expect((await b.db.list()).find((t) => t.name === 'short')!.lastUsed).toBe(new Date(T0).toISOString());
    a.tick(60_000);
    expect(await a.tokens.lookup(secret)).toBeUndefined();
    await a.db.stop();
    await b.db.stop();
  });

  it("an instance joining copies its tokens.db; a name the cluster has with another hash stays the cluster's", async () => {
    const shared = await open();
    const first = instance(shared);
    await first.db.start();
    const { secret: clusterSecret } = await first.db.create({ name: 'historian', role: 'viewer' }, 'admin');

    // An instance that ran alone: two tokens in its tokens.db, one named like the cluster's.
    const dir = mkdtempSync(join(tmpdir(), 'fgw-tokens-'));
    dirs.push(dir);
    const file = join(dir, 'tokens.db');
    const localStore = new TokenStore(() => T0);
    const local = new TokenDb({ file, tokens: localStore, configTokens: CONFIG_TOKENS, now: () => T0 });
    await local.start();
    const kept = local.create({ name: 'cmms', role: 'engineer' }, 'admin').secret;
    const clash = local.create({ name: 'historian', role: 'admin' }, 'admin').secret;
    await local.stop();

    const rec = recordingLog();
    const joining = instance(shared, { localFile: file, log: rec.log });
    await joining.db.start();
    // The local token works on every instance with its old secret; the clash is refused, named in a warning.
    expect(await first.tokens.lookup(kept)).toMatchObject({ name: 'cmms', role: 'engineer' });
    expect(await first.tokens.lookup(clash)).toBeUndefined();
    expect(await joining.tokens.lookup(clusterSecret)).toMatchObject({ name: 'historian', role: 'viewer' });
    expect(rec.warnings().map((w) => w.name)).toEqual(['historian']);
    expect(rec.warnings()[0]!.msg).toMatch(/historian.*another token of that name/);
    // A second start copies nothing twice and warns again about the same name only.
    await joining.db.stop();
    const again = instance(shared, { localFile: file, log: rec.log });
    await again.db.start();
    expect((await again.db.list()).filter((t) => t.source === 'api').map((t) => t.name)).toEqual([
      'cmms',
      'historian',
    ]);
    expect(rec.warnings().map((w) => w.name)).toEqual(['historian', 'historian']);
    await again.db.stop();
    await first.db.stop();
  });

  it('an inbound key claimed by one instance is seen by another within the keep window', async () => {
    const shared = await open();
    const a = new SharedInboundKeys('gw-a', () => shared.db);
    const b = new SharedInboundKeys('gw-b', () => shared.db);
    expect(await b.seen('k-1', T0 - 1000)).toBe(false);
    expect(await a.claim('k-1', 'WO-000001', 'acknowledge', T0, T0 - 1000)).toBe(true);
    expect(await b.claim('k-1', 'WO-000001', 'acknowledge', T0 + 5, T0 - 995)).toEqual({
      instanceId: 'gw-a',
      at: T0,
      confirmed: false,
    });
    expect(await b.seen('k-1', T0 - 1000)).toBe(true);
    expect(await b.seen('k-1', T0 + 1)).toBe(false);
    // Older than the keep window: claimed anew.
    expect(await b.claim('k-1', 'WO-000001', 'comment', T0 + 10, T0 + 1)).toBe(true);
    expect(await a.seen('k-1', T0 + 1)).toBe(true);
  });

  it('of many instances claiming one key at once exactly one wins; a released key may be claimed again', async () => {
    const shared = await open();
    const keys = ['gw-a', 'gw-b', 'gw-c', 'gw-d'].map((id) => new SharedInboundKeys(id, () => shared.db));
    const answers = await Promise.all(
      keys.map((k, i) => k.claim('race-1', 'WO-000002', 'acknowledge', T0 + i, T0 - 1000)),
    );
    expect(answers.filter((a) => a === true)).toHaveLength(1);
    const winner = answers.indexOf(true);
    for (const a of answers)
      if (a !== true)
        expect(a).toEqual({ instanceId: keys[winner]!.instanceId, at: T0 + winner, confirmed: false });
    // Only the holder's own claim is released (another instance's release changes nothing).
    await keys[(winner + 1) % 4]!.release('race-1', T0 + winner);
    expect(await keys[0]!.seen('race-1', T0 - 1000)).toBe(true);
    await keys[winner]!.release('race-1', T0 + winner);
    expect(await keys[0]!.seen('race-1', T0 - 1000)).toBe(false);
    expect(await keys[1]!.claim('race-1', 'WO-000002', 'acknowledge', T0 + 9, T0 - 1000)).toBe(true);
  });

  it('a claim never confirmed is taken over after the settle time; a confirmed one never within the keep window', async () => {
    const shared = await open();
    const a = new SharedInboundKeys('gw-a', () => shared.db);
    const b = new SharedInboundKeys('gw-b', () => shared.db);
    const since = T0 - 3_600_000;
    // A claims and dies before its commit: its claim is in progress for the settle time, then abandoned.
    expect(await a.claim('lost-1', 'WO-000003', 'acknowledge', T0, since)).toBe(true);
    const soon = T0 + INBOUND_CLAIM_SETTLE_MS - 1;
    expect(await b.claim('lost-1', 'WO-000003', 'acknowledge', soon, since)).toEqual({
      instanceId: 'gw-a',
      at: T0,
      confirmed: false,
    });
    expect(await b.seen('lost-1', since, soon)).toBe(true);
    const later = T0 + INBOUND_CLAIM_SETTLE_MS + 1;
    expect(await b.seen('lost-1', since, later)).toBe(false);
    expect(await b.claim('lost-1', 'WO-000003', 'acknowledge', later, since)).toBe(true);
    // B applies and confirms: a replay for everyone from now on, however long after.
    await b.confirm('lost-1', later, later + 5);
    expect(await a.claim('lost-1', 'WO-000003', 'comment', later + 3_600_000, since + 3_000_000)).toEqual({
      instanceId: 'gw-b',
      at: later,
      confirmed: true,
    });
    expect(await a.seen('lost-1', since, later + 3_000_000)).toBe(true);
    // Another instance's confirm changes nothing.
    expect(await a.claim('lost-2', 'WO-000003', 'comment', T0, since)).toBe(true);
    await b.confirm('lost-2', T0, T0 + 1);
    expect(await b.claim('lost-2', 'WO-000003', 'comment', later, since)).toBe(true);
  });
});
