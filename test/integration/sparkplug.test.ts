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
import { startTcpProxy, type TcpProxy } from '../fixtures/tcp-proxy.js';

const SITE = 'spb-site';
const HOST_ID = 'gw-spb-test';
const STATE_TOPIC = `spBv1.0/STATE/${HOST_ID}`;

interface State {
  online: boolean;
  timestamp: number;
}

/**
 * Sparkplug B end to end: the simulators as an edge node (one per site) on a real Mosquitto, the
 * gateway in this process, InfluxDB 1.6.7. Birth, data by alias, a device death, an unknown alias
 * and a sequence gap each answered by a rebirth command (seen by a test subscriber), a node death
 * through the MQTT will, and data again after every rebirth. The gateway is a Sparkplug host
 * application (its STATE) and reaches the broker through a TCP relay, so its connection can be cut.
 */
describe('Sparkplug B: simulator edge node → Mosquitto → gateway → InfluxDB', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let gw: Gateway & { cleanup(): Promise<void> };
  let sim: Simulation;
  let sub: MqttClient;
  let relay: TcpProxy;
  const commands: Array<{ topic: string; rebirth: boolean }> = [];
  /** STATE messages of the gateway as a subscriber sees them live, in order. */
  const states: State[] = [];

  beforeAll(async () => {
    [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
    relay = await startTcpProxy(mosq.port);
    gw = await startGateway(
      testConfig({
        mqtt: { url: `mqtt://127.0.0.1:${relay.port}`, clientId: 'gw-spb-test' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        sparkplug: {
          enabled: true,
          hostId: HOST_ID,
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
      if (topic === STATE_TOPIC) {
        states.push(JSON.parse(payload.toString()) as State);
        return;
      }
      const p = decodePayload(payload);
      commands.push({
        topic,
        rebirth: p.metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true),
      });
    });
    await sub.subscribeAsync(['spBv1.0/facility/NCMD/#', STATE_TOPIC], { qos: 1 });
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
    await relay?.close();
    await Promise.all([mosq?.stop(), influx?.close()]);
  });

  /** What a client connecting now is told: the retained STATE of the gateway, with its retain flag. */
  async function retainedState(): Promise<{ state: State; retain: boolean }> {
    const c = connect(mosq.url, { clientId: `spb-state-reader-${Date.now()}` });
    try {
      const got = new Promise<{ state: State; retain: boolean }>((resolve) =>
        c.on('message', (_t, payload, packet) =>
          resolve({ state: JSON.parse(payload.toString()) as State, retain: packet.retain }),
        ),
      );
      await c.subscribeAsync(STATE_TOPIC, { qos: 1 });
      return await got;
    } finally {
      await c.endAsync();
    }
  }

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

  it('publishes its host application STATE online, retained, and answers a stale offline STATE with its birth again', async () => {
    const { state, retain } = await retainedState();
    expect(retain).toBe(true);
    expect(state).toEqual({ online: true, timestamp: expect.any(Number) });
    expect(state.timestamp).toBeLessThanOrEqual(Date.now());
    const health = await gw.app!.inject({ url: '/api/health' });
    expect(health.json()).toMatchObject({
      components: { sparkplug: { hostId: HOST_ID, hostState: 'online' } },
    });

    // An offline STATE left on the topic (the will of an earlier connection, delivered late):
    // the gateway, still connected, publishes its birth again with its connection's timestamp.
    const writer = connect(mosq.url, { clientId: 'spb-stale-state' });
    await writer.publishAsync(STATE_TOPIC, JSON.stringify({ online: false, timestamp: 1 }), {
      qos: 1,
      retain: true,
    });
    await writer.endAsync();
    await waitFor(() => gw.sparkplug!.host!.rebirths === 1, 10_000, 'STATE birth again');
    await waitFor(async () => (await retainedState()).state.online, 10_000, 'retained STATE online');
    expect((await retainedState()).state).toEqual(state);
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

  it('marks a device offline on DDEATH, stores nothing sent for it after, asks for a rebirth, and takes it back on its DBIRTH', async () => {
    const s = gw.sparkplug!;
    sim.sparkplug!.deviceDeath(SITE, 'room-1');
    await waitFor(
      async () => (await deviceState(`${SITE}/server-room`)) === 'offline',
      20_000,
      'probe offline',
    );
    expect(await deviceState(`${SITE}/tank-1`)).toBe('online');
    const stored = await count('env_probe', 'temperature_c', 'server-room');
    const unknown = s.counters.rejected.device_unknown;
    const asked = rebirths();
    const births = s.counters.messages.NBIRTH;
    // The edge node sends data for the device it declared dead: 55.5 °C, a value seen nowhere else.
    sim.sparkplug!.sendAfterDeath(SITE, 'room-1', { temperature_c: 55.5, humidity_pct: 12.5 });
    await waitFor(() => s.counters.rejected.device_unknown > unknown, 10_000, 'late data refused');
    await waitFor(() => rebirths() > asked, 10_000, 'NCMD rebirth after data for a dead device');
    await waitFor(() => s.counters.messages.NBIRTH > births, 10_000, 'the rebirth');
    // The rebirth brings back the node and its live devices, not the dead one.
    await flowsAgain('chlorination', 'free_chlorine_mgl', 'tank-1');
    expect(await deviceState(`${SITE}/server-room`)).toBe('offline');
    const late = await influx.query(
      `SELECT count(humidity_pct) FROM env_probe WHERE device='server-room' AND temperature_c = 55.5`,
      'facility',
    );
    expect(late).toEqual([]);
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

  it('says offline through its will when its connection drops, online again on reconnecting, offline before a clean stop', async () => {
    const born = (await retainedState()).state;
    const seen = states.length;
    await relay.interrupt(1500);
    // The broker published the will registered with the CONNECT: offline, with that CONNECT's time.
    await waitFor(() => states.slice(seen).some((st) => !st.online), 10_000, 'STATE offline (will)');
    expect(states.slice(seen).find((st) => !st.online)).toEqual({ online: false, timestamp: born.timestamp });
    // Reconnected: a new CONNECT, a new timestamp, born again.
    await waitFor(
      () => states.slice(seen).some((st) => st.online && st.timestamp > born.timestamp),
      20_000,
      'STATE online after reconnecting',
    );
    const again = (await retainedState()).state;
    expect(again.online).toBe(true);
    expect(again.timestamp).toBeGreaterThan(born.timestamp);

    // A clean stop disconnects (which discards the will): the offline STATE goes out before.
    await gw.mqtt!.stop();
    const { state, retain } = await retainedState();
    expect(retain).toBe(true);
    expect(state.online).toBe(false);
    expect(state.timestamp).toBeGreaterThanOrEqual(again.timestamp);
  });
});
