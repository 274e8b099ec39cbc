import { describe, expect, it } from 'vitest';
import {
  FrameError,
  checksum,
  frameSize,
  longFrame,
  parseFrame,
  shortFrame,
} from '../../adapters/mbus/frame.js';
import { selection } from '../../adapters/mbus/master.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/**
 * GWF MTKcoder RSP_UD, transcribed from libmbus's test suite
 * (github.com/rscada/libmbus, test/test-frames/GWF-MTKcoder.hex).
 */
const GWF = hex(
  '68 1B 1B 68 08 01 72 07 20 18 00 E6 1E 35 07 4C 00 00 00 0C 78 07 20 18 00 0C 16 69 02 00 00 96 16',
);

describe('EN 13757-2 frames', () => {
  it('parses a published long frame: C, A, CI and the user data', () => {
    const f = parseFrame(GWF);
    expect(f).toMatchObject({ type: 'long', c: 0x08, a: 0x01, ci: 0x72 });
    if (f instanceof FrameError || f.type !== 'long') throw new Error('not a long frame');
    expect(f.data.length).toBe(0x1b - 3);
    expect(frameSize(GWF)).toBe(GWF.length);
  });

  it('parses the single character, short and control frames', () => {
    expect(parseFrame(hex('E5'))).toEqual({ type: 'ack' });
    // SND_NKE and REQ_UD2 (FCB set) to address 1, as EN 13757-2 defines them (checksum = C + A).
    expect(parseFrame(hex('10 40 01 41 16'))).toEqual({ type: 'short', c: 0x40, a: 0x01 });
    expect(parseFrame(hex('10 7B 01 7C 16'))).toEqual({ type: 'short', c: 0x7b, a: 0x01 });
    expect(parseFrame(hex('68 03 03 68 53 FE 50 A1 16'))).toEqual({
      type: 'control',
      c: 0x53,
      a: 0xfe,
      ci: 0x50,
    });
  });

  it('builds frames the parser reads back, with the checksum over C..data', () => {
    expect(shortFrame(0x40, 0x01)).toEqual(hex('10 40 01 41 16'));
    expect(shortFrame(0x7b, 0xfd)).toEqual(hex('10 7B FD 78 16'));
    const sel = longFrame(0x53, 0xfd, 0x52, selection({ id: '12345678' }));
    expect(sel.subarray(0, 7)).toEqual(hex('68 0B 0B 68 53 FD 52'));
    expect(sel.subarray(7, 15)).toEqual(hex('78 56 34 12 FF FF FF FF'));
    expect(sel[sel.length - 2]).toBe(checksum(sel, 4, sel.length - 2));
    expect(parseFrame(sel)).toMatchObject({ type: 'long', c: 0x53, a: 0xfd, ci: 0x52 });
    expect(selection({ id: '12082058', manufacturer: 'LGB', version: 0x40, medium: 3 })).toEqual(
      hex('58 20 08 12 E2 30 40 03'),
    );
  });

  const reasonOf = (b: Buffer): string => {
    const f = parseFrame(b);
    if (!(f instanceof FrameError)) throw new Error('accepted a bad frame');
    return f.reason;
  };

  it('rejects a wrong checksum with its reason', () => {
    const bad = Buffer.from(GWF);
    bad[bad.length - 2] = 0x97;
    expect(reasonOf(bad)).toBe('frame_checksum');
    expect(reasonOf(hex('10 40 01 42 16'))).toBe('frame_checksum');
  });

  it('rejects a flipped data bit (the checksum catches it)', () => {
    const bad = Buffer.from(GWF);
    bad[25] ^= 0x04;
    expect(reasonOf(bad)).toBe('frame_checksum');
  });

  it('rejects a bad start, differing lengths, a missing stop and a short read', () => {
    expect(reasonOf(hex('69 1B 1B 68'))).toBe('frame_start');
    expect(reasonOf(hex('68 1B 1C 68 08 01 72'))).toBe('frame_length');
    expect(reasonOf(hex('68 1B 1B 67 08 01 72'))).toBe('frame_start');
    const noStop = Buffer.from(GWF);
    noStop[noStop.length - 1] = 0x00;
    expect(reasonOf(noStop)).toBe('frame_stop');
    expect(reasonOf(GWF.subarray(0, 20))).toBe('frame_truncated');
    expect(reasonOf(Buffer.concat([GWF, hex('16')]))).toBe('frame_length');
    expect(reasonOf(hex('10 40 01 41 00'))).toBe('frame_stop');
  });

  it('tells a stream reader how long a frame is, or that it cannot be one', () => {
    expect(frameSize(hex('68 1B'))).toBe(0);
    expect(frameSize(hex('E5'))).toBe(1);
    expect(frameSize(hex('10'))).toBe(5);
    expect(frameSize(hex('00'))).toBeInstanceOf(FrameError);
  });
});
