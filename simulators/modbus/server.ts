import modbusSerial from 'modbus-serial';
import type { Logger } from 'pino';
import { encodeRegister } from '../../adapters/modbus/decode.js';
import { widthOf } from '../../adapters/modbus/plan.js';
import { EXAMPLE_PROFILES } from '../../adapters/modbus/profiles/index.js';
import { profileSchema, type RegisterConfig } from '../../adapters/modbus/schema.js';
import type { DeviceInfo, SimMessage } from '../engine/engine.js';

// A CommonJS module: the server class is a property of its default export.
const { ServerTCP } = modbusSerial;

/** The example profile each simulated kind answers with: one register map for both sides. */
export const SIM_PROFILES = {
  chlorination: 'example-chlorine-analyser',
  'env-probe': 'example-temp-humidity-probe',
} as const;

/** Modbus exception codes (Modbus Application Protocol v1.1b3, 7). */
const ILLEGAL_DATA_ADDRESS = 2;
const SERVER_DEVICE_FAILURE = 4;
const SERVER_DEVICE_BUSY = 6;
const GATEWAY_TARGET_FAILED = 0x0b;

export interface ModbusUnit {
  unitId: number;
  device: string;
  site: string;
  kind: keyof typeof SIM_PROFILES;
  profile: string;
}

export interface ModbusServerOptions {
  port: number;
  host?: string;
  /** Devices to serve; kinds other than chlorination and env-probe are ignored. Unit ids 1..247 in this order. */
  devices: readonly Pick<DeviceInfo, 'id' | 'site' | 'kind'>[];
  logger?: Logger;
}

export interface ModbusServerHandle {
  port: number;
  units: readonly ModbusUnit[];
  /** Pushes one device report into its registers. */
  update(msg: SimMessage): void;
  /** Read requests answered (exceptions included). */
  requests(): number;
  stop(): Promise<void>;
}

interface UnitState extends ModbusUnit {
  registers: RegisterConfig[];
  words: number[];
  bits: boolean[];
  /** Word addresses (input/holding) and bit addresses (discrete) of metrics a faulted sensor cannot measure. */
  badWords: Set<number>;
  badBits: Set<number>;
  silent: boolean;
  measured: boolean;
}

type Cb<T> = (err: Error | null, value: T) => void;

/** modbus-serial's server answers an error carrying `modbusErrorCode` with that exception. */
const exception = (code: number): Error =>
  Object.assign(new Error(`Modbus exception ${code}`), { modbusErrorCode: code });

/**
 * The simulators' chlorination tanks and env probes as Modbus TCP servers, one unit id per device
 * behind one port (as a Modbus TCP gateway in front of an RS-485 bus does), each answering with
 * the shipped example profile of its kind. The same physics and faults as over MQTT and OPC UA: a
 * faulted sensor's registers answer exception 04 (server device failure), a silent device does not
 * answer at all, and before its first measurement a device answers 06 (busy). Input registers are
 * also readable as holding registers, as many instruments allow.
 */
