import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startSimulation, type Simulation } from '../../simulators/index.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { modbusSchema } from '../../adapters/modbus/schema.js';

const SITE = 'plant';

/** The simulators' tanks and probes over Modbus TCP → gateway → InfluxDB 1.6.7. */
describe('simulators over Modbus TCP → gateway → InfluxDB', () => {
  let mosq: Mosquitto;
  let influx: InfluxDB;
  let sim: Simulation;
  let gw: Gateway & { cleanup(): Promise<void> };

  beforeAll(async () => {
    const port = await freePort();
    [mosq, influx] = await Promise.all([startMosquitto(), startInfluxDB()]);
    sim = await startSimulation({
      brokerUrl: null,
      modbusPort: port,
      intervalMs: 1000,
      scenario: {
        name: 'modbus',
        sites: [
          {
            id: SITE,
            devices: [
              { id: 'tank-1', kind: 'chlorination' },
              { id: 'tank-2', kind: 'chlorination' },
              { id: 'room-1', kind: 'env-probe' },
            ],
          },
        ],
      },
      logger: pino({ level: 'warn' }),
    });
    expect(sim.modbusUnits.map((u) => [u.unitId, u.device, u.profile])).toEqual([
      [1, 'tank-1', 'example-chlorine-analyser'],
      [2, 'tank-2', 'example-chlorine-analyser'],
      [3, 'room-1', 'example-temp-humidity-probe'],
    ]);
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-modbus-sim' },
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        modbus: modbusSchema.parse({
          connections: [
            {
              name: 'sim',
              transport: 'tcp',
              host: '127.0.0.1',
              port,
              reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
            },
          ],
          groups: { fast: { intervalMs: 250 } },
          devices: sim.modbusUnits.map((u) => ({
            id: u.device,
            site: u.site,
            kind: u.kind,
            connection: 'sim',
            group: 'fast',
            unitId: u.unitId,
            timeoutMs: 200,
            retries: 0,
            profile: u.profile,
          })),
        }),
      }),
    );
  }, 90_000);

  afterAll(async () => {
    await gw?.cleanup();
    await sim?.stop();
    await Promise.all([mosq?.stop(), influx?.close()]);
  });

  const latest = async (
    measurement: string,
    device: string,
  ): Promise<Record<string, unknown> | undefined> => {
    const res = await influx
      .query(`SELECT * FROM ${measurement} WHERE device = '${device}' ORDER BY time DESC LIMIT 1`, 'facility')
      .catch(() => []);
    const s = res[0];
    const row = s?.values[0];
    return s && row ? Object.fromEntries(s.columns.map((c, i) => [c, row[i]])) : undefined;
  };
  /** A point's quality: a value that is not good is kept as `<metric>_bad` beside `<metric>_quality` (ADR 0070). */
  const qualityOf = (row: Record<string, unknown> | undefined): string | null =>
    row === undefined
      ? null
      : ((Object.entries(row).find(([k, v]) => k.endsWith('_quality') && v != null)?.[1] as
          string | undefined) ?? null);
  const health = (): Record<string, unknown> => gw.health()['modbus:sim'] as Record<string, unknown>;
  const deviceState = (key: string): string =>
    ((health().devices as Record<string, { state: string }>)[key] ?? { state: '?' }).state;

  it('lands every metric of the tanks and the probe in InfluxDB, as the simulator measured them', async () => {
    await waitFor(
      async () => (await latest('env_probe', 'room-1')) !== undefined,
      20_000,
      'room-1 in InfluxDB',
    );
    await waitFor(
      async () => (await latest('chlorination', 'tank-2')) !== undefined,
      20_000,
      'tank-2 in InfluxDB',
    );
    // The simulator's registers change once a second: compare with what it reported last, and
    // try again if a report came in between.
    await waitFor(
      async () => {
        const before = sim.devices().find((d) => d.id === 'tank-1')!;
        await new Promise((r) => setTimeout(r, 600));
        const row = await latest('chlorination', 'tank-1');
        const after = sim.devices().find((d) => d.id === 'tank-1')!;
        if (!row || before.lastTs !== after.lastTs || (row.time as number) < (after.lastTs ?? 0))
          return false;
        const v = after.lastValues!;
        expect(row.site).toBe(SITE);
        expect(row.free_chlorine_mgl).toBeCloseTo(v.free_chlorine_mgl as number, 5);
        expect(row.total_chlorine_mgl).toBeCloseTo(v.total_chlorine_mgl as number, 5);
        expect(row.ph).toBeCloseTo(v.ph as number, 2);
        expect(row.turbidity_ntu).toBeCloseTo(v.turbidity_ntu as number, 2);
        expect(Math.abs((row.orp_mv as number) - (v.orp_mv as number))).toBeLessThanOrEqual(0.5);
        expect(row.level_pct).toBeCloseTo(v.level_pct as number, 1);
        expect(row.temperature_c).toBeCloseTo(v.temperature_c as number, 1);
        expect(row.dosing_pump_on).toBe(v.dosing_pump_on);
        expect(row.quality ?? null).toBeNull();
        return true;
      },
      20_000,
      'tank-1 as measured',
    );
    const probe = await latest('env_probe', 'room-1');
    expect(typeof probe!.temperature_c).toBe('number');
    expect(typeof probe!.dew_point_c).toBe('number'); // derived as for MQTT probes
    expect(typeof probe!.door_open).toBe('boolean');
    expect(health().state).toBe('ok');
  }, 60_000);

  it('a sensor fault answers exception 04: the round is stored as bad, never as good', async () => {
    sim.startFault('tank-2', 'sensor-fault');
    await waitFor(
      async () => qualityOf(await latest('chlorination', 'tank-2')) === 'bad',
      15_000,
      'tank-2 bad',
    );
    // More than 3 polls later: a device that answers exceptions is there, so it stays online.
    await new Promise((r) => setTimeout(r, 1200));
    const dev = (health().devices as Record<string, { state: string; lastError: string }>)[`${SITE}/tank-2`]!;
    expect(dev.state).toBe('online');
    expect(dev.lastError).toMatch(/exception 4/);
    sim.stopFault('tank-2');
    await waitFor(
      async () => {
        const row = await latest('chlorination', 'tank-2');
        return row?.free_chlorine_mgl != null && qualityOf(row) === null;
      },
      15_000,
      'tank-2 good again',
    );
  }, 40_000);

  it('a silent device goes offline after 3 missed polls and comes back', async () => {
    sim.startFault('room-1', 'silent');
    await waitFor(() => deviceState(`${SITE}/room-1`) === 'offline', 15_000, 'room-1 offline');
    const metrics = await gw.metrics.metrics();
    expect(metrics).toMatch(
      /gateway_modbus_device_online\{connection="sim",site="plant",device="room-1"\} 0/,
    );
    expect(metrics).toMatch(
      /gateway_modbus_device_online\{connection="sim",site="plant",device="tank-1"\} 1/,
    );
    expect(health().state).toBe('degraded');
    sim.stopFault('room-1');
    await waitFor(() => deviceState(`${SITE}/room-1`) === 'online', 15_000, 'room-1 online again');
    expect(health().state).toBe('ok');
  }, 40_000);
});
