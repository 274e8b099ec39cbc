import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { TlsConfig } from '../../gateway/src/config/schema.js';
import { runGatewayCli, startGateway, testConfig } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { selfSignedCert } from '../fixtures/tls.js';

/**
 * HTTPS in the gateway itself (`http.tls`): a real listener with a certificate made by openssl,
 * its security headers (HSTS only under HTTPS), the certificate swapped on reload and on SIGHUP
 * without a new listener, a broken key or certificate on reload logged, counted and the old
 * certificate kept, and a missing file refused at start with the key path and the file.
 */
const made: string[] = [];
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function cert(): { dir: string; cert: string; key: string; fingerprint256: string } {
  const c = selfSignedCert();
  made.push(c.dir);
  return { ...c, fingerprint256: new X509Certificate(readFileSync(c.cert)).fingerprint256 };
}

/** The fingerprint of the certificate the server presents in a fresh handshake. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.once('error', reject);
  });
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  reusedSocket: boolean;
}

function get(url: string, agent?: Agent, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { rejectUnauthorized: false, agent, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, reusedSocket: req.reusedSocket }),
      );
    });
    req.once('error', reject);
    req.end();
  });
}

/** `http.tls` as a config file gives it: the schema fills in hstsMaxAgeSec. */
const tlsOf = (cert: string, key: string) => ({ cert, key }) as TlsConfig;

function portOf(url: string): number {
  return Number(new URL(url).port);
}

