import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { ChannelProblem, ChannelSettings, webhookKey } from '../../gateway/src/fleet/channels.js';
import { SecretBox } from '../../gateway/src/fleet/secret-box.js';
import { notificationsSchema } from '../../gateway/src/notifications/schema.js';

/** Channel settings and their sealed secrets (ADR 0144): pure logic, no store. */
const KEY = 'unit-test-secrets-key-0123456789abcdef';
const SECRET = 'signing-secret-0123456789';
const log = pino({ level: 'silent' });
const file = notificationsSchema.parse({
  webhooks: [{ name: 'cmms', url: 'http://127.0.0.1:9/cmms', secret: 'file-secret-0123456789' }],
});

/** A ChannelSettings holding the prepared write as if committed and read back. */
function committed(box: SecretBox, writes: ReturnType<ChannelSettings['prepareWebhook']>[]) {
  const s = new ChannelSettings(box);
  s.load(
    writes.map((w) => ({ key: w.key, value: w.value })),
    new Map(writes.map((w) => [w.key, w.sealed])),
    log,
  );
  return s;
}

describe('secret box', () => {
  it('seals with the key and opens only with it', () => {
    const box = new SecretBox(KEY);
    const sealed = box.seal({ secret: SECRET });
    expect(sealed).not.toContain(SECRET);
    expect(sealed.startsWith('aes256gcm:')).toBe(true);
    expect(box.open(sealed)).toEqual({ secret: SECRET });
    expect(() => new SecretBox('another-key-0123456789abcdefghij').open(sealed)).toThrow();
    expect(() => new SecretBox('').open(sealed)).toThrow(/GATEWAY_SECRETS_KEY/);
    // Without a key: stored as written, and still readable once a key is set.
    const plain = new SecretBox('').seal({ secret: SECRET });
    expect(plain).toContain(SECRET);
    expect(box.open(plain)).toEqual({ secret: SECRET });
  });
});

describe('channel settings', () => {
  const box = new SecretBox(KEY);

  it('keeps the secret out of the audited setting and in force when an edit leaves it out', () => {
    const s = new ChannelSettings(box);
    const w = s.prepareWebhook(
      { name: 'ops', url: 'http://127.0.0.1:9/a', secret: SECRET, headers: { 'X-Key': 'k-value' } },
      file,
    );
    expect(JSON.stringify(w.value)).not.toContain(SECRET);
    expect(JSON.stringify(w.value)).not.toContain('k-value');
    expect(w.value).toMatchObject({ headers: ['X-Key'], secretsRev: 1, disabled: false });
    const held = committed(box, [w]);
    const edit = held.prepareWebhook(
      { name: 'ops', url: 'http://127.0.0.1:9/b', headers: { 'X-Key': null } },
      file,
    );
    expect(edit.value.secretsRev).toBe(1);
    const layered = committed(box, [edit]).layer(file, log);
    expect(layered.webhooks.find((x) => x.name === 'ops')).toMatchObject({
      url: 'http://127.0.0.1:9/b',
      secret: SECRET,
      headers: { 'X-Key': 'k-value' },
    });
    const rotated = held.prepareWebhook(
      { name: 'ops', url: 'http://127.0.0.1:9/a', secret: 'new-secret-0123456789' },
      file,
    );
    expect(rotated.value.secretsRev).toBe(2);
  });

  it("editing a file webhook keeps the file's secret; disabled ones are left out", () => {
    const s = new ChannelSettings(box);
    const w = s.prepareWebhook({ name: 'cmms', url: 'http://127.0.0.1:9/new', disabled: true }, file);
    expect(box.open(w.sealed)).toMatchObject({ secret: 'file-secret-0123456789' });
    expect(committed(box, [w]).layer(file, log).webhooks).toEqual([]);
  });

  it('refuses bad input with the key path', () => {
    const s = new ChannelSettings(box);
    const problems = (input: Parameters<ChannelSettings['prepareWebhook']>[0]) => {
      try {
        s.prepareWebhook(input, file);
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(ChannelProblem);
        return (err as ChannelProblem).problems.map((p) => p.path);
      }
    };
    expect(problems({ name: 'x', url: 'ftp://127.0.0.1/', secret: SECRET })).toEqual(['url']);
    expect(problems({ name: 'x', url: 'http://127.0.0.1:9/', secret: 'short' })).toEqual(['secret']);
    expect(problems({ name: 'x', url: 'http://127.0.0.1:9/' })).toEqual(['secret']);
    expect(problems({ name: 'x', url: 'http://127.0.0.1:9/', secret: SECRET, headers: { A: null } })).toEqual(
      ['headers.A'],
    );
    expect(webhookKey('x')).toBe('webhook:x');
  });

  it('a secret sealed with a lost key leaves its channel out, never fatal', () => {
    const w = new ChannelSettings(box).prepareWebhook(
      { name: 'ops', url: 'http://127.0.0.1:9/', secret: SECRET },
      file,
    );
    const s = committed(new SecretBox('a-different-key-0123456789abcdef'), [w]);
    expect(s.layer(file, log).webhooks.map((x) => x.name)).toEqual(['cmms']);
  });
});
