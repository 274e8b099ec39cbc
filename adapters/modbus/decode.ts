import { WORDS, type RegisterType } from './schema.js';

/**
 * Registers → values, and back (the simulators' server encodes with the same map). Pure; one
 * shared 8-byte scratch view, so decoding a value allocates nothing.
 *
 * Modbus itself only defines 16-bit registers sent big-endian (Modbus Application Protocol
 * v1.1b3, 4.2). How 32/64-bit values span registers is up to each vendor: `wordOrder` says whether
 * the most significant register comes first (`big`: ABCD) or last (`little`: CDAB), `byteOrder`
 * whether the bytes inside each register are swapped (`little`: BADC, or DCBA with little words).
 */

export interface ValueLayout {
  type: RegisterType;
  wordOrder: 'big' | 'little';
  byteOrder: 'big' | 'little';
  bit?: number | undefined;
  scale: number;
  offset: number;
}

const scratch = new DataView(new ArrayBuffer(8));

const swap16 = (w: number): number => ((w & 0xff) << 8) | ((w >>> 8) & 0xff);

/** Puts the value's registers into `scratch` most significant byte first. */
function gather(words: ArrayLike<number>, at: number, n: number, l: ValueLayout): void {
  for (let i = 0; i < n; i++) {
    let w = words[at + (l.wordOrder === 'big' ? i : n - 1 - i)]! & 0xffff;
    if (l.byteOrder === 'little') w = swap16(w);
    scratch.setUint16(2 * i, w);
  }
}

/** The raw value of the registers at `at`, before scale and offset. */
export function rawValue(words: ArrayLike<number>, at: number, l: ValueLayout): number {
  const n = WORDS[l.type];
  if (at + n > words.length)
    throw new RangeError(`value at ${at} needs ${n} registers, have ${words.length - at}`);
  gather(words, at, n, l);
  switch (l.type) {
    case 'int16':
      return scratch.getInt16(0);
    case 'uint16':
    case 'bool':
      return scratch.getUint16(0);
    case 'int32':
      return scratch.getInt32(0);
    case 'uint32':
      return scratch.getUint32(0);
    case 'float32':
      return scratch.getFloat32(0);
    case 'float64':
      return scratch.getFloat64(0);
  }
}

/** The registers at `at` as an unsigned integer of their width (bit fields of signed types too). */
function unsignedValue(words: ArrayLike<number>, at: number, l: ValueLayout): number {
  const n = WORDS[l.type];
  if (at + n > words.length)
    throw new RangeError(`value at ${at} needs ${n} registers, have ${words.length - at}`);
  gather(words, at, n, l);
  return n === 1 ? scratch.getUint16(0) : scratch.getUint32(0);
}

/**
 * A register value as the metric's value: a bit field as a boolean, a number scaled. Scale and
 * offset of 1 and 0 leave the raw value exactly as it was (a float32 stays the float32's value).
 */
export function decodeRegister(words: ArrayLike<number>, at: number, l: ValueLayout): number | boolean {
  if (l.bit !== undefined) return Math.floor(unsignedValue(words, at, l) / 2 ** l.bit) % 2 === 1;
  const raw = rawValue(words, at, l);
  if (l.type === 'bool') return raw !== 0;
  if (l.scale === 1 && l.offset === 0) return raw;
  // Round away binary noise of the scaling (ph 712 × 0.01 = 7.12, not 7.120000000000001).
  return Number((raw * l.scale + l.offset).toPrecision(12));
}

/**
 * The registers for a metric value (the simulators' server, tests). Integer types round and
 * clamp to their range; a bit field sets or clears its bit in `into` (other bits kept).
 */
export function encodeRegister(value: number | boolean, l: ValueLayout, into?: number[]): number[] {
  const n = WORDS[l.type];
  const out = into ?? new Array<number>(n).fill(0);
  if (l.bit !== undefined || l.type === 'bool') {
    const bit = l.bit ?? 0;
    const cur = unsignedValue(out, 0, l);
    const set = value === true || (typeof value === 'number' && value !== 0);
    const mask = 2 ** bit;
    const isSet = Math.floor(cur / mask) % 2 === 1;
    const next = set === isSet ? cur : set ? cur + mask : cur - mask;
    return writeRaw(next, { ...l, type: n === 1 ? 'uint16' : 'uint32' }, out);
  }
  const num = typeof value === 'boolean' ? (value ? 1 : 0) : (value - l.offset) / l.scale;
  return writeRaw(num, l, out);
}

const RANGES: Partial<Record<RegisterType, [number, number]>> = {
  int16: [-32768, 32767],
  uint16: [0, 65535],
  bool: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};

function writeRaw(raw: number, l: ValueLayout, out: number[]): number[] {
  const n = WORDS[l.type];
  const range = RANGES[l.type];
  const v = range ? Math.min(range[1], Math.max(range[0], Math.round(raw))) : raw;
  switch (l.type) {
    case 'int16':
      scratch.setInt16(0, v);
      break;
    case 'uint16':
    case 'bool':
      scratch.setUint16(0, v);
      break;
    case 'int32':
      scratch.setInt32(0, v);
      break;
    case 'uint32':
      scratch.setUint32(0, v);
      break;
    case 'float32':
      scratch.setFloat32(0, v);
      break;
    case 'float64':
      scratch.setFloat64(0, v);
      break;
  }
  for (let i = 0; i < n; i++) {
    let w = scratch.getUint16(2 * i);
    if (l.byteOrder === 'little') w = swap16(w);
    out[l.wordOrder === 'big' ? i : n - 1 - i] = w;
  }
  return out;
}
