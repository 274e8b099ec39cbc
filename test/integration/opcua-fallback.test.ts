import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpcuaServerHandle } from '../../simulators/opcua/server.js';
import { waitFor } from '../fixtures/ports.js';
import {
  collectingSource,
  simMessage,
  startTestOpcuaServer,
  type TestOpcuaServer,
} from '../fixtures/opcua.js';

const node = { site: 'plant', device: 'tank-1', kind: 'chlorination' };

/**
 * A server that allows two monitored items per subscription, as small PLCs do: the third node is
 * polled; nodes that do not exist are reported with their reason. And the absolute deadband.
 */
describe('OPC UA source: polling fallback, failed nodes, deadband', () => {
  let opc: TestOpcuaServer;
  let server: OpcuaServerHandle;
  let dir: string;

  beforeAll(async () => {
    opc = await startTestOpcuaServer('fgw-opcua-poll-', { maxMonitoredItemsPerSubscription: 2 });
    ({ server, dir } = opc);
  }, 30_000);
  afterAll(async () => {
    await opc?.stop();
  });

  it('polls a node the server refuses to monitor, and reports nodes that cannot be read with their reason', async () => {
    const { source, readings } = collectingSource(
      {
        name: 'poll',
        endpointUrl: server.endpointUrl,
        subscription: { publishingIntervalMs: 100, samplingIntervalMs: 50 },
        pollIntervalMs: 200,
        nodes: [
          { ...node, nodeId: 'ns=2;s=plant.tank-1.ph', metric: 'ph' },
          { ...node, nodeId: 'ns=2;s=plant.tank-1.orp_mv', metric: 'orp_mv' },
          // Refused with BadTooManyMonitoredItems: polled.
          { ...node, nodeId: 'ns=2;s=plant.tank-1.level_pct', metric: 'level_pct' },
          // Cannot be read at all: failed, with the reason.
          { ...node, nodeId: 'ns=2;s=plant.tank-1.no-such-node', metric: 'turbidity_ntu' },
          { ...node, nodeId: 'nsu=urn:nobody:plant;s=tank-1.ph', metric: 'total_chlorine_mgl' },
          { ...node, browsePath: '/Objects/2:plant/2:tank-9/2:ph', metric: 'temperature_c' },
        ],
      },
      join(dir, 'gateway'),
    );
    await source.start();
    try {
      await waitFor(() => source.health().connection === 'connected', 30_000, 'connected');
      const h = source.health();
      expect(h).toMatchObject({
        state: 'degraded',
        configuredNodes: 6,
        monitoredItems: 2,
        polledNodes: 1,
        failedNodes: 3,
      });
      const failures = h.failures as Array<{ node: string; reason: string }>;
      expect(failures.find((f) => f.node === 'ns=2;s=plant.tank-1.no-such-node')?.reason).toMatch(
        /BadNodeIdUnknown/,
      );
      expect(failures.find((f) => f.node.startsWith('nsu=urn:nobody'))?.reason).toMatch(/urn:nobody:plant/);
      expect(failures.find((f) => f.node.includes('tank-9'))?.reason).toMatch(/browse path not found: Bad/);
      expect(String(h.detail)).toMatch(/2 of 6 nodes monitored, 1 polled, 3 failed/);

      server.update(simMessage('tank-1', { ph: 6.9, orp_mv: 640, level_pct: 55 }));
      await waitFor(() => readings.some((r) => r.fields.ph === 6.9), 10_000, 'monitored value');
      await waitFor(() => readings.some((r) => r.fields.level_pct === 55), 10_000, 'polled value');
      // Nothing arrives under the metrics of the failed nodes.
      expect(readings.some((r) => 'turbidity_ntu' in r.fields || 'total_chlorine_mgl' in r.fields)).toBe(
        false,
      );
    } finally {
      await source.stop();
    }
  }, 60_000);

  it('filters a change inside an absolute deadband and passes one outside it', async () => {
    const { source, readings } = collectingSource(
      {
        name: 'deadband',
        endpointUrl: server.endpointUrl,
        // Sampling 0: the server evaluates the filter on every write, not on a timer, so a value
        // written and replaced at once is still judged.
        subscription: {
          publishingIntervalMs: 100,
          samplingIntervalMs: 0,
          deadband: { type: 'absolute', value: 0.5 },
        },
        nodes: [
          { ...node, nodeId: 'ns=2;s=plant.tank-1.ph', metric: 'ph' },
          { ...node, nodeId: 'ns=2;s=plant.tank-1.orp_mv', metric: 'orp_mv', deadband: { type: 'none' } },
        ],
      },
      join(dir, 'gateway-deadband'),
    );
    await source.start();
    try {
      await waitFor(() => source.health().state === 'ok', 30_000, 'connected');
      // Far from whatever the server held before (the first report is the current value).
      server.update(simMessage('tank-1', { ph: 5.0, orp_mv: 600 }));
      await waitFor(() => readings.some((r) => r.fields.ph === 5.0), 10_000, 'first value');
      // 0.3 from the last reported pH: inside the deadband. orp_mv has none and shows the
      // server published this instant.
      server.update(simMessage('tank-1', { ph: 5.3, orp_mv: 601 }));
      await waitFor(() => readings.some((r) => r.fields.orp_mv === 601), 10_000, 'orp 601');
      // 0.8 from 5.0: outside.
      server.update(simMessage('tank-1', { ph: 5.8, orp_mv: 602 }));
      await waitFor(() => readings.some((r) => r.fields.ph === 5.8), 10_000, 'pH beyond the deadband');
      const ph = readings.map((r) => r.fields.ph).filter((v) => v !== undefined);
      expect(ph).not.toContain(5.3);
      expect(ph.slice(-2)).toEqual([5.0, 5.8]);
    } finally {
      await source.stop();
    }
  }, 60_000);
});