describe('HTTPS in the gateway', () => {
  it('serves HTTPS with HSTS and a CSP without unsafe-inline, swaps the certificate on reload on the same listener, and keeps it when the new files are broken', async () => {
    const a = cert();
    const gw = await startGateway(
      testConfig({ influx: { enabled: false }, http: { tls: tlsOf(a.cert, a.key) } }),
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    try {
      const url = gw.httpUrl!;
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const port = portOf(url);
      expect(await servedFingerprint(port)).toBe(a.fingerprint256);

      const first = await get(`${url}/api/health`, agent);
      expect(first.status).toBe(200);
      expect(first.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      const csp = String(first.headers['content-security-policy']);
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain('upgrade-insecure-requests');
      expect(csp).not.toContain('unsafe-inline');
      expect(first.headers['x-content-type-options']).toBe('nosniff');
      expect(first.headers['x-frame-options']).toBe('DENY');
      expect(first.headers['referrer-policy']).toBe('no-referrer');

      // A renewed certificate written over the same files, then the reload SIGHUP triggers.
      const b = cert();
      copyFileSync(b.cert, a.cert);
      copyFileSync(b.key, a.key);
      const r = gw.reloadFromFile();
      expect(r).toMatchObject({ ok: true });
      expect(r.ok && r.applied).toContain('http.tls (certificate)');
      expect(await servedFingerprint(port)).toBe(b.fingerprint256);
      expect(gw.certificate?.fingerprint256).toBe(b.fingerprint256);
      // The listener was not replaced: the connection opened before the reload still answers.
      const again = await get(`${url}/api/health`, agent);
      expect(again.status).toBe(200);
      expect(again.reusedSocket).toBe(true);

      // A broken key: logged, counted, the renewed certificate stays in service.
      writeFileSync(a.key, '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
      expect(gw.reloadFromFile()).toMatchObject({ ok: true, applied: [] });
      expect(await servedFingerprint(port)).toBe(b.fingerprint256);
      // A key of another certificate: refused as well.
      const c = cert();
      copyFileSync(c.key, a.key);
      gw.reloadFromFile();
      expect(await servedFingerprint(port)).toBe(b.fingerprint256);
      // A missing certificate file.
      rmSync(a.cert);
      gw.reloadFromFile();
      expect(await servedFingerprint(port)).toBe(b.fingerprint256);
      expect((await get(`${url}/api/health`)).status).toBe(200);

      const metrics = (await get(`${url}/metrics`)).body;
      expect(metrics).toMatch(/^gateway_tls_reloads_total\{result="changed"\} 1$/m);
      expect(metrics).toMatch(/^gateway_tls_reloads_total\{result="failed"\} 3$/m);
      const expiry = Number(/^gateway_tls_certificate_expiry_seconds (\S+)$/m.exec(metrics)?.[1]);
      expect(expiry * 1000).toBeGreaterThan(Date.now());
    } finally {
      agent.destroy();
      await gw.cleanup();
    }
  });

  it('over plain HTTP (the default) sends the security headers but no HSTS and no upgrade-insecure-requests', async () => {
    const gw = await startGateway(testConfig({ influx: { enabled: false } }));
    try {
      expect(gw.httpUrl).toMatch(/^http:\/\//);
      expect(gw.certificate).toBeUndefined();
      const res = await fetch(`${gw.httpUrl}/api/health`);
      expect(res.status).toBe(200);
      expect(res.headers.get('strict-transport-security')).toBeNull();
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('upgrade-insecure-requests');
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    } finally {
      await gw.cleanup();
    }
  });

  it('refuses to start on a missing or mismatched certificate, naming the key and the file', async () => {
    const a = cert();
    const b = cert();
    const missing = join(a.dir, 'nope.pem');
    await expect(
      startGateway(testConfig({ influx: { enabled: false }, http: { tls: tlsOf(missing, a.key) } })),
    ).rejects.toThrow(`http.tls.cert: cannot read ${missing}`);
    await expect(
      startGateway(testConfig({ influx: { enabled: false }, http: { tls: tlsOf(a.cert, b.key) } })),
    ).rejects.toThrow(`http.tls.key: ${b.key} does not belong to the certificate ${a.cert}`);
    // The same through the CLI, the files named by the environment.
    const cli = await runGatewayCli(['--check-config'], {
      GATEWAY_TLS_CERT: a.cert,
      GATEWAY_TLS_KEY: missing,
    });
    expect(cli.code).toBe(2);
    expect(cli.out).toContain(`http.tls.key: cannot read ${missing}`);
    const ok = await runGatewayCli(['--check-config'], { GATEWAY_TLS_CERT: a.cert, GATEWAY_TLS_KEY: a.key });
    expect(ok.out).toContain('configuration ok');
    expect(ok.code).toBe(0);
  });

  it('the gateway process swaps its certificate on SIGHUP and keeps serving', async () => {
    const a = cert();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'fgw-https-'));
    made.push(dir);
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      stringify({
        logLevel: 'info',
        dataDir: join(dir, 'data'),
        influx: { enabled: false },
        broker: { host: '127.0.0.1', port: await freePort() },
        http: {
          host: '127.0.0.1',
          port,
          adminToken: 'test-admin-token-0123456789',
          tls: { cert: a.cert, key: a.key },
        },
      }),
    );
    const proc = spawn(process.execPath, ['--import', 'tsx', 'gateway/src/main.ts', '--config', file], {
      cwd: join(import.meta.dirname, '..', '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));
    try {
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`gateway exited ${proc.exitCode}: ${out}`);
          return (await get(`https://127.0.0.1:${port}/api/health`).catch(() => null)) !== null;
        },
        30_000,
        'gateway HTTPS',
      );
      expect(out).toContain('HTTPS API listening');
      expect(await servedFingerprint(port)).toBe(a.fingerprint256);

      const b = cert();
      copyFileSync(b.cert, a.cert);
      copyFileSync(b.key, a.key);
      proc.kill('SIGHUP');
      await waitFor(async () => (await servedFingerprint(port)) === b.fingerprint256, 10_000, 'new cert');
      // The log line reaches the pipe after the new certificate may already be served: waited for, too.
      await waitFor(() => out.includes('HTTPS certificate reloaded'), 10_000, 'the reload logged');

      writeFileSync(a.key, 'garbage');
      proc.kill('SIGHUP');
      await waitFor(() => out.includes('HTTPS certificate not reloaded'), 10_000, 'reload refused');
      expect(out).toContain('http.tls.key');
      expect(await servedFingerprint(port)).toBe(b.fingerprint256);
      expect(proc.exitCode).toBeNull();
    } finally {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
    }
  });
});
