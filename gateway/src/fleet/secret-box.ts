import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** The environment variable holding the key that seals channel secrets in the shared store (ADR 0144). */
export const SECRETS_KEY_ENV = 'GATEWAY_SECRETS_KEY';

const SEALED = 'aes256gcm:';
const PLAIN = 'plain:';

/**
 * Seals and opens the secrets operators give a channel (signing secrets, header values, the SMTP
 * password). With a key (GATEWAY_SECRETS_KEY, any string of 32 characters or more; HKDF-SHA256 makes
 * the AES key of it) they are stored AES-256-GCM encrypted, so a copy of shared.db or a PostgreSQL
 * dump alone does not give them away. Without one they are stored as written, protected only as the
 * store itself is (file permissions, the database role), as the config file protects its own.
 */
export class SecretBox {
  private readonly key: Buffer | undefined;

  constructor(secret: string | undefined = process.env[SECRETS_KEY_ENV]) {
    this.key =
      secret !== undefined && secret.length > 0
        ? Buffer.from(hkdfSync('sha256', secret, 'facility-gateway', 'fleet channel secrets', 32))
        : undefined;
  }

  get encrypting(): boolean {
    return this.key !== undefined;
  }

  seal(value: unknown): string {
    const text = JSON.stringify(value);
    if (!this.key) return PLAIN + text;
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([c.update(text, 'utf8'), c.final()]);
    return SEALED + [iv, c.getAuthTag(), ct].map((b) => b.toString('base64')).join('.');
  }

  /** The value sealed; throws when it was sealed with another key or none is set now. */
  open(sealed: string): unknown {
    if (sealed.startsWith(PLAIN)) return JSON.parse(sealed.slice(PLAIN.length)) as unknown;
    if (!sealed.startsWith(SEALED)) throw new Error('unknown secret format');
    if (!this.key) throw new Error(`sealed with a key; set ${SECRETS_KEY_ENV}`);
    const [iv, tag, ct] = sealed
      .slice(SEALED.length)
      .split('.')
      .map((p) => Buffer.from(p, 'base64'));
    const d = createDecipheriv('aes-256-gcm', this.key, iv!);
    d.setAuthTag(tag!);
    const text = Buffer.concat([d.update(ct!), d.final()]).toString('utf8');
    return JSON.parse(text) as unknown;
  }
}
