import { describe, expect, it } from 'vitest';
import { roleFromClaim } from '../../gateway/src/accounts/oidc.js';
import { hashPassword, needsRehash, verifyPassword } from '../../gateway/src/accounts/password.js';

describe('role from an identity provider claim', () => {
  const map = { 'gw-viewers': 'viewer', 'gw-engineers': 'engineer', 'gw-admins': 'admin' } as const;
  it('takes the strongest mapped value of a list, or a single string', () => {
    expect(roleFromClaim(['staff', 'gw-viewers', 'gw-engineers'], map)).toBe('engineer');
    expect(roleFromClaim(['gw-admins', 'gw-viewers'], map)).toBe('admin');
    expect(roleFromClaim('gw-viewers', map)).toBe('viewer');
  });
  it('gives no role for a missing claim, unmapped values or values that are not strings', () => {
    expect(roleFromClaim(undefined, map)).toBeUndefined();
    expect(roleFromClaim(null, map)).toBeUndefined();
    expect(roleFromClaim(['staff'], map)).toBeUndefined();
    expect(roleFromClaim([{ name: 'gw-admins' }, 7], map)).toBeUndefined();
    // An inherited key of a plain object is no mapping.
    expect(roleFromClaim('constructor', map)).toBeUndefined();
  });
});

describe('scrypt password hashes', () => {
  it('verifies the right password only, with the parameters read from the hash', async () => {
    const h = await hashPassword('correct horse battery', { N: 1024, r: 8, p: 1 });
    expect(h).toMatch(/^scrypt\$1024\$8\$1\$/);
    expect(await verifyPassword('correct horse battery', h)).toBe(true);
    expect(await verifyPassword('correct horse batterY', h)).toBe(false);
    // Weaker than today's parameters: re-hashed at the next good sign-in.
    expect(needsRehash(h)).toBe(true);
  });
  it('two hashes of one password differ (random salt)', async () => {
    const a = await hashPassword('same password here', { N: 1024, r: 8, p: 1 });
    const b = await hashPassword('same password here', { N: 1024, r: 8, p: 1 });
    expect(a).not.toBe(b);
  });
  it('refuses a malformed or foreign hash without throwing', async () => {
    for (const bad of [
      '',
      'plain',
      'scrypt$x$8$1$c2FsdA$aGFzaA',
      'bcrypt$2b$10$abc',
      'scrypt$1024$8$1$c2FsdA$',
    ])
      expect(await verifyPassword('anything', bad)).toBe(false);
  });
});
