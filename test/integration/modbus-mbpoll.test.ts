import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulation, type Simulation } from '../../simulators/index.js';
import { freePort, waitFor } from '../fixtures/ports.js';

const run = promisify(execFile);
const MBPOLL = process.env.MBPOLL_BIN ?? '/usr/bin/mbpoll';

/** `mbpoll` output lines `[n]: value` → the values by reference number (1-based, as mbpoll counts). */
function parse(out: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of out.split('\n')) {
    const r = /^\[(\d+)\]:\s+(\S+)/.exec(line.trim());
    if (r) m.set(Number(r[1]), r[2]!);
  }
  return m;
}

/** mbpoll (FieldTalk's free master, Debian) against the simulators: proof they speak standard Modbus TCP. */
describe('mbpoll reads the simulators over Modbus TCP', () => {
  let sim: Simulation;
  let port: number;
  const mbpoll = async (...args: string[]): Promise<{ out: string; code: number }> => {
    try {
      const { stdout } = await run(MBPOLL, [
        '-m',
        'tcp',
        '-p',
        String(port),
        '-1',
        '-o',
        '1',
        ...args,
        '127.0.0.1',
      ]);
      return { out: stdout, code: 0 };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; code?: number };
      return { out: `${err.stdout ?? ''}${err.stderr ?? ''}`, code: err.code ?? 1 };
    }
  };

  beforeAll(async () => {
    port = await freePort();
    sim = await startSimulation({
      brokerUrl: null,
      modbusPort: port,
      intervalMs: 500,
      scenario: {
        name: 'mbpoll',
        sites: [
          {
            id: 'plant',
            devices: [
              { id: 'tank-1', kind: 'chlorination' },
              { id: 'room-1', kind: 'env-probe' },
            ],
          },
        ],
      },
      logger: pino({ level: 'warn' }),
    });
    await waitFor(() => sim.devices().every((d) => d.lastValues !== null), 10_000, 'first measurements');
  }, 60_000);

  afterAll(async () => {
    await sim?.stop();
  });

  it('reads the chlorine analyser map: float32 (ABCD) and scaled integers in input registers', async () => {
    // -t 3: input registers, 16-bit; -r 1: reference 1 = protocol address 0.
    const ints = await mbpoll('-a', '1', '-t', '3', '-r', '1', '-c', '10');
    expect(ints.code, ints.out).toBe(0);
    const regs = parse(ints.out);
    const v = sim.devices().find((d) => d.id === 'tank-1')!.lastValues!;
    expect(Number(regs.get(5)) / 100).toBeCloseTo(v.ph as number, 1);
    expect(Number(regs.get(10)) & 1).toBe(v.dosing_pump_on ? 1 : 0);
    // -t 3:float with -B: big-endian word order, i.e. ABCD.
    const floats = await mbpoll('-a', '1', '-t', '3:float', '-B', '-r', '1', '-c', '2');
    expect(floats.code, floats.out).toBe(0);
    const f = parse(floats.out);
    expect(Number(f.get(1))).toBeGreaterThanOrEqual(0);
    expect(Number(f.get(1))).toBeLessThan(10);
    expect(Number(f.get(3))).toBeGreaterThanOrEqual(Number(f.get(1)) - 0.5);
  });

  it('reads the probe map: float32 in CDAB (mbpoll default word order) and discrete inputs', async () => {
    const floats = await mbpoll('-a', '2', '-t', '3:float', '-r', '1', '-c', '2');
    expect(floats.code, floats.out).toBe(0);
    const f = parse(floats.out);
    const v = sim.devices().find((d) => d.id === 'room-1')!.lastValues!;
    expect(Number(f.get(1))).toBeCloseTo(v.temperature_c as number, 0);
    expect(Number(f.get(3))).toBeGreaterThan(0);
    expect(Number(f.get(3))).toBeLessThanOrEqual(100);
    const bits = await mbpoll('-a', '2', '-t', '1', '-r', '1', '-c', '3');
    expect(bits.code, bits.out).toBe(0);
    expect([...parse(bits.out).values()].every((b) => b === '0' || b === '1')).toBe(true);
  });

  it('answers standard exceptions: illegal data address, device failure under a sensor fault', async () => {
    const beyond = await mbpoll('-a', '1', '-t', '3', '-r', '100', '-c', '2');
    expect(beyond.out).toMatch(/Illegal data address/i);
    sim.startFault('tank-1', 'sensor-fault');
    await waitFor(
      async () => /failure/i.test((await mbpoll('-a', '1', '-t', '3', '-r', '1', '-c', '2')).out),
      10_000,
      'exception 04',
    );
    sim.stopFault('tank-1');
  }, 20_000);
});
