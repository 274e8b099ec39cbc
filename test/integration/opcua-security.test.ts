import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpcuaServerHandle } from '../../simulators/opcua/server.js';
import { waitFor } from '../fixtures/ports.js';
import {
  collectingSource,
  phEndpoint,
  simMessage,
  startTestOpcuaServer,
  type TestOpcuaServer,
} from '../fixtures/opcua.js';

/** SignAndEncrypt with Basic256Sha256: the server's certificate is refused until it is trusted. */
describe('OPC UA source security', () => {
  let opc: TestOpcuaServer;
  let server: OpcuaServerHandle;
  let dir: string;
  beforeAll(async () => {
    opc = await startTestOpcuaServer('fgw-opcua-sec-');
    ({ server, dir } = opc);
  }, 30_000);
  afterAll(async () => {
    await opc?.stop();
  });

  const secure = { securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256' };
  const pki = (): string => join(dir, 'gateway', 'pki');

  it('refuses an untrusted server certificate, keeps it in rejected/, and connects once it is trusted', async () => {
    const { source: src, readings } = collectingSource(
      phEndpoint('secure', server.endpointUrl, secure),
      join(dir, 'gateway'),
    );
    await src.start();
    try {
      // The certificate lands in rejected/ just before the connect attempt fails: wait for both.
      await waitFor(
        () => readdirSync(join(pki(), 'rejected')).length > 0 && src.health().detail !== undefined,
        30_000,
        'server certificate rejected',
      );
      const h = src.health();
      expect(h.state).toBe('down');
      expect(h.connection).not.toBe('connected');
      expect(String(h.detail)).toMatch(/certificate/i);
      expect(readings).toHaveLength(0);

      // What docs/opcua.md tells the operator to do: move the server's certificate to
      // trusted/certs. The source, still retrying, connects without a restart.
      for (const f of readdirSync(join(pki(), 'rejected')))
        renameSync(join(pki(), 'rejected', f), join(pki(), 'trusted', 'certs', f));
      await waitFor(() => src.health().connection === 'connected', 30_000, 'secure session');
      server.update(simMessage('tank-1', { ph: 7.25 }));
      await waitFor(
        () => readings.some((r) => r.fields.ph === 7.25),
        10_000,
        'a value over the secure channel',
      );
      expect(src.health()).toMatchObject({ state: 'ok', monitoredItems: 1 });
    } finally {
      await src.stop();
    }
  }, 90_000);

  it('refuses SignAndEncrypt/Basic256Sha256 from an untrusted client certificate and accepts it once the server trusts it', async () => {
    // A server that, like a real PLC, only accepts client certificates it was told to trust.
    const strictOpc = await startTestOpcuaServer('fgw-opcua-strict-', {
      acceptUnknownClientCertificates: false,
    });
    const strict = strictOpc.server;
    const strictPki = join(strictOpc.dir, 'server');
    const gwDir = join(dir, 'gateway-strict');
    const { source: src, readings: got } = collectingSource(
      phEndpoint('strict', strict.endpointUrl, secure),
      gwDir,
    );
    const gwPki = join(gwDir, 'pki');
    const serverRejected = join(strictPki, 'server', 'rejected');
    // The gateway trusts the server beforehand (as an operator does), so the only refusal is the server's.
    const serverCerts = join(strictPki, 'server', 'own', 'certs');
    mkdirSync(join(gwPki, 'trusted', 'certs'), { recursive: true });
    for (const f of readdirSync(serverCerts).filter((x) => /\.(pem|der)$/.test(x)))
      copyFileSync(join(serverCerts, f), join(gwPki, 'trusted', 'certs', `server-${f}`));
    await src.start();
    try {
      // ...but the server does not trust the gateway: its certificate lands in the server's rejected/.
      await waitFor(
        () => existsSync(serverRejected) && readdirSync(serverRejected).length > 0,
        30_000,
        'gateway certificate refused by the server',
      );
      await new Promise((r) => setTimeout(r, 1500)); // a few more refused attempts
      expect(src.health().connection).not.toBe('connected');
      expect(src.health().state).toBe('down');
      expect(src.health().sessions).toBe(0);
      expect(String(src.health().detail)).toMatch(/BadSecurityChecksFailed|certificate/i);
      expect(got).toHaveLength(0);

      // Trusted on the server: the retrying source opens the secure channel without a restart.
      for (const f of readdirSync(serverRejected))
        renameSync(join(serverRejected, f), join(strictPki, 'server', 'trusted', 'certs', f));
      await waitFor(() => src.health().connection === 'connected', 30_000, 'secure session once trusted');
      strict.update(simMessage('tank-1', { ph: 7.4 }));
      await waitFor(() => got.some((r) => r.fields.ph === 7.4), 10_000, 'a value over the secure channel');
    } finally {
      await src.stop();
      await strictOpc.stop();
    }
  }, 120_000);
});
