import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../gateway/src/config/load.js';
import { planReads } from '../../adapters/modbus/plan.js';
import { DevicePoller } from '../../adapters/modbus/poller.js';
import { modbusDeviceSchema, modbusSchema, registerSchema } from '../../adapters/modbus/schema.js';
import { registersOf } from '../../adapters/modbus/index.js';

const reg = (address: number, type = 'uint16', table = 'holding', metric = `m${address}`) =>
  registerSchema.parse({ metric, address, type, table });

describe('block reads', () => {
  it('joins contiguous registers of one table into one request', () => {
    const blocks = planReads([reg(0, 'float32'), reg(2), reg(3, 'uint32'), reg(5)], 125);
    expect(blocks).toEqual([
      {
        table: 'holding',
        start: 0,
        count: 6,
        values: [
          { index: 0, offset: 0 },
          { index: 1, offset: 2 },
          { index: 2, offset: 3 },
          { index: 3, offset: 5 },
        ],
      },
    ]);
  });
  it('splits at the span; a value never straddles two requests', () => {
    const regs = [reg(0, 'float32'), reg(2, 'float32'), reg(4, 'float32')];
    const blocks = planReads(regs, 5);
    expect(blocks.map((b) => [b.start, b.count])).toEqual([
      [0, 4],
      [4, 2],
    ]);
  });
  it('keeps holes apart unless maxGap allows covering them', () => {
    const regs = [reg(0), reg(3), reg(10)];
    expect(planReads(regs, 125).map((b) => [b.start, b.count])).toEqual([
      [0, 1],
      [3, 1],
      [10, 1],
    ]);
    expect(planReads(regs, 125, 2).map((b) => [b.start, b.count])).toEqual([
      [0, 4],
      [10, 1],
    ]);
  });
  it('separates tables and sorts by address; bit fields share their word', () => {
    const regs = [
      reg(9, 'uint16', 'input', 'b'),
      reg(0, 'bool', 'discrete', 'd0'),
      reg(1, 'bool', 'discrete', 'd1'),
      reg(5, 'uint16', 'holding', 'h'),
      registerSchema.parse({ metric: 'bit0', table: 'input', address: 9, type: 'bool', bit: 0 }),
      reg(8, 'uint16', 'input', 'a'),
    ];
    const blocks = planReads(regs, 125);
    expect(blocks.map((b) => [b.table, b.start, b.count, b.values.map((v) => v.index)])).toEqual([
      ['discrete', 0, 2, [1, 2]],
      ['holding', 5, 1, [3]],
      ['input', 8, 2, [5, 0, 4]],
    ]);
  });
  it('counts coils and discrete inputs in bits (up to 2000)', () => {
    const regs = Array.from({ length: 2100 }, (_, i) => reg(i, 'bool', 'coil'));
    expect(planReads(regs, 125).map((b) => [b.start, b.count])).toEqual([
      [0, 2000],
      [2000, 100],
    ]);
    expect(planReads(regs.slice(0, 100), 4).map((b) => [b.start, b.count])).toEqual([
      [0, 64],
      [64, 36],
    ]);
  });
  it('refuses a value wider than the span', () => {
    expect(() => planReads([reg(0, 'float64')], 2)).toThrow(RangeError);
  });
});

