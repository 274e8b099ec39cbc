import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startSimulation, type Simulation } from '../../simulators/index.js';
import { mbusSchema } from '../../adapters/mbus/schema.js';
import type { Source } from '../../gateway/src/core/source.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { waitFor } from '../fixtures/ports.js';
import type { MbusMeterHealth } from '../../adapters/mbus/source.js';
import { startPtyBridge, type PtyBridge } from '../fixtures/pty.js';

const SITE = 'plant';

/**
 * The serial path of the M-Bus adapter (SerialLink, through `serialport`): a pseudo-terminal
 * that socat bridges to the simulators' M-Bus server stands in for a USB level converter. The
 * meters are read by primary address; killing socat is the converter pulled out (meters offline
 * after `offlineAfter` polls), starting it again on the same path is it plugged back in.
 */
describe('M-Bus over a serial port (pty): simulated meters → gateway', () => {
  let sim: Simulation;
  let pty: PtyBridge;
  let gw: Gateway & { cleanup(): Promise<void> };
  let source: Source;

  const meterHealth = (device: string): MbusMeterHealth | undefined =>
    (source.health().meters as Record<string, MbusMeterHealth> | undefined)?.[`${SITE}/${device}`];
  const latest = (device: string): Record<string, { value: unknown; quality: string }> =>
    (gw.registry.get(device)?.latest ?? {}) as Record<string, { value: unknown; quality: string }>;
  const reads = (): number => source.health().reads as number;

  beforeAll(async () => {
    sim = await startSimulation({
      brokerUrl: null,
      mbusPort: 0,
      seed: 11,
      // Simulated minutes per real second, so that the indices move between polls.
      speed: 60,
      intervalMs: 100,
      logger: pino({ level: 'warn' }),
      scenario: {
        sites: [
          {
            id: SITE,
            devices: [
              { id: 'gm-1', kind: 'gas-meter' },
              { id: 'wm-1', kind: 'water-meter' },
            ],
          },
        ],
      },
    });
    const bus = sim.mbus!;
    pty = await startPtyBridge(bus.port);
    const addr = (d: string) => bus.meters.find((m) => m.device === d)!.primaryAddress;
    gw = await startGateway(
      testConfig({
        influx: { enabled: false },
        mbus: mbusSchema.parse({
          connections: [
            {
              name: 'serial-bus',
              serial: { path: pty.path, baudRate: 2400 },
              pollIntervalMs: 300,
              timeoutMs: 400,
              retries: 0,
              offlineAfter: 3,
              meters: [
                { id: 'gm-1', site: SITE, kind: 'gas-meter', primaryAddress: addr('gm-1') },
                { id: 'wm-1', site: SITE, kind: 'water-meter', primaryAddress: addr('wm-1') },
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
    await pty?.close();
    await sim?.stop();
  });

  it('reads a gas and a water meter by primary address through the serial port', async () => {
    expect(source.health().bus).toBe(`serial:${pty.path}@2400`);
    await waitFor(
      () =>
        typeof latest('gm-1').volume_m3?.value === 'number' &&
        typeof latest('wm-1').volume_m3?.value === 'number',
      20_000,
      'both meters read over the pty',
    );
    for (const device of ['gm-1', 'wm-1']) {
      // The simulator's index, read back to the litre the frame carries (the meter may have moved
      // on by a report since the last poll).
      const simVolume = sim.devices().find((d) => d.id === device)!.lastValues!.volume_m3 as number;
      const read = latest(device).volume_m3!;
      expect(read.quality).toBe('good');
      expect(Math.abs(simVolume - (read.value as number))).toBeLessThan(5);
      const h = meterHealth(device)!;
      expect(h.online).toBe(true);
      expect(h.identification).toBe(sim.mbus!.meters.find((m) => m.device === device)!.secondaryAddress);
    }
    expect(meterHealth('gm-1')!.medium).toBe('gas');
    expect(meterHealth('wm-1')!.medium).toBe('water');
    expect(source.health().state).toBe('ok');
  }, 30_000);

  it('the adapter pulled (socat killed): offline after three polls; plugged back: read again', async () => {
    await pty.kill();
    await waitFor(() => meterHealth('gm-1')?.online === false, 15_000, 'gm-1 offline');
    expect(meterHealth('gm-1')!.missedPolls).toBeGreaterThanOrEqual(3);
    expect(source.health().state).toBe('degraded');
    const before = reads();
    await pty.restart();
    await waitFor(
      () => meterHealth('gm-1')?.online === true && meterHealth('wm-1')?.online === true,
      20_000,
      'both meters online again',
    );
    expect(reads()).toBeGreaterThan(before);
    expect(source.health().state).toBe('ok');
  }, 45_000);
});
