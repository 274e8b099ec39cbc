import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modbusSchema } from '../../adapters/modbus/schema.js';
import type { Gateway } from '../../gateway/src/gateway.js';
import { startGateway, testConfig } from '../fixtures/gateway.js';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { freePort, waitFor } from '../fixtures/ports.js';
import { collect, publishAll } from '../fixtures/publisher.js';
import { startPymodbus, type Pymodbus, type PymodbusEntry } from '../fixtures/pymodbus.js';
import { startPtyBridge, type PtyBridge } from '../fixtures/pty.js';

type Num = 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';
type Order = 'big' | 'little';

/**
 * Every data type, both word orders (and byte-swapped registers) in holding and input registers,
 * plus coils, discrete inputs and bit fields. pymodbus encodes them with Python's struct; the
 * gateway must read back exactly these numbers (float32 values are chosen float32-exact).
 */
const VALUES: Array<{ metric: string; type: Num; wordOrder: Order; byteOrder: Order; value: number }> = [
  { metric: 'i16', type: 'int16', wordOrder: 'big', byteOrder: 'big', value: -12345 },
  { metric: 'u16', type: 'uint16', wordOrder: 'big', byteOrder: 'big', value: 54321 },
  { metric: 'i16_swapped', type: 'int16', wordOrder: 'big', byteOrder: 'little', value: -2 },
  { metric: 'i32_abcd', type: 'int32', wordOrder: 'big', byteOrder: 'big', value: -123456789 },
  { metric: 'i32_cdab', type: 'int32', wordOrder: 'little', byteOrder: 'big', value: -123456789 },
  { metric: 'u32_abcd', type: 'uint32', wordOrder: 'big', byteOrder: 'big', value: 4000000000 },
  { metric: 'u32_cdab', type: 'uint32', wordOrder: 'little', byteOrder: 'big', value: 4000000000 },
  { metric: 'u32_dcba', type: 'uint32', wordOrder: 'little', byteOrder: 'little', value: 305419896 },
  { metric: 'f32_abcd', type: 'float32', wordOrder: 'big', byteOrder: 'big', value: 123456 },
  { metric: 'f32_cdab', type: 'float32', wordOrder: 'little', byteOrder: 'big', value: -0.15625 },
  { metric: 'f32_badc', type: 'float32', wordOrder: 'big', byteOrder: 'little', value: Math.fround(Math.PI) },
  { metric: 'f32_dcba', type: 'float32', wordOrder: 'little', byteOrder: 'little', value: Math.fround(1e-3) },
  { metric: 'f64_big', type: 'float64', wordOrder: 'big', byteOrder: 'big', value: Math.PI },
  { metric: 'f64_little', type: 'float64', wordOrder: 'little', byteOrder: 'big', value: -2.5e-300 },
  { metric: 'f64_dcba', type: 'float64', wordOrder: 'little', byteOrder: 'little', value: 6.02214076e13 },
];

function layout(): { map: PymodbusEntry[]; registers: Array<Record<string, unknown>> } {
  const map: PymodbusEntry[] = [];
  const registers: Array<Record<string, unknown>> = [];
  let addr = 0;
  for (const v of VALUES) {
    for (const table of ['holding', 'input'] as const) {
      map.push({
        unit: 1,
        table,
        address: addr,
        type: v.type,
        wordOrder: v.wordOrder,
        byteOrder: v.byteOrder,
        value: v.value,
      });
      registers.push({
        metric: `${table === 'holding' ? 'h' : 'i'}_${v.metric}`,
        table,
        address: addr,
        type: v.type,
        wordOrder: v.wordOrder,
        byteOrder: v.byteOrder,
      });
    }
    addr += { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, float64: 4 }[v.type];
  }
  // A status word 0b1010_0000_0000_0101 and its bit fields; a scaled temperature.
  map.push({ unit: 1, table: 'holding', address: 40, type: 'uint16', value: 0xa005 });
  registers.push(
    { metric: 'bit0', table: 'holding', address: 40, type: 'bool', bit: 0 },
    { metric: 'bit1', table: 'holding', address: 40, type: 'bool', bit: 1 },
    { metric: 'bit15', table: 'holding', address: 40, type: 'bool', bit: 15 },
  );
  map.push({ unit: 1, table: 'input', address: 40, type: 'int16', value: -205 });
  registers.push({ metric: 'temp_c', table: 'input', address: 40, type: 'int16', scale: 0.1, offset: 0.5 });
  map.push(
    { unit: 1, table: 'coil', address: 0, value: true },
    { unit: 1, table: 'coil', address: 1, value: false },
    { unit: 1, table: 'discrete', address: 3, value: true },
  );
  registers.push(
    { metric: 'coil0', table: 'coil', address: 0, type: 'bool' },
    { metric: 'coil1', table: 'coil', address: 1, type: 'bool' },
    { metric: 'di3', table: 'discrete', address: 3, type: 'bool' },
  );
  return { map, registers };
}

