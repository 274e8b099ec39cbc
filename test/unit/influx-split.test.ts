import { describe, expect, it } from 'vitest';
import { halve } from '../../gateway/src/sinks/influx/split.js';

const text = (n: number): string =>
  Array.from({ length: n }, (_, i) => `m,t=a f=${i} ${1000 + i}\n`).join('');
const body = (n: number): Buffer => Buffer.from(text(n));
const str = (b: Buffer): string => b.toString('utf8');

describe('halve', () => {
  it('cuts at a line boundary near the middle and keeps every line once', () => {
    for (const n of [2, 3, 7, 100, 5001]) {
      const halves = halve({ parts: [body(n)], lines: n })!;
      expect(halves).toBeDefined();
      const [a, b] = halves;
      expect(str(a.parts[0]!) + str(b.parts[0]!)).toBe(text(n));
      expect(str(a.parts[0]!).endsWith('\n')).toBe(true);
      expect(a.lines + b.lines).toBe(n);
      expect(a.lines).toBe(str(a.parts[0]!).split('\n').length - 1);
      expect(a.lines).toBeGreaterThan(0);
      expect(b.lines).toBeGreaterThan(0);
      // Halved by size, not count: the halves differ by at most about one line's length.
      expect(Math.abs(a.parts[0]!.length - b.parts[0]!.length)).toBeLessThanOrEqual(2 * 24);
    }
  });

  it('handles one very long line beside short ones', () => {
    const long = `m,t=a f="${'x'.repeat(1000)}" 1\n`;
    const [a, b] = halve({ parts: [Buffer.from(long), Buffer.from('m f=1 2\n')], lines: 2 })!;
    expect([a.lines, b.lines]).toEqual([1, 1]);
    const [c, d] = halve({ parts: [Buffer.from('m f=1 2\n' + long)], lines: 2 })!;
    expect([str(c.parts[0]!), str(d.parts[0]!)]).toEqual(['m f=1 2\n', long]);
  });

  it('cannot halve a single line', () => {
    expect(halve({ parts: [Buffer.from('m f=1 1\n')], lines: 1 })).toBeUndefined();
  });
});
