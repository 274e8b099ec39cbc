import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { OPCUACertificateManager, OPCUAClient } from 'node-opcua';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAMESPACE_URI, type OpcuaServerHandle } from '../../simulators/opcua/server.js';
import { discover, main } from '../../adapters/opcua/discover.js';
import { configSnippet } from '../../adapters/opcua/snippet.js';
import { configSchema } from '../../gateway/src/config/schema.js';
import { startTestOpcuaServer, type TestOpcuaServer } from '../fixtures/opcua.js';

const USER = { username: 'integrator', password: 'browse-me' };

/** Runs `npm run opcua:discover`'s script as a user would; resolves with exit code and output. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'adapters/opcua/discover-cli.ts', ...args], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('opcua:discover against the simulators’ OPC UA server', () => {
  let opc: TestOpcuaServer;
  let server: OpcuaServerHandle;
  let pki: string;

  beforeAll(async () => {
    opc = await startTestOpcuaServer('fgw-opcua-disc-', {
      users: [USER],
      devices: [
        { id: 'tank-1', site: 'plant', kind: 'chlorination' },
        { id: 'room-1', site: 'dc', kind: 'env-probe' },
      ],
    });
    ({ server, dir: pki } = opc);
  }, 30_000);
  afterAll(async () => {
    await opc?.stop();
  });

  it('finds every variable across continuation points, with units and nsu= ids, in a config the gateway accepts', async () => {
    const client = OPCUAClient.create({
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 1, initialDelay: 100 },
      clientCertificateManager: new OPCUACertificateManager({
        rootFolder: join(pki, 'client'),
        automaticallyAcceptUnknownCertificate: true,
      }),
    });
    await client.connect(server.endpointUrl);
    const session = await client.createSession({ type: 1, userName: USER.username, password: USER.password });
    // Two references per answer: every folder with more children needs BrowseNext.
    session.requestedMaxReferencesPerNode = 2;
    try {
      const vars = await discover(session);
      expect(vars).toHaveLength(13); // 8 tank metrics + 5 probe metrics; no fault strings
      expect(vars.find((v) => v.path.join('/') === 'plant/tank-1/free_chlorine_mgl')).toEqual({
        nodeId: `nsu=${NAMESPACE_URI};s=plant.tank-1.free_chlorine_mgl`,
        path: ['plant', 'tank-1', 'free_chlorine_mgl'],
        deviceKind: 'chlorination',
        unit: 'mg/L',
      });
      // Booleans have no engineering units.
      expect(vars.find((v) => v.path.join('/') === 'dc/room-1/smoke')?.unit).toBeUndefined();
      const yaml = configSnippet(server.endpointUrl, vars);
      const nodes = configSchema.parse(parse(yaml)).opcua[0]!.nodes;
      expect(nodes).toHaveLength(13);
      expect(nodes).toContainEqual(
        expect.objectContaining({
          nodeId: `nsu=${NAMESPACE_URI};s=plant.tank-1.ph`,
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
  }, 30_000);

  it('runs as a command: the snippet on stdout with the sign-in used, exit code 0; 2 on bad arguments', async () => {
    const ok = await runCli([
      server.endpointUrl,
      '--user',
      USER.username,
      '--password',
      USER.password,
      '--data-dir',
      join(pki, 'cli'),
      '--max-references',
      '3',
      '--name',
      'plant-plc',
    ]);
    expect(ok.stderr).not.toMatch(/discovery failed/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`# plant/tank-1/ph [pH]`);
    expect(ok.stdout).not.toContain(USER.password);
    const ep = configSchema.parse(parse(ok.stdout)).opcua[0]!;
    expect(ep).toMatchObject({
      name: 'plant-plc',
      endpointUrl: server.endpointUrl,
      securityMode: 'None',
      securityPolicy: 'None',
      auth: { type: 'username', username: USER.username },
    });
    expect(ep.nodes).toHaveLength(13);

    // Argument errors are answered before any connection (in-process: same code, no second spawn).
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => errors.push(String(chunk)) > 0) as typeof process.stderr.write;
    try {
      expect(await main([server.endpointUrl, '--security-mode', 'SignAndEncrypt'])).toBe(2);
      expect(await main(['http://nowhere'])).toBe(2);
    } finally {
      process.stderr.write = write;
    }
    expect(errors.join('')).toMatch(
      /security mode and policy do not go together[\s\S]*usage: npm run opcua:discover/,
    );
  }, 60_000);
});
