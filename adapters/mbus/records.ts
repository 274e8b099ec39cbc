/**
 * EN 13757-3 application layer: the fixed data header and the variable data structure of a
 * RSP_UD (data records, each DIF [DIFE...] VIF [VIFE...] data). Pure. Values come out scaled to
 * one unit per quantity (m³, m³/h, °C, bar, Wh, W, kg, kg/h, s), so the mapping to metrics does
 * not repeat the exponent arithmetic.
 */
import { MEDIUM_NAMES } from './medium.js';

export interface FixedHeader {
  /** Identification number, 8 BCD digits, as printed on the meter (leading zeros kept). */
  id: string;
  /** Three-letter manufacturer code (EN 13757-3 / FLAG association), e.g. `EFE`. */
  manufacturer: string;
  version: number;
  medium: number;
  mediumName: string;
  accessNo: number;
  /** Status byte: bits 0-1 application error, 2 power low, 3 permanent error, 4 temporary error. */
  status: number;
  signature: number;
}

export type RecordFunction = 'instantaneous' | 'maximum' | 'minimum' | 'error';

export type Quantity =
  | 'energy_wh'
  | 'energy_j'
  | 'volume_m3'
  | 'mass_kg'
  | 'on_time_s'
  | 'operating_time_s'
  | 'power_w'
  | 'power_jh'
  | 'volume_flow_m3h'
  | 'mass_flow_kgh'
  | 'flow_temperature_c'
  | 'return_temperature_c'
  | 'temperature_difference_k'
  | 'external_temperature_c'
  | 'pressure_bar'
  | 'date'
  | 'datetime'
  | 'hca_units'
  | 'averaging_duration_s'
  | 'actuality_duration_s'
  | 'fabrication_no'
  | 'enhanced_id'
  | 'bus_address'
  | 'credit'
  | 'debit'
  | 'access_number'
  | 'medium'
  | 'manufacturer'
  | 'parameter_set'
  | 'model_version'
  | 'hardware_version'
  | 'firmware_version'
  | 'software_version'
  | 'customer_location'
  | 'customer'
  | 'error_flags'
  | 'error_mask'
  | 'digital_output'
  | 'digital_input'
  | 'volts'
  | 'amperes'
  | 'reset_counter'
  | 'cumulation_counter'
  | 'special_supplier_info'
  | 'battery_change_datetime'
  | 'plain_text'
  | 'manufacturer_specific'
  | 'unknown';

export interface DataRecord {
  function: RecordFunction;
  storage: number;
  tariff: number;
  subunit: number;
  quantity: Quantity;
  /** For `plain_text` records: the unit the meter spelled out; for `unknown`: the VIF in hex. */
  label?: string;
  /**
   * Numbers scaled to the quantity's unit; dates and date-times as epoch ms (the meter's local
   * clock read as UTC: M-Bus carries no zone); text as a string; manufacturer data as hex.
   * NaN when the meter marked the value invalid or sent digits that are not BCD.
   */
  value: number | string;
  /** A VIFE error code (EN 13757-3 Table 15) the meter attached to this record. */
  errorCode?: number;
  /** Offset of the record's DIF in the user data (diagnostics). */
  offset: number;
}

export interface VariableData {
  header: FixedHeader | null;
  records: DataRecord[];
  /** Manufacturer-specific bytes after DIF 0x0F/0x1F, as hex. */
  manufacturerData?: string;
  /** DIF 0x1F: the meter has more records in a next telegram. */
  moreFollows: boolean;
}

export const RECORD_ERRORS = ['records_ci', 'records_truncated', 'records_coding'] as const;
export type RecordErrorReason = (typeof RECORD_ERRORS)[number];

