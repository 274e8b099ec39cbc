import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NAMESPACE_URI, startOpcuaServer, type OpcuaServerHandle } from '../../simulators/opcua/server.js';
import { OPCUA_METRICS } from '../../simulators/opcua/units.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { simMessage } from '../fixtures/opcua.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import type { OpcuaSource } from '../../adapters/opcua/source.js';
import { opcuaEndpointSchema } from '../../adapters/opcua/schema.js';

const SITE = 'plant';
const TANKS = ['tank-1', 'tank-2', 'tank-3', 'tank-4', 'tank-5'];
const PROBES = ['room-1', 'room-2'];
const DEVICES = [
  ...TANKS.map((id) => ({ id, site: SITE, kind: 'chlorination' as const })),
  ...PROBES.map((id) => ({ id, site: SITE, kind: 'env-probe' as const })),
];
// The simulator's namespace is the first one registered after node-opcua's own (ns=1).
const NS = 2;

/** `step` moves pH by 0.01 (beyond the test's deadband) so a repeated push is a change. */
function tankValues(i: number, step = 0): Record<string, number | boolean> {
  return {
    free_chlorine_mgl: 0.5 + i / 10,
    total_chlorine_mgl: 0.7 + i / 10,
    ph: Math.round((7.2 + step / 100) * 100) / 100,
    turbidity_ntu: 0.3,
    orp_mv: 650 + i,
    level_pct: 80 - i,
    temperature_c: 18,
    dosing_pump_on: i % 2 === 0,
  };
}
function probeValues(i: number): Record<string, number | boolean> {
  return { temperature_c: 21 + i, humidity_pct: 45, smoke: false, water_leak: false, door_open: i === 1 };
}

