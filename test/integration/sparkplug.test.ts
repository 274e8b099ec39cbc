import { connect, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePayload } from '../../adapters/mqtt/sparkplug/codec.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startSimulation, type Simulation } from '../../simulators/index.js';
import { ADMIN_TOKEN, startGateway, testConfig } from '../fixtures/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { waitFor } from '../fixtures/ports.js';

const SITE = 'spb-site';

/**
 * Sparkplug B end to end: the simulators as an edge node (one per site) on a real Mosquitto, the
 * gateway in this process, InfluxDB 1.6.7. Birth, data by alias, a device death, an unknown alias
 * and a sequence gap each answered by a rebirth command (seen by a test subscriber), a node death
 * through the MQTT will, and data again after every rebirth.
 */
describe('Sparkplug B: simulator edge node → Mosquitto → gateway → InfluxDB', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };
  let sim: Simulation;
  let sub: MqttClient;
  const commands: Array<{ topic: string; rebirth: boolean }> = [];

  beforeAll(async () => {
    [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-spb-test' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        sparkplug: {
          enabled: true,
          groups: ['facility'],
          rebirthMinIntervalMs: 200,
          devices: [
            // Node-level metrics are not stored unless mapped; the devices bring their kind in DBIRTH.
            {
              group: 'facility',
              node: SITE,
              device: 'room-1',
              id: 'server-room',
              kind: 'env-probe',
              metrics: {},
            },
          ],
        },
      }),
    );
    sub = connect(mosq.url, { clientId: 'spb-test-observer' });
    sub.on('message', (topic, payload) => {
      const p = decodePayload(payload);
      commands.push({
        topic,
        rebirth: p.metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true),
      });
    });
    await sub.subscribeAsync('spBv1.0/facility/NCMD/#', { qos: 0 });
    sim = await startSimulation({
      brokerUrl: mosq.url,
      protocol: 'sparkplug',
      intervalMs: 500,
      seed: 11,
      scenario: {
        name: 'sparkplug-test',
        sites: [
          {
            id: SITE,
            devices: [
              { id: 'tank-1', kind: 'chlorination' },
              { id: 'room-1', kind: 'env-probe' },
            ],
          },
        ],
      },
      logger: pino({ level: 'warn' }),
    });
  });

  afterAll(async () => {
    await sim?.stop();
    await sub?.endAsync();
    await gw?.cleanup();
    await Promise.all([mosq?.stop(), influx?.close()]);
  });

  async function count(measurement: string, field: string, device: string): Promise<number> {
    const res = await influx.query(
      `SELECT count(${field}) FROM ${measurement} WHERE site='${SITE}' AND device='${device}'`,
      'facility',
    );
    return Number(res[0]?.values[0]?.[1] ?? 0);
  }

  async function deviceState(key: string): Promise<string> {
    const res = await gw.app!.inject({
      url: `/api/devices/${encodeURIComponent(key)}`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { state: string }).state;
  }

  /** Waits until more points than now are stored for the device: data flows. */
  async function flowsAgain(measurement: string, field: string, device: string): Promise<void> {
    const before = await count(measurement, field, device);
    await waitFor(
      async () => (await count(measurement, field, device)) >= before + 2,
      30_000,
      `${device} data`,
    );
  }

  const rebirths = (): number =>
    commands.filter((c) => c.topic === `spBv1.0/facility/NCMD/${SITE}` && c.rebirth).length;

  it('births the node and its devices and stores their data by alias in the InfluxDB schema', async () => {
    await waitFor(
      async () => (await count('chlorination', 'free_chlorine_mgl', 'tank-1')) >= 3,
      30_000,
      'tank data',
    );
    await waitFor(
      async () => (await count('env_probe', 'temperature_c', 'server-room')) >= 3,
      30_000,
      'probe data',
    );
    const s = gw.sparkplug!;
    expect(s.counters.messages.NBIRTH).toBe(1);
    expect(s.counters.messages.DBIRTH).toBe(2);
    expect(s.counters.messages.DDATA).toBeGreaterThan(2);
    expect(s.view()).toEqual([
      expect.objectContaining({ group: 'facility', node: SITE, online: true, awaitingRebirth: false }),
    ]);
    const fields = await influx.query('SHOW FIELD KEYS FROM chlorination', 'facility');
    const names = fields[0]!.values.map((v) => v[0]);
    expect(names).toEqual(expect.arrayContaining(['free_chlorine_mgl', 'ph', 'dosing_pump_on']));
    // The mapped device: stored under its configured id, with the derived dew point like JSON telemetry.
    const dp = await influx.query(
      `SELECT last(dew_point_c) FROM env_probe WHERE device='server-room'`,
      'facility',
    );
    expect(typeof dp[0]?.values[0]?.[1]).toBe('number');
    expect(await deviceState(`${SITE}/tank-1`)).toBe('online');
    expect(s.counters.rejected.seq_gap + s.counters.rejected.alias_unknown).toBe(0);
    expect(rebirths()).toBe(0);
  });

  it('answers an unknown alias with a rebirth request, then takes data again', async () => {
    const s = gw.sparkplug!;
    sim.sparkplug!.sendUnknownAlias(SITE, 'tank-1');
    await waitFor(() => rebirths() >= 1, 20_000, 'NCMD rebirth after unknown alias');
    expect(s.counters.rejected.alias_unknown).toBe(1);
    await waitFor(() => s.counters.messages.NBIRTH >= 2, 20_000, 'the rebirth');
    expect(sim.sparkplug!.rebirths.get(SITE)).toBeGreaterThanOrEqual(1);
    await flowsAgain('chlorination', 'free_chlorine_mgl', 'tank-1');
  });

  it('answers a sequence gap with a rebirth request, then takes data again', async () => {
    const s = gw.sparkplug!;
    const before = rebirths();
    const births = s.counters.messages.NBIRTH;
    sim.sparkplug!.loseNextMessage(SITE);
    await waitFor(() => s.counters.rejected.seq_gap >= 1, 20_000, 'seq gap seen');
    await waitFor(() => rebirths() > before, 20_000, 'NCMD rebirth after a gap');
    await waitFor(() => s.counters.messages.NBIRTH > births, 20_000, 'the rebirth');
    await flowsAgain('chlorination', 'free_chlorine_mgl', 'tank-1');
    await flowsAgain('env_probe', 'temperature_c', 'server-room');
  });

  it('marks a device offline on DDEATH and online again on its DBIRTH', async () => {
    sim.sparkplug!.deviceDeath(SITE, 'room-1');
    await waitFor(
      async () => (await deviceState(`${SITE}/server-room`)) === 'offline',
      20_000,
      'probe offline',
    );
    expect(await deviceState(`${SITE}/tank-1`)).toBe('online');
    const stored = await count('env_probe', 'temperature_c', 'server-room');
    await new Promise((r) => setTimeout(r, 1500));
    expect(await count('env_probe', 'temperature_c', 'server-room')).toBe(stored);
    sim.sparkplug!.reviveDevice(SITE, 'room-1');
    await waitFor(
      async () => (await deviceState(`${SITE}/server-room`)) === 'online',
      20_000,
      'probe online',
    );
    await flowsAgain('env_probe', 'temperature_c', 'server-room');
  });

  it('marks the node and its devices offline on NDEATH (the MQTT will), and takes them back on rebirth', async () => {
    const s = gw.sparkplug!;
    sim.sparkplug!.crash(SITE);
    await waitFor(() => s.counters.messages.NDEATH >= 1, 20_000, 'NDEATH will');
    await waitFor(async () => (await deviceState(`${SITE}/tank-1`)) === 'offline', 20_000, 'tank offline');
    expect(await deviceState(`${SITE}/server-room`)).toBe('offline');
    expect(s.view()[0]!.online).toBe(false);
    sim.sparkplug!.restart(SITE);
    await waitFor(async () => (await deviceState(`${SITE}/tank-1`)) === 'online', 20_000, 'tank online');
    await flowsAgain('chlorination', 'free_chlorine_mgl', 'tank-1');
    expect(s.counters.rejected.death_stale).toBe(0);
  });

  it('faces the same rules as JSON telemetry: smoke over Sparkplug raises the critical alarm', async () => {
    sim.startFault('room-1', 'smoke', 60_000);
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    await waitFor(
      async () => {
        const res = await gw.app!.inject({
          url: `/api/alarms?state=active&device=server-room`,
          headers: auth,
        });
        expect(res.statusCode, res.body).toBe(200);
        const { alarms } = res.json() as { alarms: Array<{ rule: string; severity: string; site: string }> };
        return alarms.some(
          (a) => a.rule === 'serverroom.smoke' && a.severity === 'critical' && a.site === SITE,
        );
      },
      20_000,
      'smoke alarm',
    );
    sim.stopFault('room-1');
  });

  it('does not store a value the edge node sends as null, and counts everything in /metrics', async () => {
    const s = gw.sparkplug!;
    const nulls = s.counters.nullValues;
    sim.startFault('tank-1', 'sensor-fault', 60_000);
    await waitFor(() => s.counters.nullValues > nulls, 20_000, 'null values');
    sim.stopFault('tank-1');
    const res = await gw.app!.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    const m = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(res.body)?.[1] ?? NaN);
    expect(m('gateway_sparkplug_rebirth_requests_total')).toBeGreaterThanOrEqual(2);
    expect(m('gateway_sparkplug_null_values_total')).toBeGreaterThan(0);
    expect(m('gateway_sparkplug_readings_total')).toBeGreaterThan(10);
    expect(res.body).toMatch(/gateway_sparkplug_rejected_total\{reason="seq_gap"\} [1-9]/);
    expect(res.body).toMatch(/gateway_sparkplug_messages_total\{type="DDEATH"\} 1/);
    const health = await gw.app!.inject({ url: '/api/health' });
    expect(health.json()).toMatchObject({ components: { sparkplug: { state: 'ok', nodesOnline: 1 } } });
  });
});
