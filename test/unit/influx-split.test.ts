import { describe, expect, it } from 'vitest';
import { halve } from '../../gateway/src/sinks/influx/split.js';

const text = (n: number): string =>
  Array.from({ length: n }, (_, i) => `m,t=a f=${i} ${1000 + i}\n`).join('');
const body = (n: number): Buffer => Buffer.from(text(n));
const str = (b: Buffer): string => b.toString('utf8');

describe('halve', () => {
  it('cuts at a line boundary near the middle and keeps every line once', () => {
    for (const n of [2, 3, 7, 100, 5001]) {
      const halves = halve({ body: body(n), lines: n })!;
      expect(halves).toBeDefined();
      const [a, b] = halves;
      expect(str(a.body) + str(b.body)).toBe(text(n));
      expect(str(a.body).endsWith('\n')).toBe(true);
      expect(a.lines + b.lines).toBe(n);
      expect(a.lines).toBe(str(a.body).split('\n').length - 1);
      expect(a.lines).toBeGreaterThan(0);
      expect(b.lines).toBeGreaterThan(0);
      // Halved by size, not count: the halves differ by at most about one line's length.
      expect(Math.abs(a.body.length - b.body.length)).toBeLessThanOrEqual(2 * 24);
    }
  });

  it('handles one very long line beside short ones', () => {
    const long = `m,t=a f="${'x'.repeat(1000)}" 1\n`;
    const [a, b] = halve({ body: Buffer.from(long + 'm f=1 2\n'), lines: 2 })!;
    expect([a.lines, b.lines]).toEqual([1, 1]);
    const [c, d] = halve({ body: Buffer.from('m f=1 2\n' + long), lines: 2 })!;
    expect([str(c.body), str(d.body)]).toEqual(['m f=1 2\n', long]);
  });

  it('cannot halve a single line', () => {
    expect(halve({ body: Buffer.from('m f=1 1\n'), lines: 1 })).toBeUndefined();
  });
});
