import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TlsConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';

/** A certificate, key or CA file that cannot be served, with the config key and the reason. */
export class TlsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsFileError';
  }
}

/** The PEM files of `http.tls`, read and checked to belong together. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** SHA-256 fingerprint of the leaf certificate (`AA:BB:...`), what a reload compares. */
  fingerprint256: string;
  /** When the leaf certificate expires. */
  validTo: Date;
}

function readPem(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TlsFileError(`http.tls.${key}: cannot read ${path}: ${(err as Error).message}`);
  }
}

/**
 * Reads `http.tls` and checks what a browser would otherwise only find out at the handshake: the
 * certificate parses, the key is an unencrypted private key, the key belongs to the certificate,
 * and Node accepts the set as a secure context. Throws TlsFileError naming the file and the reason.
 */
export function readTlsFiles(cfg: TlsConfig): TlsMaterial {
  const cert = readPem('cert', cfg.cert);
  const key = readPem('key', cfg.key);
  const ca = cfg.ca === undefined ? undefined : readPem('ca', cfg.ca);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new TlsFileError(`http.tls.cert: ${cfg.cert} is not a PEM certificate: ${(err as Error).message}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsFileError(
      `http.tls.key: ${cfg.key} is not an unencrypted PEM private key: ${(err as Error).message}`,
    );
  }
  if (!x509.checkPrivateKey(privateKey))
    throw new TlsFileError(`http.tls.key: ${cfg.key} does not belong to the certificate ${cfg.cert}`);
  try {
    createSecureContext({ cert, key, ca });
  } catch (err) {
    const what = cfg.ca === undefined ? 'cert and key' : `cert, key and ca (${cfg.ca})`;
    throw new TlsFileError(`http.tls: the ${what} are refused by TLS: ${(err as Error).message}`);
  }
  return { cert, key, ca, fingerprint256: x509.fingerprint256, validTo: new Date(x509.validTo) };
}

/** The options Node's HTTPS server takes (fastify's `https`, `server.setSecureContext`). */
export function secureContextOptions(m: TlsMaterial): SecureContextOptions {
  return m.ca === undefined ? { cert: m.cert, key: m.key } : { cert: m.cert, key: m.key, ca: m.ca };
}

/** What `server.setSecureContext` needs: Node's https.Server has it, a plain http.Server does not. */
export interface SecureServer {
  setSecureContext(options: SecureContextOptions): void;
}

export type CertificateReload = 'changed' | 'unchanged' | 'failed';

/**
 * The certificate the HTTPS listener serves, swapped in place on reload (SIGHUP or the admin
 * reload): the listener keeps its socket and its open connections, new handshakes get the new
 * certificate. A file that cannot be served is logged and counted and the old certificate stays.
 */
export class ServedCertificate {
  private current: TlsMaterial;
  private readonly reloads: Counter<'result'>;

  constructor(
    private readonly cfg: TlsConfig,
    first: TlsMaterial,
    private readonly server: SecureServer,
    private readonly log: Logger,
    metrics: Registry,
  ) {
    this.current = first;
    this.reloads = new Counter({
      name: 'gateway_tls_reloads_total',
      help: 'Reloads of the HTTPS certificate by result (changed, unchanged, failed: old one kept)',
      labelNames: ['result'],
      registers: [metrics],
    });
    const served = () => this.current;
    new Gauge({
      name: 'gateway_tls_certificate_expiry_seconds',
      help: 'When the served HTTPS certificate expires (Unix time, seconds)',
      registers: [metrics],
      collect() {
        this.set(served().validTo.getTime() / 1000);
      },
    });
    this.warnIfExpiring(first);
  }

  /** SHA-256 fingerprint of the certificate being served. */
  get fingerprint256(): string {
    return this.current.fingerprint256;
  }

  /** Reads the files again and serves them if they are good; otherwise keeps the old certificate. */
  reload(): CertificateReload {
    let next: TlsMaterial;
    try {
      next = readTlsFiles(this.cfg);
      this.server.setSecureContext(secureContextOptions(next));
    } catch (err) {
      this.reloads.inc({ result: 'failed' });
      this.log.error(
        { err, fingerprint256: this.current.fingerprint256 },
        `HTTPS certificate not reloaded, still serving the previous one: ${(err as Error).message}`,
      );
      return 'failed';
    }
    const changed = next.fingerprint256 !== this.current.fingerprint256;
    this.current = next;
    this.reloads.inc({ result: changed ? 'changed' : 'unchanged' });
    this.log.info(
      { fingerprint256: next.fingerprint256, validTo: next.validTo.toISOString(), changed },
      changed ? 'HTTPS certificate reloaded' : 'HTTPS certificate read again, unchanged',
    );
    this.warnIfExpiring(next);
    return changed ? 'changed' : 'unchanged';
  }

  private warnIfExpiring(m: TlsMaterial): void {
    const days = (m.validTo.getTime() - Date.now()) / 86_400_000;
    if (days < 14)
      this.log.warn(
        { validTo: m.validTo.toISOString(), fingerprint256: m.fingerprint256 },
        days < 0 ? 'the HTTPS certificate has expired' : 'the HTTPS certificate expires within 14 days',
      );
  }
}