export class RecordError extends Error {
  constructor(
    readonly reason: RecordErrorReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

/** CI fields of a RSP_UD with variable data structure: long header, no header, short header. */
export const CI_RSP_LONG = 0x72;
export const CI_RSP_NONE = 0x78;
export const CI_RSP_SHORT = 0x7a;

/** Decodes the user data of a RSP_UD long frame (the bytes after CI, before the checksum). */
export function parseVariableData(ci: number, data: Buffer): VariableData | RecordError {
  let header: FixedHeader | null = null;
  let at = 0;
  if (ci === CI_RSP_LONG) {
    if (data.length < 12)
      return new RecordError('records_truncated', `fixed header needs 12 bytes, got ${data.length}`);
    header = parseFixedHeader(data);
    at = 12;
  } else if (ci === CI_RSP_SHORT) {
    if (data.length < 4)
      return new RecordError('records_truncated', `short header needs 4 bytes, got ${data.length}`);
    at = 4;
  } else if (ci !== CI_RSP_NONE) {
    return new RecordError('records_ci', `CI 0x${hex(ci)} is no variable-data response (0x72, 0x78, 0x7a)`);
  }
  const out: VariableData = { header, records: [], moreFollows: false };
  try {
    while (at < data.length) {
      const dif = data[at]!;
      if (dif === 0x2f) {
        at++; // idle filler
        continue;
      }
      if (dif === 0x0f || dif === 0x1f) {
        out.manufacturerData = data.subarray(at + 1).toString('hex');
        out.moreFollows = dif === 0x1f;
        break;
      }
      if ((dif & 0x0f) === 0x0f)
        throw new RecordError(
          'records_coding',
          `special function DIF 0x${hex(dif)} at ${at} is not supported`,
        );
      const r = parseRecord(data, at);
      out.records.push(r.record);
      at = r.next;
    }
  } catch (err) {
    if (err instanceof RecordError) return err;
    throw err;
  }
  return out;
}

export function parseFixedHeader(d: Buffer): FixedHeader {
  const m = d.readUInt16LE(4);
  const medium = d[7]!;
  return {
    id: bcdDigits(d, 0, 4),
    manufacturer: manufacturerCode(m),
    version: d[6]!,
    medium,
    mediumName: MEDIUM_NAMES[medium] ?? 'reserved',
    accessNo: d[8]!,
    status: d[9]!,
    signature: d.readUInt16LE(10),
  };
}

/** The 15-bit manufacturer id as three letters (each 5 bits, A = 1). */
export function manufacturerCode(m: number): string {
  return String.fromCharCode(((m >> 10) & 0x1f) + 64, ((m >> 5) & 0x1f) + 64, (m & 0x1f) + 64);
}

const FUNCTIONS: readonly RecordFunction[] = ['instantaneous', 'maximum', 'minimum', 'error'];
/** Data bytes per DIF data field (0x0d variable, read from LVAR). */
const DATA_LEN = [0, 1, 2, 3, 4, 4, 6, 8, 0, 1, 2, 3, 4, -1, 6, 0];

function need(d: Buffer, at: number, n: number, what: string): void {
  if (at + n > d.length)
    throw new RecordError(
      'records_truncated',
      `${what} at byte ${at} needs ${n} bytes, ${d.length - at} left`,
    );
}

function parseRecord(d: Buffer, start: number): { record: DataRecord; next: number } {
  let at = start;
  const dif = d[at++]!;
  let storage = (dif >> 6) & 1;
  let tariff = 0;
  let subunit = 0;
  let ext = dif & 0x80;
  for (let i = 0; ext; i++) {
    if (i >= 10) throw new RecordError('records_coding', `more than 10 DIFEs at ${start}`);
    need(d, at, 1, 'DIFE');
    const dife = d[at++]!;
    storage += (dife & 0x0f) * 2 ** (1 + 4 * i);
    tariff |= ((dife >> 4) & 0x03) << (2 * i);
    subunit |= ((dife >> 6) & 0x01) << i;
    ext = dife & 0x80;
  }
  need(d, at, 1, 'VIF');
  const vif = d[at++]!;
  let vifes: number[] = [];
  let label: string | undefined;
  if ((vif & 0x7f) === 0x7c) {
    need(d, at, 1, 'plain-text VIF length');
    const n = d[at++]!;
    need(d, at, n, 'plain-text VIF');
    label = reversedAscii(d, at, n);
    at += n;
  }
  let vext = vif & 0x80;
  while (vext) {
    if (vifes.length >= 10) throw new RecordError('records_coding', `more than 10 VIFEs at ${start}`);
    need(d, at, 1, 'VIFE');
    const v = d[at++]!;
    vifes.push(v);
    vext = v & 0x80;
  }
  const coding = dif & 0x0f;
  let len = DATA_LEN[coding]!;
  let lvar = -1;
  if (len === -1) {
    need(d, at, 1, 'LVAR');
    lvar = d[at++]!;
    len = lvarBytes(lvar, start);
  }
  need(d, at, len, `data (DIF 0x${hex(dif)})`);
  const unit = describeVif(vif, vifes, label);
  vifes = unit.rest;
  let errorCode: number | undefined;
  let mult = 1;
  let add = 0;
  for (const v of vifes) {
    const e = v & 0x7f;
    if (e <= 0x1f) errorCode = e;
    else if (e >= 0x70 && e <= 0x77) mult *= 10 ** ((e & 0x07) - 6);
    else if (e >= 0x78 && e <= 0x7b) add += 10 ** ((e & 0x03) - 3);
    else if (e === 0x7d) mult *= 1000;
  }
  let value: number | string;
  if (unit.quantity === 'date' || unit.quantity === 'datetime' || unit.quantity === 'battery_change_datetime')
    value = dateValue(d, at, len);
  else if (lvar >= 0) value = variableValue(d, at, len, lvar);
  else if (unit.quantity === 'manufacturer_specific') value = hexReversed(d, at, len);
  else {
    const raw = numberValue(d, at, coding);
    value = unit.exp === 0 && mult === 1 ? raw : scale(raw, unit.exp) * mult;
    if (add !== 0) value += scale(add, unit.exp);
    if (unit.factor !== 1) value *= unit.factor;
  }
  const record: DataRecord = {
    function: FUNCTIONS[(dif >> 4) & 0x03]!,
    storage,
    tariff,
    subunit,
    quantity: unit.quantity,
    value,
    offset: start,
  };
  if (unit.label !== undefined) record.label = unit.label;
  if (errorCode !== undefined) record.errorCode = errorCode;
  return { record, next: at + len };
}

/** x × 10^e, dividing for negative exponents so that 332 × 10^-3 is 0.332 exactly. */
function scale(x: number, e: number): number {
  return e < 0 ? x / 10 ** -e : x * 10 ** e;
}

function lvarBytes(lvar: number, start: number): number {
  if (lvar <= 0xbf) return lvar;
  if (lvar >= 0xc0 && lvar <= 0xc9) return lvar - 0xc0;
  if (lvar >= 0xd0 && lvar <= 0xd9) return lvar - 0xd0;
  if (lvar >= 0xe0 && lvar <= 0xef) return lvar - 0xe0;
  throw new RecordError('records_coding', `LVAR 0x${hex(lvar)} at ${start} is reserved`);
}

function variableValue(d: Buffer, at: number, len: number, lvar: number): number | string {
  if (lvar <= 0xbf) return reversedAscii(d, at, len);
  if (lvar <= 0xc9) return bcdValue(d, at, len);
  if (lvar <= 0xd9) return -bcdValue(d, at, len);
  return intValue(d, at, len);
}

function numberValue(d: Buffer, at: number, coding: number): number {
  switch (coding) {
    case 0x00:
    case 0x08:
      return NaN;
    case 0x05:
      return d.readFloatLE(at);
    case 0x09:
    case 0x0a:
    case 0x0b:
    case 0x0c:
    case 0x0e:
      return bcdValue(d, at, DATA_LEN[coding]!);
    default:
      return intValue(d, at, DATA_LEN[coding]!);
  }
}

/** Little-endian two's complement integer of 1..8 bytes. */
function intValue(d: Buffer, at: number, len: number): number {
  if (len === 0) return NaN;
  if (len <= 6) return d.readIntLE(at, len);
  if (len === 8) return Number(d.readBigInt64LE(at));
  let v = 0n;
  for (let i = len - 1; i >= 0; i--) v = (v << 8n) | BigInt(d[at + i]!);
  const bits = BigInt(len * 8);
  if (v >> (bits - 1n)) v -= 1n << bits;
  return Number(v);
}

/**
 * Packed BCD, least significant byte first. A high nibble 0xF in the last byte is a minus sign
 * (EN 13757-3 Annex B practice); any other nibble above 9 makes the value invalid (NaN): meters
 * put 0xA-0xE digits into a register they cannot read.
 */
function bcdValue(d: Buffer, at: number, len: number): number {
  let v = 0;
  let sign = 1;
  for (let i = len - 1; i >= 0; i--) {
    const b = d[at + i]!;
    let hi = b >> 4;
    const lo = b & 0x0f;
    if (i === len - 1 && hi === 0x0f) {
      sign = -1;
      hi = 0;
    }
    if (hi > 9 || lo > 9) return NaN;
    v = v * 100 + hi * 10 + lo;
  }
  return sign * v;
}

function bcdDigits(d: Buffer, at: number, len: number): string {
  let s = '';
  for (let i = len - 1; i >= 0; i--) s += d[at + i]!.toString(16).padStart(2, '0');
  return s;
}

function reversedAscii(d: Buffer, at: number, len: number): string {
  let s = '';
  for (let i = at + len - 1; i >= at; i--) s += String.fromCharCode(d[i]!);
  return s;
}

function hexReversed(d: Buffer, at: number, len: number): string {
  const parts: string[] = [];
  for (let i = at + len - 1; i >= at; i--) parts.push(d[i]!.toString(16).padStart(2, '0'));
  return parts.join(' ').toUpperCase();
}

/**
 * Type G (2 bytes, date), type F (4 bytes, date and time to the minute) and type I (6 bytes, to
 * the second), EN 13757-3 Annex A. Years 0-80 are 2000-2080, 81-99 are 1981-1999.
 */
function dateValue(d: Buffer, at: number, len: number): number {
  let sec = 0;
  let o = at;
  if (len === 6) sec = d[o++]! & 0x3f;
  let min = 0;
  let hour = 0;
  if (len === 4 || len === 6) {
    if (d[o]! & 0x80) return NaN; // IV: time invalid
    min = d[o++]! & 0x3f;
    hour = d[o++]! & 0x1f;
  } else if (len !== 2) return NaN;
  const b0 = d[o]!;
  const b1 = d[o + 1]!;
  const day = b0 & 0x1f;
  const month = b1 & 0x0f;
  const y = ((b0 & 0xe0) >> 5) | ((b1 & 0xf0) >> 1);
  if (day < 1 || month < 1 || month > 12 || min > 59 || hour > 23 || sec > 59) return NaN;
  const year = y <= 80 ? 2000 + y : 1900 + y;
  return Date.UTC(year, month - 1, day, hour, min, sec);
}

interface VifInfo {
  quantity: Quantity;
  /** Decimal exponent of the raw value. */
  exp: number;
  /** Further factor to the quantity's unit (minutes → seconds, m³/min → m³/h). */
  factor: number;
  label?: string;
  /** The VIFEs still to read as combinable extensions (error codes, corrections). */
  rest: number[];
}

const TIME_FACTOR = [1, 60, 3600, 86_400];

/** EN 13757-3 Table 10 (primary VIF), Table 12 (0xFD) and the common part of Table 14 (0xFB). */
function describeVif(vif: number, vifes: number[], label: string | undefined): VifInfo {
  const v = vif & 0x7f;
  const rest = vifes;
  const info = (quantity: Quantity, exp = 0, factor = 1, r = rest): VifInfo => ({
    quantity,
    exp,
    factor,
    rest: r,
  });
  if (v === 0x7f) return { quantity: 'manufacturer_specific', exp: 0, factor: 1, rest: [] };
  if (v === 0x7c) return { quantity: 'plain_text', exp: 0, factor: 1, label, rest };
  if (v === 0x7d) return describeFd(vifes[0] ?? 0, vifes.slice(1));
  if (v === 0x7b) return describeFb(vifes[0] ?? 0, vifes.slice(1));
  const n = v & 0x07;
  const nn = v & 0x03;
  if (v <= 0x07) return info('energy_wh', n - 3);
  if (v <= 0x0f) return info('energy_j', n);
  if (v <= 0x17) return info('volume_m3', n - 6);
  if (v <= 0x1f) return info('mass_kg', n - 3);
  if (v <= 0x23) return info('on_time_s', 0, TIME_FACTOR[nn]);
  if (v <= 0x27) return info('operating_time_s', 0, TIME_FACTOR[nn]);
  if (v <= 0x2f) return info('power_w', n - 3);
  if (v <= 0x37) return info('power_jh', n);
  if (v <= 0x3f) return info('volume_flow_m3h', n - 6);
  if (v <= 0x47) return info('volume_flow_m3h', n - 7, 60);
  if (v <= 0x4f) return info('volume_flow_m3h', n - 9, 3600);
  if (v <= 0x57) return info('mass_flow_kgh', n - 3);
  if (v <= 0x5b) return info('flow_temperature_c', nn - 3);
  if (v <= 0x5f) return info('return_temperature_c', nn - 3);
  if (v <= 0x63) return info('temperature_difference_k', nn - 3);
  if (v <= 0x67) return info('external_temperature_c', nn - 3);
  if (v <= 0x6b) return info('pressure_bar', nn - 3);
  if (v === 0x6c) return info('date');
  if (v === 0x6d) return info('datetime');
  if (v === 0x6e) return info('hca_units');
  if (v >= 0x70 && v <= 0x73) return info('averaging_duration_s', 0, TIME_FACTOR[nn]);
  if (v >= 0x74 && v <= 0x77) return info('actuality_duration_s', 0, TIME_FACTOR[nn]);
  if (v === 0x78) return info('fabrication_no');
  if (v === 0x79) return info('enhanced_id');
  if (v === 0x7a) return info('bus_address');
  return { quantity: 'unknown', exp: 0, factor: 1, label: `VIF 0x${hex(vif)}`, rest };
}

const FD_CODES: Record<number, Quantity> = {
  0x08: 'access_number',
  0x09: 'medium',
  0x0a: 'manufacturer',
  0x0b: 'parameter_set',
  0x0c: 'model_version',
  0x0d: 'hardware_version',
  0x0e: 'firmware_version',
  0x0f: 'software_version',
  0x10: 'customer_location',
  0x11: 'customer',
  0x17: 'error_flags',
  0x18: 'error_mask',
  0x1a: 'digital_output',
  0x1b: 'digital_input',
  0x60: 'reset_counter',
  0x61: 'cumulation_counter',
  0x67: 'special_supplier_info',
  0x70: 'battery_change_datetime',
};

function describeFd(e: number, rest: number[]): VifInfo {
  const v = e & 0x7f;
  const info = (quantity: Quantity, exp = 0): VifInfo => ({ quantity, exp, factor: 1, rest });
  if (v <= 0x03) return info('credit', (v & 0x03) - 3);
  if (v <= 0x07) return info('debit', (v & 0x03) - 3);
  if (v >= 0x40 && v <= 0x4f) return info('volts', (v & 0x0f) - 9);
  if (v >= 0x50 && v <= 0x5f) return info('amperes', (v & 0x0f) - 12);
  const q = FD_CODES[v];
  if (q) return info(q);
  return { quantity: 'unknown', exp: 0, factor: 1, label: `VIF 0xFD 0x${hex(e)}`, rest };
}

function describeFb(e: number, rest: number[]): VifInfo {
  const v = e & 0x7f;
  const n = v & 0x01;
  const info = (quantity: Quantity, exp: number, factor = 1): VifInfo => ({ quantity, exp, factor, rest });
  if (v <= 0x01) return info('energy_wh', n - 1, 1e6); // MWh
  if (v >= 0x08 && v <= 0x09) return info('energy_j', n - 1, 1e9); // GJ
  if (v >= 0x10 && v <= 0x11) return info('volume_m3', n + 2);
  if (v >= 0x18 && v <= 0x19) return info('mass_kg', n + 2, 1000); // t
  if (v >= 0x28 && v <= 0x29) return info('power_w', n - 1, 1e6); // MW
  return { quantity: 'unknown', exp: 0, factor: 1, label: `VIF 0xFB 0x${hex(e)}`, rest };
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
