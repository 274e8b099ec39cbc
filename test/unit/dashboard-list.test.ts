import { describe, expect, it } from 'vitest';
import { assignSlots } from '../../dashboards/web/src/slots.js';
import { sparkPoints } from '../../dashboards/web/src/spark.js';

/** Row index → slot as a plain object, for readable expectations. */
const obj = (m: Map<number, number>) => Object.fromEntries(m);

describe('virtual list slots', () => {
  it('keeps the slot of every row that stays in the window and gives a row coming in the slot of the one that left', () => {
    const a = assignSlots(new Map(), 0, 5);
    expect(obj(a)).toEqual({ 0: 0, 1: 1, 2: 2, 3: 3, 4: 4 });
    // Scrolled by one row: row 0 left, row 5 came in and takes its slot.
    const b = assignSlots(a, 1, 6);
    expect(obj(b)).toEqual({ 1: 1, 2: 2, 3: 3, 4: 4, 5: 0 });
  });

  it('moves no row to another slot when the window grows or shrinks (rows of other heights)', () => {
    const a = assignSlots(new Map(), 10, 16);
    // One row fewer in the window (a taller row came in): the others keep their slots.
    const b = assignSlots(a, 11, 16);
    for (let i = 11; i < 16; i++) expect(b.get(i)).toBe(a.get(i));
    // Two more rows (short ones): the rows already there keep theirs, the new ones take free slots.
    const c = assignSlots(b, 11, 18);
    for (let i = 11; i < 16; i++) expect(c.get(i)).toBe(b.get(i));
    expect(new Set(c.values()).size).toBe(c.size);
    expect(Math.max(...c.values())).toBeLessThan(c.size);
  });

  it('never gives two rows one slot, scrolling either way by any amount', () => {
    let slots = new Map<number, number>();
    let first = 0;
    for (const [step, len] of [
      [1, 6],
      [3, 5],
      [-2, 7],
      [50, 6],
      [-1, 4],
      [0, 8],
    ] as const) {
      first = Math.max(0, first + step);
      const next = assignSlots(slots, first, first + len);
      expect(next.size).toBe(len);
      expect(new Set(next.values()).size).toBe(len);
      for (const [row, s] of next) if (slots.has(row)) expect(s).toBe(slots.get(row));
      slots = next;
    }
  });
});

describe('sparkline points', () => {
  it('spans the width, puts the lowest value at the bottom and the highest at the top', () => {
    const pts = sparkPoints([5, 10, 0, 5], 100, 28)
      .split(' ')
      .map((p) => p.split(',').map(Number));
    expect(pts).toHaveLength(4);
    expect(pts[0]![0]).toBe(1);
    expect(pts[3]![0]).toBe(99);
    expect(pts[1]![1]).toBe(2); // 10: the top, a pixel and the stroke in
    expect(pts[2]![1]).toBe(26); // 0: the bottom
    expect(pts[0]![1]).toBe(14);
  });

  it('draws nothing from fewer than two values, and a flat line through equal ones', () => {
    expect(sparkPoints([], 100, 28)).toBe('');
    expect(sparkPoints([3], 100, 28)).toBe('');
    const flat = sparkPoints([7, 7, 7], 50, 28).split(' ');
    expect(new Set(flat.map((p) => p.split(',')[1])).size).toBe(1);
  });
});
