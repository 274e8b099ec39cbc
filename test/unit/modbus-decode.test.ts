import { describe, expect, it } from 'vitest';
import { decodeRegister, encodeRegister, rawValue, type ValueLayout } from '../../adapters/modbus/decode.js';
import type { RegisterType } from '../../adapters/modbus/schema.js';

const layout = (
  type: RegisterType,
  wordOrder: 'big' | 'little' = 'big',
  byteOrder: 'big' | 'little' = 'big',
  extra: Partial<ValueLayout> = {},
): ValueLayout => ({ type, wordOrder, byteOrder, scale: 1, offset: 0, ...extra });

/**
 * 123456.0 is 0x47F12000 in IEEE 754 binary32 (bytes A=47 B=F1 C=20 D=00). The four register
 * layouts below are the ones named in the field (e.g. "Modbus 32-bit float byte order",
 * industrialmonitordirect.com knowledge base, and the ModbusBB tutorial at
 * modbus.maxenergic.com/modbus-float32-byte-order.html: ABCD = [AB, CD], CDAB = [CD, AB],
 * BADC = [BA, DC], DCBA = [DC, BA]); the same value is libmodbus's UT_REAL in its unit tests.
 */
describe('float32 in the four byte orders (123456.0 = 0x47F12000)', () => {
  const cases: Array<[string, number[], 'big' | 'little', 'big' | 'little']> = [
    ['ABCD', [0x47f1, 0x2000], 'big', 'big'],
    ['CDAB', [0x2000, 0x47f1], 'little', 'big'],
    ['BADC', [0xf147, 0x0020], 'big', 'little'],
    ['DCBA', [0x0020, 0xf147], 'little', 'little'],
  ];
  for (const [name, words, wo, bo] of cases) {
    it(`${name} decodes to 123456`, () => {
      expect(decodeRegister(words, 0, layout('float32', wo, bo))).toBe(123456);
    });
    it(`${name} encodes back to the same registers`, () => {
      expect(encodeRegister(123456, layout('float32', wo, bo))).toEqual(words);
    });
  }
});

/**
 * Siemens SITRANS F, Modbus RTU RS 485 operating instructions (A5E00753974-AB, 03/2021),
 * appendix B.8 "Float definition", table B-12 and its example answer `01 03 04 40 C3 52 93 ..`
 * (absolute mass flow 6.10383 kg/s). Big-endian words and bytes, as the standard sends registers.
 */
describe('float32 vectors of a published device manual', () => {
  const f = layout('float32');
  it.each([
    [[0x42c8, 0x0000], 100.0],
    [[0x4000, 0x0000], 2.0],
    [[0x3f80, 0x0000], 1.0],
    [[0xbf80, 0x0000], -1.0],
  ])('%j is %d', (words, v) => {
    expect(decodeRegister(words, 0, f)).toBe(v);
  });
  it('55.32 is 0x425D47AE (to float32 precision)', () => {
    expect(decodeRegister([0x425d, 0x47ae], 0, f)).toBeCloseTo(55.32, 5);
  });
  it("the manual's example answer reads 6.10383", () => {
    expect(decodeRegister([0x40c3, 0x5293], 0, f)).toBeCloseTo(6.10383, 5);
  });
});

