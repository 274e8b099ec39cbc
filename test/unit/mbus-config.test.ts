import { describe, expect, it } from 'vitest';
import { configSchema } from '../../gateway/src/config/schema.js';

const paths = (input: unknown): string[] => {
  const r = configSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

const meter = { id: 'wm-1', site: 'plant', kind: 'water-meter' };

describe('mbus config', () => {
  it('defaults: none; a connection gets 2400 Bd even parity, 60 s polls, 3 missed polls to offline', () => {
    expect(configSchema.parse({}).mbus).toEqual({ connections: [] });
    const c = configSchema.parse({
      mbus: {
        connections: [
          { name: 'bus', serial: { path: '/dev/ttyUSB0' }, meters: [{ ...meter, primaryAddress: 1 }] },
        ],
      },
    }).mbus.connections[0]!;
    expect(c.serial).toEqual({ path: '/dev/ttyUSB0', baudRate: 2400, parity: 'even' });
    expect(c).toMatchObject({ pollIntervalMs: 60_000, retries: 2, offlineAfter: 3 });
  });

  it('names the key path of each problem', () => {
    const problems = paths({
      mbus: {
        connections: [
          {
            name: 'bus',
            tcp: { host: '127.0.0.1', port: 10001 },
            meters: [
              { ...meter, primaryAddress: 1, secondaryAddress: '12345678' },
              { ...meter, id: 'wm-2', secondaryAddress: '1234' },
              { ...meter, id: 'wm-3', primaryAddress: 7 },
              { ...meter, id: 'wm-4', primaryAddress: 7 },
              { ...meter, id: 'gm-1', kind: 'gas-meter', primaryAddress: 251 },
            ],
          },
          {
            name: 'both',
            tcp: { host: 'a', port: 1 },
            serial: { path: '/dev/x' },
            meters: [{ ...meter, primaryAddress: 2 }],
          },
        ],
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'mbus.connections.0.meters.0: needs exactly one of primaryAddress or secondaryAddress',
        'mbus.connections.0.meters.1.secondaryAddress: must be the 8-digit identification number',
        expect.stringMatching(/^mbus\.connections\.0\.meters\.4\.primaryAddress: /),
        'mbus.connections.1: needs exactly one of tcp or serial',
      ]),
    );
  });

  it('two meters on one primary address are an error', () => {
    const problems = paths({
      mbus: {
        connections: [
          {
            name: 'bus',
            tcp: { host: '127.0.0.1', port: 10001 },
            meters: [
              { ...meter, primaryAddress: 7 },
              { ...meter, id: 'wm-2', primaryAddress: 7 },
            ],
          },
        ],
      },
    });
    expect(problems).toEqual([
      "mbus.connections.0.meters.1.primaryAddress: primary 7 is also meters[0]'s: one bus, one meter per address",
    ]);
  });
});
