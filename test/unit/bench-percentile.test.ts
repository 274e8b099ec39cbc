import { describe, expect, it } from 'vitest';
import { percentile } from '../../bench/lib.js';

describe('bench percentile (nearest rank)', () => {
  it('gives measured values: p50 and p99 of ten samples', () => {
    const xs = [900, 100, 800, 200, 700, 300, 600, 400, 500, 1000];
    expect(percentile(xs, 0.5)).toBe(500);
    expect(percentile(xs, 0.99)).toBe(1000);
    expect(percentile(xs, 0.9)).toBe(900);
  });

  it('handles one sample, the ends and no samples', () => {
    expect(percentile([42], 0.5)).toBe(42);
    expect(percentile([3, 1, 2], 0)).toBe(1);
    expect(percentile([3, 1, 2], 1)).toBe(3);
    expect(percentile([], 0.5)).toBeNaN();
  });

  it('leaves its input in place', () => {
    const xs = [3, 1, 2];
    percentile(xs, 0.5);
    expect(xs).toEqual([3, 1, 2]);
  });
});
