import { WORDS, type RegisterConfig, type RegisterTable } from './schema.js';

/**
 * Block reads: a device's register map as few requests as the span allows. Pure.
 *
 * Registers of one table are sorted by address and joined while the block stays within `maxSpan`
 * registers (bits for coils and discrete inputs: 16 × maxSpan, at most 2000, the standard's
 * limit) and the hole between neighbours is at most `maxGap` unused registers. Overlapping
 * entries (several bit fields of one status word) share their registers.
 */

export interface PlannedValue {
  /** Index in the device's register list. */
  index: number;
  /** Offset of the value's first register (or bit) in the block's answer. */
  offset: number;
}

export interface ReadBlock {
  table: RegisterTable;
  start: number;
  /** Registers, or bits for coils and discrete inputs. */
  count: number;
  values: PlannedValue[];
}

const MAX_BITS = 2000;

export function isBitTable(t: RegisterTable): boolean {
  return t === 'coil' || t === 'discrete';
}

/** Registers (or bits) a map entry spans. */
export function widthOf(r: Pick<RegisterConfig, 'table' | 'type'>): number {
  return isBitTable(r.table) ? 1 : WORDS[r.type];
}

export function planReads(
  registers: readonly Pick<RegisterConfig, 'table' | 'address' | 'type'>[],
  maxSpan: number,
  maxGap = 0,
): ReadBlock[] {
  const order = registers
    .map((r, index) => ({ r, index }))
    .sort((a, b) => a.r.table.localeCompare(b.r.table) || a.r.address - b.r.address || a.index - b.index);
  const blocks: ReadBlock[] = [];
  let cur: ReadBlock | undefined;
  for (const { r, index } of order) {
    const width = widthOf(r);
    const bits = isBitTable(r.table);
    const span = bits ? Math.min(MAX_BITS, maxSpan * 16) : maxSpan;
    const gap = bits ? maxGap * 16 : maxGap;
    if (width > span) throw new RangeError(`a ${r.type} at ${r.address} is wider than the span of ${span}`);
    const end = r.address + width;
    if (
      cur &&
      cur.table === r.table &&
      r.address <= cur.start + cur.count + gap &&
      Math.max(end, cur.start + cur.count) - cur.start <= span
    ) {
      cur.count = Math.max(end, cur.start + cur.count) - cur.start;
      cur.values.push({ index, offset: r.address - cur.start });
      continue;
    }
    cur = { table: r.table, start: r.address, count: width, values: [{ index, offset: 0 }] };
    blocks.push(cur);
  }
  return blocks;
}
