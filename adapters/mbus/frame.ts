/**
 * EN 13757-2 link layer (the FT1.2 frame format of IEC 60870-5-2 as wired M-Bus uses it): the
 * four frame shapes, their checksum, and a parser that says exactly why a frame is refused.
 * Pure: no I/O, so the decoder is tested on published frames byte for byte.
 */

export const ACK = 0xe5;
const START_SHORT = 0x10;
const START_LONG = 0x68;
const STOP = 0x16;

/** C-field values the master sends (EN 13757-2, 5.4). FCB is bit 5, FCV bit 4. */
export const C_SND_NKE = 0x40;
export const C_SND_UD = 0x53;
export const C_REQ_UD2 = 0x5b;
export const FCB = 0x20;
/** CI of a selection for secondary addressing (EN 13757-3, 11.2). */
export const CI_SELECT = 0x52;
/** The address a selected meter answers on, and the broadcast without answer. */
export const ADDR_SELECTED = 0xfd;
export const ADDR_BROADCAST = 0xff;

export type Frame =
  | { type: 'ack' }
  | { type: 'short'; c: number; a: number }
  | { type: 'control'; c: number; a: number; ci: number }
  | { type: 'long'; c: number; a: number; ci: number; data: Buffer };

/** Why a frame is refused; stable codes, they label the error counters. */
export const FRAME_ERRORS = [
  'frame_start',
  'frame_length',
  'frame_checksum',
  'frame_stop',
  'frame_truncated',
] as const;
export type FrameErrorReason = (typeof FRAME_ERRORS)[number];

export class FrameError extends Error {
  constructor(
    readonly reason: FrameErrorReason,
    detail: string,
  ) {
    super(`${reason}: ${detail}`);
  }
}

/** Arithmetic sum modulo 256 of `buf[start, end)` (EN 13757-2: C, A, CI and user data). */
export function checksum(buf: Uint8Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + buf[i]!) & 0xff;
  return s;
}

/**
 * How many bytes the frame starting at `buf[0]` occupies, once enough of it is there to know:
 * a positive length, 0 while more bytes are needed, or a FrameError for a byte that starts no
 * frame or a long frame whose two length bytes differ. Lets a stream reader cut frames.
 */
export function frameSize(buf: Uint8Array): number | FrameError {
  if (buf.length === 0) return 0;
  const b = buf[0]!;
  if (b === ACK) return 1;
  if (b === START_SHORT) return 5;
  if (b !== START_LONG) return new FrameError('frame_start', `0x${hex(b)} starts no M-Bus frame`);
  if (buf.length < 4) return 0;
  if (buf[1] !== buf[2])
    return new FrameError('frame_length', `length bytes differ: ${buf[1]} and ${buf[2]}`);
  if (buf[3] !== START_LONG)
    return new FrameError('frame_start', `second start byte is 0x${hex(buf[3]!)}, not 0x68`);
  return buf[1]! + 6;
}

/** Parses exactly one frame; `buf` must hold that frame and nothing else. */
export function parseFrame(buf: Uint8Array): Frame | FrameError {
  if (buf.length === 0) return new FrameError('frame_truncated', 'no bytes');
  const size = frameSize(buf);
  if (size instanceof FrameError) return size;
  if (size === 0 || buf.length < size)
    return new FrameError('frame_truncated', `${buf.length} bytes, the frame needs ${size || 'more'}`);
  if (buf.length > size)
    return new FrameError('frame_length', `${buf.length} bytes, the frame's length says ${size}`);
  if (size === 1) return { type: 'ack' };
  const end = size - 2;
  const first = buf[0] === START_SHORT ? 1 : 4;
  const cs = checksum(buf, first, end);
  if (buf[end] !== cs)
    return new FrameError('frame_checksum', `checksum 0x${hex(buf[end]!)}, computed 0x${hex(cs)}`);
  if (buf[size - 1] !== STOP)
    return new FrameError('frame_stop', `last byte 0x${hex(buf[size - 1]!)}, not 0x16`);
  if (first === 1) return { type: 'short', c: buf[1]!, a: buf[2]! };
  const l = buf[1]!;
  if (l < 3) return new FrameError('frame_length', `L = ${l}, below the 3 bytes of C, A and CI`);
  if (l === 3) return { type: 'control', c: buf[4]!, a: buf[5]!, ci: buf[6]! };
  return { type: 'long', c: buf[4]!, a: buf[5]!, ci: buf[6]!, data: Buffer.from(buf.subarray(7, end)) };
}

export function shortFrame(c: number, a: number): Buffer {
  return Buffer.from([START_SHORT, c, a, (c + a) & 0xff, STOP]);
}

/** A long frame (a control frame when `data` is empty). */
export function longFrame(c: number, a: number, ci: number, data: Uint8Array = new Uint8Array(0)): Buffer {
  const l = 3 + data.length;
  if (l > 255) throw new RangeError(`user data of ${data.length} bytes exceeds the 252 a frame holds`);
  const out = Buffer.alloc(l + 6);
  out[0] = START_LONG;
  out[1] = l;
  out[2] = l;
  out[3] = START_LONG;
  out[4] = c;
  out[5] = a;
  out[6] = ci;
  out.set(data, 7);
  out[l + 4] = checksum(out, 4, l + 4);
  out[l + 5] = STOP;
  return out;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
