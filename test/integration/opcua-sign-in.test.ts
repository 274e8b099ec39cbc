import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { OPCUACertificateManager } from 'node-opcua';
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

const USER = { username: 'operator', password: 'chlorine-0.3' };

/** Sign-in with a user name and password, and with a user certificate, against a server that checks both. */
describe('OPC UA source sign-in', () => {
  let opc: TestOpcuaServer;
  let server: OpcuaServerHandle;
  let dir: string;
  const serverPki = (): string => join(dir, 'server');

  beforeAll(async () => {
    opc = await startTestOpcuaServer('fgw-opcua-user-', {
      users: [USER],
      acceptUnknownUserCertificates: false,
    });
    ({ server, dir } = opc);
  }, 30_000);
  afterAll(async () => {
    await opc?.stop();
  });

  const endpoint = (name: string, auth: Record<string, unknown>): Record<string, unknown> =>
    phEndpoint(name, server.endpointUrl, { auth });

  it('signs in with the right password and is refused, with the reason in health, with a wrong one', async () => {
    const wrong = collectingSource(
      endpoint('wrong', { type: 'username', username: USER.username, password: 'x' }),
      join(dir, 'gw-wrong'),
    );
    const right = collectingSource(endpoint('right', { type: 'username', ...USER }), join(dir, 'gw-right'));
    await Promise.all([wrong.source.start(), right.source.start()]);
    try {
      await waitFor(() => right.source.health().state === 'ok', 20_000, 'signed in');
      await waitFor(() => wrong.source.health().detail !== undefined, 20_000, 'refusal');
      server.update(simMessage('tank-1', { ph: 7.05 }));
      await waitFor(() => right.readings.some((r) => r.fields.ph === 7.05), 10_000, 'a value');

      const h = wrong.source.health();
      expect(h).toMatchObject({ state: 'down', sessions: 0, subscriptions: 0 });
      expect(String(h.detail)).toMatch(/sign-in refused .*user name "operator".*BadUserAccessDenied/);
      expect(wrong.readings).toHaveLength(0);
    } finally {
      await Promise.all([wrong.source.stop(), right.source.stop()]);
    }
  }, 60_000);

  it('signs in with a user certificate once the server trusts it', async () => {
    // A user certificate and key, as an operator would issue them for the gateway.
    const userPki = join(dir, 'user-pki');
    const cm = new OPCUACertificateManager({ rootFolder: userPki });
    await cm.initialize();
    const certificateFile = join(userPki, 'own', 'certs', 'gateway-user.pem');
    await cm.createSelfSignedCertificate({
      outputFile: certificateFile,
      subject: '/CN=gateway-user/O=facility-gateway',
      applicationUri: 'urn:facility-gateway:user',
      dns: [],
      startDate: new Date(),
      validity: 365,
    });
    await cm.dispose();
    const privateKeyFile = join(userPki, 'own', 'private', 'private_key.pem');

    const { source, readings } = collectingSource(
      endpoint('x509', { type: 'certificate', certificateFile, privateKeyFile }),
      join(dir, 'gw-x509'),
    );
    await source.start();
    try {
      // Not trusted yet: refused, and the server keeps the certificate in its rejected folder.
      const rejected = join(serverPki(), 'user', 'rejected');
      await waitFor(
        () => existsSync(rejected) && readdirSync(rejected).length > 0,
        20_000,
        'user certificate rejected',
      );
      await waitFor(() => source.health().detail !== undefined, 10_000, 'refusal in health');
      expect(source.health()).toMatchObject({ state: 'down', sessions: 0 });
      expect(String(source.health().detail)).toMatch(/sign-in refused .*user certificate/);

      const trusted = join(serverPki(), 'user', 'trusted', 'certs');
      mkdirSync(trusted, { recursive: true });
      for (const f of readdirSync(rejected)) renameSync(join(rejected, f), join(trusted, f));
      await waitFor(() => source.health().state === 'ok', 20_000, 'signed in with the certificate');
      server.update(simMessage('tank-1', { ph: 7.15 }));
      await waitFor(() => readings.some((r) => r.fields.ph === 7.15), 10_000, 'a value');
    } finally {
      await source.stop();
    }
  }, 60_000);
});