/** 50 monitored items from a real OPC UA server into InfluxDB 1.6.7. */
describe('OPC UA source → gateway → InfluxDB', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };
  let server: OpcuaServerHandle;
  let port: number;
  let serverPki: string;
  let source: OpcuaSource;

  const startServer = (): Promise<OpcuaServerHandle> =>
    startOpcuaServer({ port, devices: DEVICES, pkiDir: serverPki });

  let step = 0;
  function pushAll(ts: number, move = false): void {
    if (move) step = (step + 1) % 50;
    TANKS.forEach((d, i) => server.update(simMessage(d, tankValues(i, step), { ts })));
    PROBES.forEach((d, i) => server.update(simMessage(d, probeValues(i), { ts, kind: 'env-probe' })));
  }

  beforeAll(async () => {
    port = await freePort();
    serverPki = mkdtempSync(join(tmpdir(), 'fgw-opcua-srv-'));
    [mosq, influx, server] = await Promise.all([startMosquitto(), startInfluxDB(), startServer()]);
    const nodes = DEVICES.flatMap((d) =>
      Object.keys(OPCUA_METRICS[d.kind]).map((metric) =>
        // Probes by browse path, tanks by node id: every way of naming a node is exercised.
        d.kind === 'env-probe'
          ? {
              browsePath: `/Objects/${NS}:${SITE}/${NS}:${d.id}/${NS}:${metric}`,
              site: SITE,
              device: d.id,
              kind: d.kind,
              metric,
            }
          : {
              // tank-1 names its namespace by URI (`nsu=`), resolved against the server's namespace array.
              nodeId:
                d.id === 'tank-1'
                  ? `nsu=${NAMESPACE_URI};s=${SITE}.${d.id}.${metric}`
                  : `ns=${NS};s=${SITE}.${d.id}.${metric}`,
              site: SITE,
              device: d.id,
              kind: d.kind,
              metric,
            },
      ),
    );
    expect(nodes).toHaveLength(50);
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-opcua-test' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        opcua: [
          opcuaEndpointSchema.parse({
            name: 'plant-plc',
            endpointUrl: server.endpointUrl,
            // 20 per request: three CreateMonitoredItems requests. A percent deadband (of EURange):
            // the Boolean variables refuse it and are monitored without a filter.
            subscription: {
              publishingIntervalMs: 100,
              samplingIntervalMs: 50,
              batchSize: 20,
              deadband: { type: 'percent', value: 0.01 },
            },
            reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
            nodes,
          }),
          // Nothing listens here: this endpoint must not hold up or stop the gateway.
          opcuaEndpointSchema.parse({
            name: 'dead-plc',
            endpointUrl: `opc.tcp://127.0.0.1:${await freePort()}`,
            reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
            nodes: nodes.slice(0, 1),
          }),
        ],
      }),
    );
    source = gw.opcua[0]!;
    await waitFor(() => source.health().connection === 'connected', 30_000, 'OPC UA source connected');
  }, 90_000);

  afterAll(async () => {
    await gw?.cleanup();
    await server?.stop();
    await Promise.all([mosq?.stop(), influx?.close()]);
    rmSync(serverPki, { recursive: true, force: true });
  });

  async function rowsAt(measurement: string, ts: number): Promise<Array<Record<string, unknown>>> {
    const res = await influx.query(`SELECT * FROM ${measurement} WHERE time = ${ts}ms`, 'facility');
    const s = res[0];
    if (!s) return [];
    return s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]])));
  }

  it('lands 50 monitored items with measurement, tags, fields and source timestamps', async () => {
    expect(source.monitoredItemCount()).toBe(50);
    const ts = Date.now() - 1000;
    pushAll(ts);
    await waitFor(async () => (await rowsAt('chlorination', ts)).length === 5, 20_000, '5 tank points');
    await waitFor(async () => (await rowsAt('env_probe', ts)).length === 2, 20_000, '2 probe points');
    const tanks = await rowsAt('chlorination', ts);
    let fields = 0;
    for (const row of tanks) {
      const i = TANKS.indexOf(row.device as string);
      expect(row.site).toBe(SITE);
      for (const [k, v] of Object.entries(tankValues(i))) {
        expect(row[k], `${row.device as string}.${k}`).toBe(v);
        fields++;
      }
      // Measured together, at one source timestamp, with good status: one good point.
      expect(row.quality ?? null).toBeNull();
    }
    const probes = await rowsAt('env_probe', ts);
    for (const row of probes) {
      const i = PROBES.indexOf(row.device as string);
      for (const [k, v] of Object.entries(probeValues(i))) {
        expect(row[k], `${row.device as string}.${k}`).toBe(v);
        fields++;
      }
      expect(row.dew_point_c).toBeTypeOf('number');
    }
    expect(fields).toBe(50);
    const h = source.health();
    expect(h).toMatchObject({ state: 'ok', connection: 'connected', subscriptions: 1, monitoredItems: 50 });
    expect(gw.health()['opcua:plant-plc']?.state).toBe('ok');
    const dead = gw.health()['opcua:dead-plc'];
    expect(dead).toMatchObject({ state: 'down', connection: 'connecting', monitoredItems: 0 });
    expect(String(dead?.detail)).toMatch(/ECONNREFUSED|connect|refused|timed? ?out/i);
  });

  it('keeps a bad and a good value of one publish at one source timestamp apart: the good stays good', async () => {
    const ts = Date.now() - 500;
    // pH moved beyond the deadband, so its new value is notified with the failed chlorine's status.
    step = (step + 1) % 50;
    const values = tankValues(0, step);
    delete values.free_chlorine_mgl;
    // One scan: the chlorine analyser failed (Bad_SensorFailure), pH and the rest are good.
    server.update(simMessage('tank-1', values, { ts, bad: ['free_chlorine_mgl'] }));
    await waitFor(
      async () =>
        (await rowsAt('chlorination', ts)).find((r) => r.device === 'tank-1')?.free_chlorine_mgl_quality ===
        'bad',
      20_000,
      'the bad value',
    );
    await waitFor(
      async () => (await rowsAt('chlorination', ts)).find((r) => r.device === 'tank-1')?.ph === values.ph,
      10_000,
      'the good values',
    );
    const row = (await rowsAt('chlorination', ts)).find((r) => r.device === 'tank-1')!;
    // The failed analyser's value is kept apart, never under its metric's name ...
    expect(row.free_chlorine_mgl).toBeNull();
    expect(row.free_chlorine_mgl_bad).toBeTypeOf('number');
    // ... and the good values of the same instant carry no quality of anyone else's.
    expect(row.ph_quality ?? null).toBeNull();
    expect(row.quality ?? null).toBeNull();
    expect(source.health().badValues).toBeGreaterThan(0);
    // Read back through the history route: pH at that instant, chlorine only as not good.
    const get = async (metric: string) =>
      (
        await gw.app!.inject({
          url: `/api/devices/${SITE}%2Ftank-1/readings?metric=${metric}&from=${ts - 1}&to=${ts + 1}`,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        })
      ).json() as {
        points: Array<{ ts: number; value: unknown }>;
        notGood: Array<{ ts: number; quality: string }>;
      };
    expect((await get('ph')).points).toEqual([{ ts, value: values.ph }]);
    const cl = await get('free_chlorine_mgl');
    expect(cl.points).toEqual([]);
    expect(cl.notGood).toEqual([{ ts, quality: 'bad' }]);
  });

  it('restores exactly one subscription after the server was away for 30 s, values flowing within 10 s', async () => {
    // Good values up to the moment the server goes away.
    const lastGood = Date.now() - 200;
    pushAll(lastGood, true);
    await waitFor(async () => (await rowsAt('chlorination', lastGood)).length === 5, 10_000, 'values before');
    const sessionsBefore = source.health().sessions as number;
    const stoppedAt = Date.now();
    await server.stop();
    await waitFor(() => source.health().connection === 'reconnecting', 10_000, 'reconnecting');
    expect(source.health().state).toBe('down');
    // Away for 30 s, as long as a PLC restart or a switch reboot takes.
    await new Promise((r) => setTimeout(r, 30_000));
    server = await startServer();
    const back = Date.now();
    // The restarted server holds its initial values, Uncertain and stamped at its start (inside
    // the outage window). Wait for the gateway to store them before the first real value.
    await waitFor(
      () => source.health().connection === 'connected' && source.health().sessions === sessionsBefore + 1,
      10_000,
      'a new session on the restarted server',
    );
    const outage = async (): Promise<unknown[][]> =>
      (
        await influx.query(
          `SELECT ph, ph_quality FROM chlorination WHERE time > ${lastGood}ms AND time < ${back}ms`,
          'facility',
        )
      )[0]?.values ?? [];
    await waitFor(async () => (await outage()).length >= 5, 10_000, 'initial values of the restarted server');
    const timer = setInterval(() => pushAll(Date.now(), true), 250);
    try {
      await waitFor(
        async () => {
          const res = await influx.query(
            `SELECT count(ph) FROM chlorination WHERE time >= ${back}ms`,
            'facility',
          );
          return Number(res[0]?.values[0]?.[1] ?? 0) >= 5;
        },
        10_000,
        'values within 10 s of the return of the server',
      );
    } finally {
      clearInterval(timer);
    }
    // Between the last good value and the return, only what the restarted server marked
    // Uncertain, kept apart as ph_bad with its quality (ADR 0070): nothing stored as good.
    const rows = await outage();
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const row of rows) {
      expect(Number(new Date(row[0] as string))).toBeGreaterThanOrEqual(stoppedAt);
      expect(row[1]).toBeNull();
      expect(row[2]).toBe('uncertain');
    }

    // One subscription with every item, on the gateway's side and counted by the server itself.
    expect(source.health()).toMatchObject({
      state: 'ok',
      connection: 'connected',
      subscriptions: 1,
      monitoredItems: 50,
      failedNodes: 0,
    });
    expect(server.stats()).toEqual({ sessions: 1, subscriptions: 1, monitoredItems: 50 });
  }, 90_000);
});
