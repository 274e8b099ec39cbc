import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpcuaServer, type OpcuaServerHandle } from '../../simulators/opcua/server.js';
import { OpcuaSource } from '../../adapters/opcua/source.js';
import { opcuaEndpointSchema } from '../../adapters/opcua/schema.js';
import type { Reading } from '../../gateway/src/core/types.js';
import { freePort, waitFor } from '../fixtures/ports.js';

/** A node the server refuses to monitor is polled; the others stay monitored. */
describe('OPC UA source polling fallback', () => {
  let server: OpcuaServerHandle;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fgw-opcua-poll-'));
    server = await startOpcuaServer({
      port: await freePort(),
      pkiDir: join(dir, 'server'),
      devices: [{ id: 'tank-1', site: 'plant', kind: 'chlorination' }],
    });
  }, 30_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('polls what cannot be monitored and reports it as degraded', async () => {
    const readings: Reading[] = [];
    const node = { site: 'plant', device: 'tank-1', kind: 'chlorination' };
    const src = new OpcuaSource(
      opcuaEndpointSchema.parse({
        name: 'poll',
        endpointUrl: server.endpointUrl,
        subscription: { publishingIntervalMs: 100, samplingIntervalMs: 50 },
        pollIntervalMs: 200,
        nodes: [
          { ...node, nodeId: 'ns=2;s=plant.tank-1.ph', metric: 'ph' },
          { ...node, nodeId: 'ns=2;s=plant.tank-1.no-such-node', metric: 'orp_mv' },
        ],
      }),
      () => ({
        handleReading: (r: Reading): null => {
          readings.push(r);
          return null;
        },
      }),
      join(dir, 'gateway'),
      pino({ level: 'silent' }),
    );
    await src.start();
    try {
      await waitFor(() => src.health().connection === 'connected', 30_000, 'connected');
      expect(src.health()).toMatchObject({ state: 'degraded', monitoredItems: 1, polledNodes: 1 });
      server.update({
        device: 'tank-1',
        site: 'plant',
        ts: Date.now(),
        values: { ph: 6.9 },
        bad: [],
        silent: false,
        faults: [],
      } as never);
      await waitFor(() => readings.some((r) => r.fields.ph === 6.9), 10_000, 'monitored value');
      // The polled node is read (and its Bad_NodeIdUnknown, with no value, stores nothing).
      const before = src.health().valuesReceived as number;
      await waitFor(() => (src.health().valuesReceived as number) >= before + 2, 5_000, 'polls');
      expect(readings.every((r) => r.fields.orp_mv === undefined)).toBe(true);
    } finally {
      await src.stop();
    }
  }, 60_000);
});
