import type { Kysely } from 'kysely';
import { DeviceStateStore, type MeterRow, type RuleRow } from './device-state-store.js';
import { partitionOfDevice } from './partition.js';

/** A state entry as the deriver and the rules hand it over: a string, or an object read when committed. */
export type StateValue = string | { toString(): string };

/**
 * The local state store the tracker forwards to (the outbox): what the deriver (`StateStore`,
 * ingest/derive.ts) and the rules (`DurableRuleState`, rules/runtime.ts) use, which the tracker
 * therefore is too.
 */
export interface LocalStateStore {
  loadState(prefix: string): Map<string, string>;
  putState(key: string, value: StateValue): void;
  addStateSource(collect: () => void): () => void;
  requestCommit(): void;
}

/** Where restored state goes: the consumption deriver and the rules (wired by the composition root). */
export interface DeviceStateTargets {
  restoreMeters(meters: Array<{ key: string; ts: number; index: number }>): number;
  /** DeviceSnapshot JSON rows; returns the devices restored. */
  restoreRules(rows: string[]): number;
  /** Stops (`on`) or resumes the time-based rules of the devices `which` selects. */
  parkRules(which: (site: string, device: string) => boolean, on: boolean): void;
}

/** What a key of the local store is, computed once per key. */
interface KeyInfo {
  site: string;
  device: string;
  partition: number;
  meter: boolean;
}

/** A capture: the changed devices' state as of `tag` (local epoch ms, a watermark sample time). */
interface Batch {
  tag: number;
  rows: Map<string, string>;
}

/** Captures kept at most while the watermark does not move (InfluxDB down); older ones are merged. */
const BATCHES_MAX = 120;

/**
 * Cluster mode only (ADR 0151): the rules' and the consumption deriver's state store, in front of
 * the outbox. Every write goes to the outbox as on a single instance, and the key is remembered as
 * changed (one Map.set of an existing key: no allocation per reading). With each sample of the
 * durable watermark (every second, never per reading) the changed devices' state is serialised
 * into a capture tagged with the sample's time. A capture is written to the shared store once the
 * watermark has passed its tag, in the transaction that records that watermark: so the shared
 * store holds, for each partition, exactly the state as of the readings that are in InfluxDB, and
 * the next owner replays from that point.
 */
export class DeviceStateTracker implements LocalStateStore {
  private dirty = new Map<string, StateValue>();
  private readonly keys = new Map<string, KeyInfo | null>();
  private batches: Batch[] = [];
  private targets?: DeviceStateTargets;
  /** Devices written to and restored from the shared store, for health. */
  rowsWritten = 0;
  devicesRestored = 0;

  constructor(
    private readonly local: LocalStateStore,
    private readonly partitions: number,
    /** The key prefixes of a meter's index and of a device's rule state (`consumption:`, `rules:`). */
    private readonly prefixes: { meter: string; rules: string },
  ) {}

  // The local store's interface, forwarded.
  loadState(prefix: string): Map<string, string> {
    return this.local.loadState(prefix);
  }
  putState(key: string, value: StateValue): void {
    this.local.putState(key, value);
    this.dirty.set(key, value);
  }
  addStateSource(collect: () => void): () => void {
    return this.local.addStateSource(collect);
  }
  requestCommit(): void {
    this.local.requestCommit();
  }

  /** The deriver and the rules, once built; before, a takeover has nothing to restore into. */
  attach(targets: DeviceStateTargets): void {
    this.targets = targets;
  }

  /** Serialises the devices changed since the last capture, as of now (`tag`). */
  capture(tag: number): void {
    if (this.dirty.size === 0) return;
    const rows = new Map<string, string>();
    for (const [k, v] of this.dirty) if (this.info(k)) rows.set(k, String(v));
    this.dirty.clear();
    if (rows.size === 0) return;
    this.batches.push({ tag, rows });
    if (this.batches.length > BATCHES_MAX) {
      // Merged into the next one: its content only waits for a later watermark.
      const [a, b] = this.batches as [Batch, Batch];
      for (const [k, v] of a.rows) if (!b.rows.has(k)) b.rows.set(k, v);
      this.batches.shift();
    }
  }