describe('device rounds: quality and offline', () => {
  const dev = modbusDeviceSchema.parse({
    id: 'tank-1',
    site: 'plant',
    kind: 'chlorination',
    connection: 'c',
    registers: [
      { metric: 'ph', table: 'input', address: 0, scale: 0.01 },
      { metric: 'level_pct', table: 'input', address: 10 },
    ],
  });
  const poller = (): DevicePoller => new DevicePoller(dev, dev.registers!, 125, 0);
  const ok = (v: number) => ({ ok: true as const, data: [v] });
  const timeout = { ok: false as const, error: 'timeout' as const, detail: 'timeout' };
  const exc = { ok: false as const, error: 'exception' as const, detail: 'exception 2' };

  it('good values when every block answered', () => {
    const p = poller();
    const out = p.finish([ok(712), ok(80)], 1000);
    expect(out.reading).toEqual({
      site: 'plant',
      kind: 'chlorination',
      device: 'tank-1',
      ts: 1000,
      fields: { ph: 7.12, level_pct: 80 },
    });
    expect(out.transition).toBe('online');
  });
  it('an exception makes the round bad, with the last value of what failed; never good', () => {
    const p = poller();
    p.finish([ok(712), ok(80)], 1000);
    const out = p.finish([ok(715), exc], 2000);
    expect(out.reading?.quality).toBe('bad');
    expect(out.reading?.fields).toEqual({ ph: 7.15, level_pct: 80 });
    expect(out.missed).toBe(false);
    expect(p.state).toBe('online');
  });
  it('a device answering only exceptions is there: bad values, not offline', () => {
    const p = poller();
    p.finish([ok(700), ok(50)], 0);
    for (let i = 1; i <= 5; i++) {
      const out = p.finish([exc, exc], i);
      expect(out.missed).toBe(false);
      expect(out.reading?.quality).toBe('bad');
    }
    expect(p.state).toBe('online');
  });
  it('nothing read before and nothing now: no reading at all', () => {
    expect(poller().finish([timeout, timeout], 1000).reading).toBeNull();
  });
  it('offline after offlineAfter missed polls in a row, silent while offline, back on the first answer', () => {
    const p = poller();
    p.finish([ok(700), ok(50)], 0);
    const r1 = p.finish([timeout, timeout], 1);
    const r2 = p.finish([timeout, timeout], 2);
    expect(r1.reading?.quality).toBe('bad');
    expect(r2.transition).toBeNull();
    const r3 = p.finish([timeout, timeout], 3);
    expect(r3.transition).toBe('offline');
    expect(r3.reading).toBeNull();
    expect(p.finish([timeout, timeout], 4).reading).toBeNull();
    const back = p.finish([ok(701), ok(51)], 5);
    expect(back.transition).toBe('online');
    expect(back.reading?.quality).toBeUndefined();
    expect(p.missed).toBe(0);
  });
});

describe('config', () => {
  it('names the key path of an unknown profile and connection', () => {
    const r = modbusSchema.safeParse({
      connections: [{ name: 'plc', transport: 'tcp', host: '127.0.0.1' }],
      devices: [{ id: 'a', site: 's', kind: 'chlorination', connection: 'nope', profile: 'no-such' }],
    });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('devices.0.connection');
    expect(paths).toContain('devices.0.profile');
  });
  it('the gateway config loader reports Modbus mistakes with their full key path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fgw-modbus-cfg-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      [
        'modbus:',
        '  connections:',
        '    - { name: plc, transport: tcp, host: 127.0.0.1, maxSpan: 200 }',
        '  devices:',
        '    - { id: t1, site: s, kind: chlorination, connection: plc, profile: acme-nope }',
        '    - id: t2',
        '      site: s',
        '      kind: chlorination',
        '      connection: plc',
        '      registers: [{ metric: ph, table: coil, address: 0, type: float32 }]',
      ].join('\n'),
    );
    try {
      expect(() => loadConfig(file, {})).toThrow(ConfigError);
      let problems: string[] = [];
      try {
        loadConfig(file, {});
      } catch (e) {
        problems = (e as ConfigError).problems.map((p) => p.path);
      }
      expect(problems).toEqual(
        expect.arrayContaining(['modbus.connections.0.maxSpan', 'modbus.devices.1.registers.0.type']),
      );
      // The profile is checked once the rest is valid (a cross-reference, after the shapes).
      writeFileSync(
        file,
        [
          'modbus:',
          '  connections: [{ name: plc, transport: tcp, host: 127.0.0.1 }]',
          '  devices: [{ id: t1, site: s, kind: chlorination, connection: plc, profile: acme-nope }]',
        ].join('\n'),
      );
      expect(() => loadConfig(file, {})).toThrow(/modbus\.devices\.0\.profile: no profile named acme-nope/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('checks register definitions', () => {
    const bad = [
      { metric: 'x', table: 'coil', address: 0, type: 'uint16' },
      { metric: 'x', address: 0, type: 'bool' },
      { metric: 'x', address: 0, type: 'float32', bit: 1 },
      { metric: 'x', address: 0, type: 'uint16', bit: 16 },
      { metric: 'x', address: 65535, type: 'uint32' },
    ];
    for (const b of bad) expect(registerSchema.safeParse(b).success, JSON.stringify(b)).toBe(false);
  });
  it('resolves the shipped example profiles by name', () => {
    const cfg = modbusSchema.parse({
      connections: [{ name: 'plc', transport: 'rtu', path: '/dev/ttyUSB0' }],
      devices: [
        { id: 'wm', site: 's', kind: 'water-meter', connection: 'plc', profile: 'example-water-meter-rs485' },
      ],
    });
    expect(cfg.connections[0]).toMatchObject({ parity: 'even', baudRate: 9600 });
    expect(registersOf(cfg, cfg.devices[0]!).map((r) => r.metric)).toContain('volume_m3');
  });
});