export async function startModbusServer(opts: ModbusServerOptions): Promise<ModbusServerHandle> {
  const units = new Map<number, UnitState>();
  const byDevice = new Map<string, UnitState>();
  let unitId = 0;
  for (const d of opts.devices) {
    if (d.kind !== 'chlorination' && d.kind !== 'env-probe') continue;
    if (unitId === 247) {
      opts.logger?.warn({ device: d.id }, 'more than 247 Modbus devices: the rest are not served');
      break;
    }
    const profile = SIM_PROFILES[d.kind];
    const registers = profileSchema.parse(EXAMPLE_PROFILES[profile]).registers;
    let words = 0;
    let bits = 0;
    for (const r of registers) {
      const end = r.address + widthOf(r);
      if (r.table === 'discrete' || r.table === 'coil') bits = Math.max(bits, end);
      else words = Math.max(words, end);
    }
    const u: UnitState = {
      unitId: ++unitId,
      device: d.id,
      site: d.site,
      kind: d.kind,
      profile,
      registers,
      words: new Array<number>(words).fill(0),
      bits: new Array<boolean>(bits).fill(false),
      badWords: new Set(),
      badBits: new Set(),
      silent: false,
      measured: false,
    };
    units.set(u.unitId, u);
    byDevice.set(d.id, u);
  }
  let requests = 0;

  /** The unit and whether it answers now; undefined: it stays silent (the client times out). */
  const answer = (id: number, fail: (code: number) => void): UnitState | undefined => {
    requests++;
    const u = units.get(id);
    if (!u) {
      fail(GATEWAY_TARGET_FAILED);
      return undefined;
    }
    if (u.silent) return undefined;
    if (!u.measured) {
      fail(SERVER_DEVICE_BUSY);
      return undefined;
    }
    return u;
  };
  const readWords = (addr: number, length: number, id: number, cb: Cb<number[]>): void => {
    const u = answer(id, (code) => cb(exception(code), []));
    if (!u) return;
    if (addr + length > u.words.length) return cb(exception(ILLEGAL_DATA_ADDRESS), []);
    for (let a = addr; a < addr + length; a++)
      if (u.badWords.has(a)) return cb(exception(SERVER_DEVICE_FAILURE), []);
    cb(null, u.words.slice(addr, addr + length));
  };
  const readBit = (addr: number, id: number, cb: Cb<boolean>): void => {
    const u = answer(id, (code) => cb(exception(code), false));
    if (!u) return;
    if (addr >= u.bits.length) return cb(exception(ILLEGAL_DATA_ADDRESS), false);
    if (u.badBits.has(addr)) return cb(exception(SERVER_DEVICE_FAILURE), false);
    cb(null, u.bits[addr]!);
  };
  const readWord = (addr: number, id: number, cb: Cb<number>): void =>
    readWords(addr, 1, id, (err, v) => cb(err, v[0] ?? 0));

  const server = new ServerTCP(
    {
      getInputRegister: readWord,
      getHoldingRegister: readWord,
      getMultipleInputRegisters: readWords,
      getMultipleHoldingRegisters: readWords,
      getDiscreteInput: readBit,
      getCoil: readBit,
    },
    { host: opts.host ?? '127.0.0.1', port: opts.port, unitID: 255 },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', () => resolve());
    server.once('serverError', (err: unknown) => reject(err as Error));
  });
  // A client that goes away mid-request is its own business, not the simulator's.
  server.on('socketError', () => undefined);
  server.on('error', () => undefined);
  opts.logger?.info({ port: opts.port, units: units.size }, 'Modbus TCP server listening');

  return {
    port: opts.port,
    units: [...units.values()].map(({ unitId, device, site, kind, profile }) => ({
      unitId,
      device,
      site,
      kind,
      profile,
    })),
    update(msg) {
      const u = byDevice.get(msg.device);
      if (!u) return;
      u.silent = msg.silent;
      if (msg.silent) return;
      u.badWords.clear();
      u.badBits.clear();
      // Bit fields share their status word: clear it before the bits are set again.
      for (const r of u.registers) if (r.bit !== undefined) u.words[r.address] = 0;
      for (const r of u.registers) {
        const value = msg.values[r.metric];
        const bad = value === undefined || msg.bad.includes(r.metric);
        const bitTable = r.table === 'discrete' || r.table === 'coil';
        if (bitTable) {
          if (bad) u.badBits.add(r.address);
          else u.bits[r.address] = value === true;
          continue;
        }
        if (bad) {
          for (let i = 0; i < widthOf(r); i++) u.badWords.add(r.address + i);
          continue;
        }
        const at = r.address;
        const current = u.words.slice(at, at + widthOf(r));
        const encoded = encodeRegister(value, r, current);
        for (let i = 0; i < encoded.length; i++) u.words[at + i] = encoded[i]!;
      }
      u.measured = true;
    },
    requests: () => requests,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const sock of server.socks.keys()) sock.destroy();
        server.close(() => resolve());
      }),
  };
}
