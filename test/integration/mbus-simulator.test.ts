import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startSimulation, type Simulation } from '../../simulators/index.js';
import { mbusSchema } from '../../adapters/mbus/schema.js';
import type { Source } from '../../gateway/src/core/source.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startInfluxDB, type InfluxDB } from '../fixtures/influxdb.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';
import type { MbusMeterHealth } from '../../adapters/mbus/source.js';

const SITE = 'plant';

/**
 * The simulators' gas and water meters answering over M-Bus (TCP, as behind a transparent serial
 * server), read by the gateway by primary and by secondary address into a real InfluxDB 1.6.7,
 * with the consumption derived by the ingest pipeline as for MQTT meters.
 */
describe('M-Bus: simulated meters → gateway → InfluxDB', () => {
  let influx: InfluxDB;
  let sim: Simulation;
  let gw: Gateway & { cleanup(): Promise<void> };
  let source: Source;

  const meterHealth = (device: string): MbusMeterHealth | undefined =>
    (source.health().meters as Record<string, MbusMeterHealth> | undefined)?.[`${SITE}/${device}`];
  const errors = (): Record<string, number> => source.health().errors as Record<string, number>;

  async function rows(measurement: string, device: string): Promise<Array<Record<string, unknown>>> {
    const res = await influx.query(`SELECT * FROM ${measurement} WHERE device = '${device}'`, 'facility');
    const s = res[0];
    if (!s) return [];
    return s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]])));
  }

  beforeAll(async () => {
    influx = await startInfluxDB();
    sim = await startSimulation({
      brokerUrl: null,
      mbusPort: 0,
      seed: 7,
      // Simulated minutes per real second, so that the indices move between polls.
      speed: 120,
      intervalMs: 100,
      logger: pino({ level: 'warn' }),
      scenario: {
        sites: [
          {
            id: SITE,
            devices: [
              { id: 'gm-1', kind: 'gas-meter' },
              { id: 'wm-1', kind: 'water-meter' },
              { id: 'wm-2', kind: 'water-meter' },
            ],
          },
        ],
      },
    });
    const bus = sim.mbus!;
    const addr = (d: string) => bus.meters.find((m) => m.device === d)!;
    gw = await startGateway(
      testConfig({
        influx: { api: 'v1', url: influx.url, db: 'facility' },
        mbus: mbusSchema.parse({
          connections: [
            {
              name: 'bus-1',
              tcp: { host: '127.0.0.1', port: bus.port },
              pollIntervalMs: 300,
              timeoutMs: 250,
              retries: 1,
              meters: [
                { id: 'gm-1', site: SITE, kind: 'gas-meter', primaryAddress: addr('gm-1').primaryAddress },
                {
                  id: 'wm-1',
                  site: SITE,
                  kind: 'water-meter',
                  secondaryAddress: addr('wm-1').secondaryAddress,
                  manufacturer: 'FGW',
                  errorBits: { tamper: 0, reverse_flow: 1 },
                },
                {
                  id: 'wm-2',
                  site: SITE,
                  kind: 'water-meter',
                  secondaryAddress: addr('wm-2').secondaryAddress,
                },
              ],
            },
          ],
        }),
      }),
    );
    source = gw.mbus[0]!;
  }, 60_000);

  afterAll(async () => {
    await gw?.cleanup();
    await sim?.stop();
    await influx?.close();
  });

  it('reads meters by primary and secondary address into InfluxDB, consumption derived from the index', async () => {
    await waitFor(
      async () =>
        (await rows('gas_meter', 'gm-1')).length >= 5 && (await rows('water_meter', 'wm-1')).length >= 5,
      30_000,
      'five readings of each meter in InfluxDB',
    );
    for (const [m, device] of [
      ['gas_meter', 'gm-1'],
      ['water_meter', 'wm-1'],
    ] as const) {
      const rs = await rows(m, device);
      expect(rs.every((r) => r.site === SITE && typeof r.volume_m3 === 'number')).toBe(true);
      expect(typeof rs[0]![m === 'gas_meter' ? 'flow_m3h' : 'flow_lph']).toBe('number');
      // The pipeline books each index step once: consumption sums to the index's rise.
      const rise = (rs.at(-1)!.volume_m3 as number) - (rs[0]!.volume_m3 as number);
      const booked = rs.slice(1).reduce((a, r) => a + ((r.consumption_m3 as number | null) ?? 0), 0);
      expect(booked).toBeCloseTo(rise, 6);
      expect(rs.slice(1).every((r) => typeof r.consumption_m3 === 'number')).toBe(true);
    }
    const water = await rows('water_meter', 'wm-1');
    expect(typeof water[0]!.temperature_c).toBe('number');
    expect(water[0]!.tamper).toBe(false);
    // The simulator's index, read back to the litre the frame carries.
    const simVolume = sim.devices().find((d) => d.id === 'gm-1')!.lastValues!.volume_m3 as number;
    const last = (await rows('gas_meter', 'gm-1')).at(-1)!.volume_m3 as number;
    expect(Math.abs(simVolume - last)).toBeLessThan(5);
    const h = meterHealth('wm-1')!;
    expect(h).toMatchObject({ online: true, manufacturer: 'FGW', medium: 'water' });
    expect(h.identification).toBe(sim.mbus!.meters.find((m) => m.device === 'wm-1')!.secondaryAddress);
    expect(source.health().state).toBe('ok');
  }, 40_000);

  it('a damaged answer is counted by reason and refused; the bus keeps being read', async () => {
    const before = (await rows('gas_meter', 'gm-1')).length;
    // Four damaged answers in a row: with one repeat per poll, two polls of gm-1 fail.
    sim.mbus!.corrupt('gm-1', 4);
    await waitFor(() => (errors().frame_checksum ?? 0) >= 4, 15_000, 'four checksum errors counted');
    expect(meterHealth('gm-1')!.lastError ?? '').toMatch(/frame_checksum|^$/);
    await waitFor(
      async () => (await rows('gas_meter', 'gm-1')).length >= before + 3,
      15_000,
      'gm-1 read again',
    );
    const text = await gw.metrics.metrics();
    expect(text).toMatch(/gateway_mbus_errors_total\{connection="bus-1",reason="frame_checksum"\} [4-9]/);
    expect(meterHealth('gm-1')!.online).toBe(true);
  }, 40_000);

  it('a meter that stops answering goes offline after three polls, the others keep reporting, and it comes back', async () => {
    sim.mbus!.mute('wm-2');
    await waitFor(() => meterHealth('wm-2')?.online === false, 15_000, 'wm-2 offline');
    expect(source.health().state).toBe('degraded');
    expect(errors().timeout).toBeGreaterThanOrEqual(3);
    const gasBefore = (await rows('gas_meter', 'gm-1')).length;
    await waitFor(
      async () => (await rows('gas_meter', 'gm-1')).length >= gasBefore + 2,
      15_000,
      'gm-1 still read',
    );
    expect(await gw.metrics.metrics()).toMatch(/gateway_mbus_meters_offline\{connection="bus-1"\} 1/);
    sim.mbus!.mute('wm-2', false);
    await waitFor(() => meterHealth('wm-2')?.online === true, 15_000, 'wm-2 online again');
    expect(source.health().state).toBe('ok');
  }, 40_000);
});