function expected(): Record<string, number | boolean> {
  const out: Record<string, number | boolean> = {};
  for (const v of VALUES) out[`h_${v.metric}`] = out[`i_${v.metric}`] = v.value;
  return { ...out, bit0: true, bit1: false, bit15: true, temp_c: -20, coil0: true, coil1: false, di3: true };
}

const SITE = 'lab';

describe('an independent Modbus server (pymodbus 3.0) → gateway', () => {
  let mosq: Mosquitto;
  let tcp: Pymodbus;
  let rtu: Pymodbus;
  let serialRtu: Pymodbus;
  let pty: PtyBridge;
  let badCrc: Server;
  let gw: Gateway & { cleanup(): Promise<void> };
  let rejected: Awaited<ReturnType<typeof collect>>;
  const { map, registers } = layout();

  beforeAll(async () => {
    [mosq, tcp, rtu] = await Promise.all([startMosquitto(), startPymodbus(map), startPymodbus(map, 'rtu')]);
    rejected = await collect(mosq.url, 'facility/_rejected/#');
    // A serial port: a pseudo-terminal that socat bridges to a second RTU-framed server.
    serialRtu = await startPymodbus(map, 'rtu');
    pty = await startPtyBridge(serialRtu.port);
    // A serial server whose answers are well formed but arrive with a wrong CRC (line noise).
    badCrc = createServer((sock) =>
      sock.on('data', (req: Buffer) => {
        const count = req.readUInt16BE(4);
        const res = Buffer.alloc(3 + 2 * count + 2, 0x11);
        res[0] = req[0]!;
        res[1] = req[1]!;
        res[2] = 2 * count;
        sock.write(res); // CRC bytes 0x1111: wrong for this frame
      }),
    );
    await new Promise<void>((r) => badCrc.listen(0, '127.0.0.1', r));
    const device = (id: string, connection: string, extra: Record<string, unknown> = {}) => ({
      id,
      site: SITE,
      kind: 'lab-rig',
      connection,
      group: 'fast',
      timeoutMs: 150,
      retries: 0,
      ...extra,
    });
    gw = await startGateway(
      testConfig({
        mqtt: { url: mosq.url, clientId: 'gw-modbus-pymodbus' },
        influx: { enabled: false },
        kinds: { 'lab-rig': { reportIntervalSec: 60, metrics: {} } },
        modbus: modbusSchema.parse({
          connections: [
            // Small spans: the map is read in several block requests, in flight together.
            {
              name: 'tcp',
              transport: 'tcp',
              host: '127.0.0.1',
              port: tcp.port,
              maxSpan: 8,
              maxInFlight: 3,
              reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
            },
            {
              name: 'rtu',
              transport: 'rtu-over-tcp',
              host: '127.0.0.1',
              port: rtu.port,
              maxSpan: 125,
              reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
            },
            {
              name: 'noisy',
              transport: 'rtu-over-tcp',
              host: '127.0.0.1',
              port: (badCrc.address() as { port: number }).port,
              reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
            },
            {
              name: 'serial',
              transport: 'rtu',
              path: pty.path,
              baudRate: 19200,
              parity: 'none',
              reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
            },
            // Nothing listens here: it must not hold up or stop the gateway.
            {
              name: 'dead',
              transport: 'tcp',
              host: '127.0.0.1',
              port: await freePort(),
              connectTimeoutMs: 500,
              reconnect: { initialDelayMs: 100, maxDelayMs: 400 },
            },
          ],
          groups: { fast: { intervalMs: 200 } },
          profiles: { 'lab-all-types': { description: 'every type and order', registers } },
          devices: [
            device('rig-1', 'tcp', { profile: 'lab-all-types' }),
            device('rig-rtu', 'rtu', { profile: 'lab-all-types' }),
            device('rig-noisy', 'noisy', { registers: [{ metric: 'x', address: 0 }] }),
            device('rig-serial', 'serial', { profile: 'lab-all-types', timeoutMs: 500 }),
            // Reads past the end of the table: the server answers exception 02.
            device('rig-exc', 'tcp', {
              registers: [{ metric: 'beyond', table: 'holding', address: 100, type: 'uint16' }],
            }),
            // Unit 9 is not on the server: no answer, timeouts.
            device('rig-absent', 'tcp', { unitId: 9, registers: [{ metric: 'x', address: 0 }] }),
            device('rig-dead', 'dead', { registers: [{ metric: 'x', address: 0 }] }),
            // A mapping mistake: 54321 (the uint16 at 1) as a humidity is outside 0-100 %RH.
            device('probe-wrong', 'tcp', {
              kind: 'env-probe',
              registers: [{ metric: 'humidity_pct', table: 'holding', address: 1, type: 'uint16' }],
            }),
          ],
        }),
      }),
    );
  }, 60_000);

  afterAll(async () => {
    await rejected?.close();
    await gw?.cleanup();
    await pty?.close();
    badCrc?.close();
    await Promise.all([tcp?.close(), rtu?.close(), serialRtu?.close(), mosq?.stop()]);
  });

  const latest = (id: string): Record<string, { value: unknown; quality: string }> =>
    (gw.registry.get(id)?.latest ?? {}) as Record<string, { value: unknown; quality: string }>;
  const devState = (conn: string, id: string): string =>
    (
      (gw.health()[`modbus:${conn}`]?.devices as Record<string, { state: string }> | undefined)?.[
        `${SITE}/${id}`
      ] ?? { state: '?' }
    ).state;

  it('decodes every value exactly, over Modbus TCP, RTU framing (CRC) over TCP and RTU on a serial port (pty)', async () => {
    const want = expected();
    for (const id of ['rig-1', 'rig-rtu', 'rig-serial']) {
      await waitFor(() => Object.keys(latest(id)).length > 0, 15_000, `${id} read`);
      await new Promise((r) => setTimeout(r, 1000));
      const got = Object.fromEntries(Object.entries(latest(id)).map(([k, v]) => [k, v.value]));
      expect(got, id).toEqual(want);
      for (const v of Object.values(latest(id))) expect(v.quality).toBe('good');
    }
    // 15 values of 1-4 registers in two tables with a span of 8: many requests a round.
    expect(await gw.metrics.metrics()).toMatch(
      /gateway_modbus_requests_total\{connection="tcp",result="ok"\} \d{2,}/,
    );
  }, 30_000);

  it('an exception answer is an answer; no answer at all is a missed poll, offline after 3', async () => {
    await waitFor(() => devState('tcp', 'rig-absent') === 'offline', 10_000, 'rig-absent offline');
    expect(devState('tcp', 'rig-exc')).toBe('online');
    const h = gw.health()['modbus:tcp']!.devices as Record<
      string,
      { lastError: string; missedPolls: number }
    >;
    expect(h[`${SITE}/rig-exc`]!.lastError).toMatch(/exception 2/);
    expect(h[`${SITE}/rig-absent`]!.lastError).toMatch(/timeout/);
    expect(h[`${SITE}/rig-absent`]!.missedPolls).toBeGreaterThanOrEqual(3);
    // Neither ever handed over a value: nothing was read, so nothing is stored, good or bad.
    expect(gw.registry.get('rig-exc')).toBeUndefined();
    expect(gw.registry.get('rig-absent')).toBeUndefined();
    expect(gw.health()['modbus:dead']!.state).toBe('down');
    expect(devState('dead', 'rig-dead')).toBe('offline');
    expect(await gw.metrics.metrics()).toMatch(
      /gateway_modbus_requests_total\{connection="tcp",result="exception"\} [1-9]/,
    );
  }, 20_000);

  it('an RTU answer with a wrong CRC is refused, never decoded', async () => {
    await waitFor(() => devState('noisy', 'rig-noisy') === 'offline', 10_000, 'rig-noisy offline');
    const h = gw.health()['modbus:noisy']!.devices as Record<string, { lastError: string }>;
    expect(h[`${SITE}/rig-noisy`]!.lastError).toMatch(/CRC/i);
    expect(gw.registry.get('rig-noisy')).toBeUndefined();
  }, 20_000);

  it('a value the pipeline refuses is counted, logged and republished with its reason, not stored', async () => {
    await waitFor(() => rejected.messages.length > 0, 10_000, 'a rejection on facility/_rejected');
    const m = rejected.messages[0]!;
    expect(m.topic).toBe(`facility/_rejected/${SITE}/env-probe/probe-wrong`);
    const body = JSON.parse(m.payload) as Record<string, unknown>;
    expect(body).toMatchObject({ reason: 'value_out_of_range', source: 'modbus:tcp', unitId: 1 });
    expect(body.reading).toMatchObject({ values: { humidity_pct: 54321 } });
    // The device is known (as for a refused MQTT message), but never with a good value: the refused
    // reading is not stored, and a later round that failed (its last values, marked bad) is kept
    // apart as bad, never range-checked or used as good (ADR 0070).
    const held = (gw.registry.get('probe-wrong')?.latest ?? {}) as Record<string, { quality?: string }>;
    expect(held.humidity_pct?.quality ?? 'absent').not.toBe('good');
    expect(await gw.metrics.metrics()).toMatch(
      /gateway_messages_rejected_total\{reason="value_out_of_range"\} [1-9]/,
    );
    // Once a minute per device and reason, not once per poll.
    await new Promise((r) => setTimeout(r, 600));
    expect(rejected.messages.filter((x) => x.topic.endsWith('/probe-wrong'))).toHaveLength(1);
  }, 20_000);

  it('a dropped connection and a server restart: bad, offline, recovery; MQTT is served meanwhile', async () => {
    const before = latest('rig-1').h_f32_abcd!;
    await tcp.kill();
    // The rounds after the drop are bad (last values, never stored as good), then the device is offline.
    await waitFor(() => latest('rig-1').h_f32_abcd?.quality === 'bad', 10_000, 'rig-1 bad');
    expect(latest('rig-1').h_f32_abcd!.value).toBe(before.value);
    await waitFor(() => devState('tcp', 'rig-1') === 'offline', 10_000, 'rig-1 offline');
    expect(gw.health()['modbus:tcp']!.state).not.toBe('ok');
    expect(await gw.metrics.metrics()).toMatch(
      /gateway_modbus_device_online\{connection="tcp",site="lab",device="rig-1"\} 0/,
    );

    // The other sources do not notice: an MQTT reading goes through while Modbus is down.
    await publishAll(mosq.url, [
      {
        topic: 'facility/lab/env-probe/probe-9/telemetry',
        payload: JSON.stringify({ temperature_c: 21.5, humidity_pct: 40 }),
      },
    ]);
    await waitFor(
      () => gw.registry.get('probe-9')?.latest.temperature_c?.value === 21.5,
      10_000,
      'MQTT reading',
    );
    expect(devState('rtu', 'rig-rtu')).toBe('online');

    await tcp.start();
    await waitFor(() => devState('tcp', 'rig-1') === 'online', 15_000, 'rig-1 online again');
    await waitFor(() => latest('rig-1').h_f32_abcd?.quality === 'good', 10_000, 'rig-1 good again');
    expect(gw.health()['modbus:tcp']!.connection).toBe('connected');
  }, 60_000);
});