  /** Captures not written yet (health). */
  get pending(): number {
    return this.batches.length;
  }

  /**
   * The state captured at or before `mark` (latest per device), of the partitions `writable`
   * selects, as rows for the shared store. Call written(mark) once they are committed.
   */
  settled(mark: number, writable: (partition: number) => boolean): { rules: RuleRow[]; meters: MeterRow[] } {
    const merged = new Map<string, string>();
    for (const b of this.batches) {
      if (b.tag > mark) break;
      for (const [k, v] of b.rows) merged.set(k, v);
    }
    const rules: RuleRow[] = [];
    const meters: MeterRow[] = [];
    for (const [k, v] of merged) {
      const i = this.info(k)!;
      if (!writable(i.partition)) continue;
      if (!i.meter) {
        rules.push({ site: i.site, device: i.device, partition: i.partition, state: v });
        continue;
      }
      const sp = v.indexOf(' ');
      const ts = Number(v.slice(0, sp));
      const idx = Number(v.slice(sp + 1));
      if (sp > 0 && Number.isFinite(ts) && Number.isFinite(idx))
        meters.push({ site: i.site, device: i.device, partition: i.partition, ts, idx });
    }
    return { rules, meters };
  }

  /** The captures up to `mark` are in the shared store (or belonged to partitions no longer held). */
  written(mark: number, rows: number): void {
    let k = 0;
    while (k < this.batches.length && this.batches[k]!.tag <= mark) k++;
    if (k > 0) this.batches.splice(0, k);
    this.rowsWritten += rows;
  }

  /**
   * Forgets what is pending for these partitions: they were lost (another member may already hold
   * newer state) or are about to be restored from the shared store.
   */
  purge(parts: ReadonlySet<number>): void {
    if (parts.size === 0) return;
    const inParts = (k: string) => {
      const i = this.info(k);
      return i !== null && parts.has(i.partition);
    };
    for (const k of [...this.dirty.keys()]) if (inParts(k)) this.dirty.delete(k);
    for (const b of this.batches) for (const k of [...b.rows.keys()]) if (inParts(k)) b.rows.delete(k);
  }

  /** These partitions are no longer processed here: their devices' time-based rules stop. */
  released(parts: ReadonlySet<number>): void {
    if (parts.size === 0) return;
    this.targets?.parkRules((s, d) => parts.has(partitionOfDevice(s, d, this.partitions)), true);
  }

  /**
   * Before these partitions are processed here (and before the replay of their readings): their
   * devices' state from the shared store replaces whatever this member held for them.
   */
  async restore(db: Kysely<object>, parts: readonly number[]): Promise<number> {
    const set = new Set(parts);
    this.purge(set);
    const { rules, meters } = await new DeviceStateStore(db).load(parts);
    const t = this.targets;
    if (!t) return 0;
    // Devices held from an earlier ownership but absent from the store run again as they are.
    t.parkRules((s, d) => set.has(partitionOfDevice(s, d, this.partitions)), false);
    const m = t.restoreMeters(meters.map((r) => ({ key: `${r.site}/${r.device}`, ts: r.ts, index: r.idx })));
    const n = t.restoreRules(rules.map((r) => r.state));
    this.devicesRestored += m + n;
    return m + n;
  }

  private info(key: string): KeyInfo | null {
    let i = this.keys.get(key);
    if (i !== undefined) return i;
    i = null;
    const { meter: mp, rules: rp } = this.prefixes;
    const meter = key.startsWith(mp);
    const rest = meter ? key.slice(mp.length) : key.startsWith(rp) ? key.slice(rp.length) : undefined;
    const slash = rest === undefined ? -1 : rest.indexOf('/');
    // `rules:_read_rate` and `rules:_saved_at` are not a device's: they stay local.
    if (rest !== undefined && slash > 0) {
      const site = rest.slice(0, slash);
      const device = rest.slice(slash + 1);
      i = { site, device, partition: partitionOfDevice(site, device, this.partitions), meter };
    }
    this.keys.set(key, i);
    return i;
  }
}