/** float64 and 32-bit integers: vectors from Python's struct (an independent IEEE 754 / two's complement encoder). */
describe('float64 and 32-bit integers', () => {
  const pi = [0x4009, 0x21fb, 0x5444, 0x2d18];
  it('pi in big word order', () => {
    expect(decodeRegister(pi, 0, layout('float64'))).toBe(Math.PI);
  });
  it('pi in little word order (registers reversed)', () => {
    expect(decodeRegister([...pi].reverse(), 0, layout('float64', 'little'))).toBe(Math.PI);
  });
  it('pi with swapped bytes in each register', () => {
    const swapped = pi.map((w) => ((w & 0xff) << 8) | (w >> 8));
    expect(decodeRegister(swapped, 0, layout('float64', 'big', 'little'))).toBe(Math.PI);
  });
  it('-2.5e-300 (a tiny negative double)', () => {
    expect(decodeRegister([0x81ba, 0xc9a7, 0xb3b7, 0x302f], 0, layout('float64'))).toBe(-2.5e-300);
  });
  it('int32 -123456789 = 0xF8A432EB in both word orders', () => {
    expect(decodeRegister([0xf8a4, 0x32eb], 0, layout('int32'))).toBe(-123456789);
    expect(decodeRegister([0x32eb, 0xf8a4], 0, layout('int32', 'little'))).toBe(-123456789);
  });
  it('uint32 and int32 of all ones', () => {
    expect(decodeRegister([0xffff, 0xffff], 0, layout('uint32'))).toBe(4294967295);
    expect(decodeRegister([0xffff, 0xffff], 0, layout('int32'))).toBe(-1);
    expect(decodeRegister([0x7fff, 0xffff], 0, layout('int32'))).toBe(2147483647);
  });
  it('16-bit values: signed and unsigned views of one register', () => {
    expect(decodeRegister([0x8000], 0, layout('int16'))).toBe(-32768);
    expect(decodeRegister([0x8000], 0, layout('uint16'))).toBe(32768);
    expect(decodeRegister([0xff38], 0, layout('int16'))).toBe(-200);
    expect(decodeRegister([0x38ff], 0, layout('int16', 'big', 'little'))).toBe(-200);
  });
  it('reads at an offset inside a block', () => {
    expect(decodeRegister([1, 2, 0x47f1, 0x2000, 9], 2, layout('float32'))).toBe(123456);
  });
  it('refuses a value that runs past the block', () => {
    expect(() => rawValue([0x47f1], 0, layout('float32'))).toThrow(RangeError);
  });
});

describe('bit fields, scale and offset', () => {
  it('bits of a status word, signed types included', () => {
    const w = [0b1000_0000_0000_0101];
    expect(decodeRegister(w, 0, layout('uint16', 'big', 'big', { bit: 0 }))).toBe(true);
    expect(decodeRegister(w, 0, layout('uint16', 'big', 'big', { bit: 1 }))).toBe(false);
    expect(decodeRegister(w, 0, layout('int16', 'big', 'big', { bit: 15 }))).toBe(true);
    expect(decodeRegister([0x8000, 0x0001], 0, layout('uint32', 'big', 'big', { bit: 31 }))).toBe(true);
    expect(decodeRegister([0x8000, 0x0001], 0, layout('uint32', 'big', 'big', { bit: 0 }))).toBe(true);
    expect(decodeRegister([0x8000, 0x0001], 0, layout('uint32', 'big', 'big', { bit: 1 }))).toBe(false);
  });
  it('setting one bit keeps the others', () => {
    const word = [0b100];
    encodeRegister(true, layout('uint16', 'big', 'big', { bit: 0 }), word);
    expect(word).toEqual([0b101]);
    encodeRegister(false, layout('uint16', 'big', 'big', { bit: 2 }), word);
    expect(word).toEqual([0b001]);
  });
  it('scale and offset without binary noise', () => {
    expect(decodeRegister([712], 0, layout('uint16', 'big', 'big', { scale: 0.01 }))).toBe(7.12);
    expect(decodeRegister([0xff9c], 0, layout('int16', 'big', 'big', { scale: 0.1 }))).toBe(-10);
    // °F to °C: (212 − 32) × 5/9 = 100
    expect(decodeRegister([212], 0, layout('uint16', 'big', 'big', { scale: 5 / 9, offset: -160 / 9 }))).toBe(
      100,
    );
  });
  it('encoding rounds and clamps integers to their type', () => {
    expect(encodeRegister(7.126, layout('uint16', 'big', 'big', { scale: 0.01 }))).toEqual([713]);
    expect(encodeRegister(-5, layout('uint16'))).toEqual([0]);
    expect(encodeRegister(1e6, layout('int16'))).toEqual([0x7fff]);
  });
});
