import type { MetricValue, Reading } from '../../gateway/src/core/types.js';
import { decodeRegister } from './decode.js';
import { isBitTable, planReads, type ReadBlock } from './plan.js';
import type { ModbusDeviceConfig, RegisterConfig } from './schema.js';

/** What one block read gave: the words (or bits), or why not. */
export type BlockResult =
  | { ok: true; data: ArrayLike<number> | ArrayLike<boolean> }
  | { ok: false; error: 'exception' | 'timeout' | 'error'; detail: string };

export type DeviceState = 'unknown' | 'online' | 'offline';

export interface RoundOutcome {
  /** The reading to hand over, or null (nothing read and nothing to mark bad). */
  reading: Reading | null;
  /** The state changed to this in this round. */
  transition: DeviceState | null;
  /** Every block answered. */
  complete: boolean;
  /** No block answered (a missed poll). */
  missed: boolean;
}

/**
 * One device's register map, its block reads and its state across rounds. No I/O: the source
 * reads the blocks and hands their results to `finish`.
 *
 * A round is one reading. When every block answered, its values are good. When some block
 * failed (an exception, a timeout, a dropped connection), the reading is `bad` as a whole: the
 * values that did come, and the last values of those that did not, so nothing read in a failed
 * round is ever stored as good. A round where nothing answered (timeouts, no connection; an
 * exception is an answer) is a missed poll; after
 * `offlineAfter` of them in a row the device is offline and its rounds hand over nothing more
 * (the registry's staleness then applies too) until it answers again.
 */
export class DevicePoller {
  readonly blocks: readonly ReadBlock[];
  state: DeviceState = 'unknown';
  /** Missed polls in a row. */
  missed = 0;
  lastOkAt: number | null = null;
  lastError: string | null = null;
  /** A round is in progress (the next tick of its group skips this device). */
  busy = false;
  private readonly last = new Map<string, MetricValue>();

  constructor(
    readonly cfg: ModbusDeviceConfig,
    readonly registers: readonly RegisterConfig[],
    maxSpan: number,
    maxGap: number,
  ) {
    this.blocks = planReads(registers, maxSpan, maxGap);
  }

  get key(): string {
    return `${this.cfg.site}/${this.cfg.id}`;
  }

  finish(results: readonly BlockResult[], ts: number): RoundOutcome {
    const fields: Record<string, MetricValue> = {};
    let good = 0;
    let answered = 0;
    let failed = 0;
    let n = 0;
    for (let b = 0; b < this.blocks.length; b++) {
      const block = this.blocks[b]!;
      const res = results[b];
      if (res?.ok) {
        good++;
        answered++;
        for (const v of block.values) {
          const reg = this.registers[v.index]!;
          const value = isBitTable(block.table)
            ? Boolean((res.data as ArrayLike<boolean>)[v.offset])
            : decodeRegister(res.data as ArrayLike<number>, v.offset, reg);
          fields[reg.metric] = value;
          this.last.set(reg.metric, value);
          n++;
        }
      } else {
        failed++;
        if (res?.error === 'exception') answered++;
        if (res) this.lastError = `${block.table} ${block.start}+${block.count}: ${res.detail}`;
        for (const v of block.values) {
          const metric = this.registers[v.index]!.metric;
          const prev = this.last.get(metric);
          if (prev !== undefined && !(metric in fields)) {
            fields[metric] = prev;
            n++;
          }
        }
      }
    }
    // An exception is an answer: the device is there, only the value is not.
    const missed = answered === 0 && this.blocks.length > 0;
    let transition: DeviceState | null = null;
    if (missed) {
      this.missed++;
      if (this.missed >= this.cfg.offlineAfter && this.state !== 'offline') transition = 'offline';
    } else {
      this.missed = 0;
      if (good > 0) this.lastOkAt = ts;
      if (this.state !== 'online') transition = 'online';
    }
    if (transition) this.state = transition;
    // An offline device hands over nothing: repeating its last values as bad would only be noise.
    const silent = this.state === 'offline' && missed;
    const reading: Reading | null =
      n === 0 || silent
        ? null
        : {
            site: this.cfg.site,
            kind: this.cfg.kind,
            device: this.cfg.id,
            ts,
            fields,
            ...(failed > 0 ? { quality: 'bad' as const } : {}),
          };
    return { reading, transition, complete: failed === 0, missed };
  }
}
