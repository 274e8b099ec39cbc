import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAMESPACE_URI, type OpcuaServerHandle } from '../../simulators/opcua/server.js';
import { OPCUA_METRICS } from '../../simulators/opcua/units.js';
import { waitFor } from '../fixtures/ports.js';
import {
  collectingSource,
  simMessage,
  startTestOpcuaServer,
  type TestOpcuaServer,
} from '../fixtures/opcua.js';
import { startTcpProxy, type TcpProxy } from '../fixtures/tcp-proxy.js';

const USER = { username: 'gateway', password: 'pump-room-7' };
const METRICS = Object.keys(OPCUA_METRICS.chlorination);
const NS = 2;

/**
 * The server keeps running while the gateway's session is lost (closed by the server) or its
 * connection broken (through a TCP relay): either way the server ends up holding exactly one
 * subscription with every configured item, and values flow again.
 */
describe('OPC UA source, session lost while the server runs', () => {
  let opc: TestOpcuaServer;
  let server: OpcuaServerHandle;
  let proxy: TcpProxy;
  let dir: string;

  beforeAll(async () => {
    opc = await startTestOpcuaServer('fgw-opcua-lost-', { users: [USER] });
    ({ server, dir } = opc);
    proxy = await startTcpProxy(opc.port);
  }, 30_000);
  afterAll(async () => {
    await proxy?.close();
    await opc?.stop();
  });

  // Half by namespace URI, half by browse path: both are resolved again on the new session.
  const nodes = METRICS.map((metric, i) => ({
    ...(i % 2 === 0
      ? { nodeId: `nsu=${NAMESPACE_URI};s=plant.tank-1.${metric}` }
      : { browsePath: `/Objects/${NS}:plant/${NS}:tank-1/${NS}:${metric}` }),
    site: 'plant',
    device: 'tank-1',
    kind: 'chlorination',
    metric,
  }));
  const endpoint = (url: string, name: string): Record<string, unknown> => ({
    name,
    endpointUrl: url,
    auth: { type: 'username', ...USER },
    subscription: { publishingIntervalMs: 100, samplingIntervalMs: 50, batchSize: 3 },
    reconnect: { initialDelayMs: 200, maxDelayMs: 500 },
    nodes,
  });

  it('rebuilds one subscription on a new session when the server drops the session, and deletes the one left behind', async () => {
    const { source, readings } = collectingSource(endpoint(server.endpointUrl, 'dropped'), join(dir, 'gw1'));
    await source.start();
    try {
      await waitFor(() => source.health().connection === 'connected', 20_000, 'connected');
      expect(server.stats()).toEqual({ sessions: 1, subscriptions: 1, monitoredItems: METRICS.length });

      // The server ends the session but keeps its subscription for a transfer (OPC UA's rule
      // for a session that timed out): left alone, it would live on beside a new one.
      server.closeSessions(true);
      expect(server.stats()).toMatchObject({ sessions: 0, subscriptions: 1 });
      await waitFor(
        () => source.health().sessions === 2 && source.health().connection === 'connected',
        30_000,
        'a new session',
      );
      server.update(simMessage('tank-1', { ph: 6.8 }));
      await waitFor(() => readings.some((r) => r.fields.ph === 6.8), 10_000, 'a value on the new session');
      expect(server.stats()).toEqual({ sessions: 1, subscriptions: 1, monitoredItems: METRICS.length });
      expect(source.health()).toMatchObject({
        state: 'ok',
        subscriptions: 1,
        monitoredItems: METRICS.length,
        failedNodes: 0,
        rebuilds: 1,
      });
    } finally {
      await source.stop();
    }
    expect(server.stats()).toMatchObject({ sessions: 0, subscriptions: 0 });
  }, 60_000);

  it('reactivates the same session after a network break and keeps its one subscription', async () => {
    const { source, readings } = collectingSource(
      endpoint(`opc.tcp://127.0.0.1:${proxy.port}`, 'relayed'),
      join(dir, 'gw2'),
    );
    await source.start();
    try {
      await waitFor(() => source.health().connection === 'connected', 20_000, 'connected');
      await proxy.interrupt(1500);
      await waitFor(() => source.health().reconnections === 1, 20_000, 'connection re-established');
      server.update(simMessage('tank-1', { ph: 7.1 }));
      await waitFor(() => readings.some((r) => r.fields.ph === 7.1), 10_000, 'a value after the break');
      // The server still had the session: it was taken up again, nothing re-created.
      expect(source.health()).toMatchObject({
        state: 'ok',
        sessions: 1,
        rebuilds: 0,
        subscriptions: 1,
        monitoredItems: METRICS.length,
      });
      expect(server.stats()).toEqual({ sessions: 1, subscriptions: 1, monitoredItems: METRICS.length });
    } finally {
      await source.stop();
    }
  }, 60_000);
});
