import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OPCUACertificateManager, OPCUAClient } from 'node-opcua';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpcuaServer, type OpcuaServerHandle } from '../../simulators/opcua/server.js';
import { discover } from '../../adapters/opcua/discover.js';
import { configSnippet } from '../../adapters/opcua/snippet.js';
import { configSchema } from '../../gateway/src/config/schema.js';
import { freePort } from '../fixtures/ports.js';

describe('opcua:discover against the simulators’ OPC UA server', () => {
  let server: OpcuaServerHandle;
  let pki: string;

  beforeAll(async () => {
    pki = mkdtempSync(join(tmpdir(), 'fgw-opcua-disc-'));
    server = await startOpcuaServer({
      port: await freePort(),
      pkiDir: join(pki, 'server'),
      devices: [
        { id: 'tank-1', site: 'plant', kind: 'chlorination' },
        { id: 'room-1', site: 'dc', kind: 'env-probe' },
      ],
    });
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(pki, { recursive: true, force: true });
  });

  it('finds every variable and prints a config the gateway accepts', async () => {
    const client = OPCUAClient.create({
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 1, initialDelay: 100 },
      clientCertificateManager: new OPCUACertificateManager({
        rootFolder: join(pki, 'client'),
        automaticallyAcceptUnknownCertificate: true,
      }),
    });
    await client.connect(server.endpointUrl);
    const session = await client.createSession();
    try {
      const vars = await discover(session);
      const yaml = configSnippet(server.endpointUrl, vars);
      const cfg = configSchema.parse(parse(yaml));
      const nodes = cfg.opcua[0]!.nodes;
      expect(nodes).toHaveLength(13); // 8 tank metrics + 5 probe metrics; no fault strings
      expect(nodes).toContainEqual(
        expect.objectContaining({
          nodeId: 'ns=2;s=plant.tank-1.ph',
          site: 'plant',
          device: 'tank-1',
          kind: 'chlorination',
          metric: 'ph',
        }),
      );
      expect(nodes).toContainEqual(
        expect.objectContaining({ site: 'dc', device: 'room-1', kind: 'env-probe', metric: 'humidity_pct' }),
      );
    } finally {
      await session.close();
      await client.disconnect();
    }
  });
});
