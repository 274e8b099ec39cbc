import { describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/src/config/schema.js';

const problems = (input: unknown): string[] => {
  const r = configSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

const meter = { id: 'wm-1', site: 'plant', kind: 'water-meter', primaryAddress: 1 };
const modbusDevice = {
  id: 'wm-2',
  site: 'plant',
  kind: 'water-meter',
  group: 'g',
  unitId: 1,
  profile: 'example-water-meter-rs485',
};

/** Buses every member would poll (ADR 0177): a serial line has one master and one machine. */
const buses = (modbus: Record<string, unknown>, mbus: Record<string, unknown>) => ({
  modbus: {
    connections: [{ name: 'line', ...modbus }],
    groups: { g: { intervalMs: 1000 } },
    devices: [{ ...modbusDevice, connection: 'line' }],
  },
  mbus: { connections: [{ name: 'mbus', ...mbus, meters: [meter] }] },
});

const cluster = {
  storage: { postgres: 'postgres://gw@127.0.0.1:5432/gw' },
  cluster: { instanceId: 'gw-1' },
  mqtt: { url: 'mqtt://127.0.0.1:1883' },
};

describe('serial buses in cluster mode', () => {
  it('are refused, naming the key and the way out', () => {
    const p = problems({
      ...cluster,
      ...buses({ transport: 'rtu', path: '/dev/ttyUSB0' }, { serial: { path: '/dev/ttyUSB1' } }),
    });
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(
      /^modbus\.connections\.0\.transport: in cluster mode every member polls .* Modbus TCP gateway/,
    );
    expect(p[1]).toMatch(
      /^mbus\.connections\.0\.serial: in cluster mode every member polls .* serial-to-TCP converter/,
    );
  });

  it('are accepted on a single instance, and TCP buses in a cluster', () => {
    expect(
      problems(buses({ transport: 'rtu', path: '/dev/ttyUSB0' }, { serial: { path: '/dev/ttyUSB1' } })),
    ).toEqual([]);
    expect(
      problems({
        ...cluster,
        ...buses({ transport: 'tcp', host: '127.0.0.1' }, { tcp: { host: '127.0.0.1', port: 10001 } }),
      }),
    ).toEqual([]);
  });
});
