/**
 * The simulated meters' side of M-Bus: an RSP_UD long frame (EN 13757-2) with a fixed header and
 * variable data records (EN 13757-3) built from a gas or water meter's latest report. Written
 * apart from the gateway's decoder on purpose: a shared codec would hide a misreading of the
 * standard on both sides.
 */
import type { Values } from '../types.js';

export interface MeterIdentity {
  /** 8 decimal digits. */
  id: string;
  kind: 'gas-meter' | 'water-meter';
  accessNo: number;
}

/** Error-flag bits our simulated meters use (a real meter's are its manufacturer's). */
export const SIM_ERROR_BITS = { tamper: 0, reverse_flow: 1, valve_closed: 1, battery_low: 2 } as const;
/** `FGW` as the 15-bit manufacturer id. */
const MANUFACTURER = ((6 << 10) | (7 << 5) | 23) & 0x7fff;
const VERSION = 1;
const MEDIUM = { 'gas-meter': 0x03, 'water-meter': 0x07 } as const;

function bcd(value: number, bytes: number): number[] {
  let v = Math.max(0, Math.round(value));
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    const lo = v % 10;
    v = Math.floor(v / 10);
    const hi = v % 10;
    v = Math.floor(v / 10);
    out.push((hi << 4) | lo);
  }
  return out;
}

function int(value: number, bytes: number): number[] {
  const out: number[] = [];
  let v = BigInt(Math.round(value));
  for (let i = 0; i < bytes; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

/** Type F: minute, hour, day + year low bits, month + year high bits. */
function typeF(ts: number): number[] {
  const d = new Date(ts);
  const y = d.getUTCFullYear() % 100;
  return [
    d.getUTCMinutes(),
    d.getUTCHours(),
    d.getUTCDate() | ((y & 0x07) << 5),
    d.getUTCMonth() + 1 + ((y & 0x78) << 1),
  ];
}

/** The user data (after CI 0x72) of a meter's answer. */
export function encodeUserData(meter: MeterIdentity, ts: number, v: Values, status = 0): Buffer {
  const num = (k: string): number | undefined => (typeof v[k] === 'number' ? (v[k] as number) : undefined);
  const out: number[] = [
    ...bcd(Number(meter.id), 4),
    MANUFACTURER & 0xff,
    MANUFACTURER >> 8,
    VERSION,
    MEDIUM[meter.kind],
    meter.accessNo & 0xff,
    status,
    0,
    0,
  ];
  out.push(0x0c, 0x78, ...bcd(Number(meter.id), 4)); // fabrication number, 8-digit BCD
  out.push(0x04, 0x6d, ...typeF(ts)); // date and time, type F
  const volume = num('volume_m3');
  if (volume !== undefined) out.push(0x0c, 0x13, ...bcd(volume * 1000, 4)); // volume, 8-digit BCD, litres
  const flowM3h = meter.kind === 'water-meter' ? (num('flow_lph') ?? NaN) / 1000 : num('flow_m3h');
  if (flowM3h !== undefined && Number.isFinite(flowM3h)) out.push(0x04, 0x3b, ...int(flowM3h * 1000, 4)); // L/h
  const temp = num('temperature_c');
  if (temp !== undefined) out.push(0x02, 0x5a, ...int(temp * 10, 2)); // flow temperature, 0.1 °C
  const kpa = num('pressure_kpa');
  if (kpa !== undefined) out.push(0x02, 0x69, ...int(kpa, 2)); // pressure, 0.01 bar = 1 kPa
  let flags = 0;
  if (v.tamper === true) flags |= 1 << SIM_ERROR_BITS.tamper;
  if (v.reverse_flow === true) flags |= 1 << SIM_ERROR_BITS.reverse_flow;
  if (v.valve_open === false) flags |= 1 << SIM_ERROR_BITS.valve_closed;
  const battery = num('battery_pct');
  if (battery !== undefined && battery < 20) flags |= 1 << SIM_ERROR_BITS.battery_low;
  out.push(0x01, 0xfd, 0x17, flags); // error flags
  return Buffer.from(out);
}

/** A long frame: 68 L L 68 C A CI data CS 16. */
export function longFrame(c: number, a: number, ci: number, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([c, a, ci]), data]);
  let cs = 0;
  for (const b of body) cs = (cs + b) & 0xff;
  return Buffer.concat([Buffer.from([0x68, body.length, body.length, 0x68]), body, Buffer.from([cs, 0x16])]);
}
