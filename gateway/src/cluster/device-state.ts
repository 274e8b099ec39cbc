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

/**
 * A capture: the changed devices' state as of `tag` (local epoch ms, a watermark sample time), for
 * the changes made after the sample `since`. A merged capture spans several samples: its `since` is
 * that of the earliest capture merged into it, its `tag` that of the latest.
 */
interface Batch {
  tag: number;
  since: number;
  rows: Map<string, string>;
}

/** Captures kept at most while the watermark does not move (InfluxDB down); newer ones are merged. */
const BATCHES_MAX = 120;
/** Rows kept at most, per device key known: about two serialised states per device (ADR 0151). */
const ROWS_PER_KEY = 2;

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
  /** Rows held in `batches`, and the device keys seen (the bound on held rows scales with them). */
  private held = 0;
  private deviceKeys = 0;
  /** The previous sample's time: where the next capture's changes start. */
  private lastSample?: number;
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
    const since = this.lastSample ?? tag;
    this.lastSample = tag;
    if (this.dirty.size === 0) return;
    const rows = new Map<string, string>();
    for (const [k, v] of this.dirty) if (this.info(k)) rows.set(k, String(v));
    this.dirty.clear();
    if (rows.size === 0) return;
    this.batches.push({ tag, since, rows });
    this.held += rows.size;
    this.bound();
  }

  /**
   * Keeps memory bounded while the watermark does not move (InfluxDB down or slow): the newest
   * capture is merged into the one before it (its rows win) while there are too many captures or
   * rows. The oldest captures stay as they are, so the watermark still passes them one by one and
   * they are written; merging the oldest instead would push the first capture's tag ahead of the
   * watermark for as long as captures keep coming, and nothing would be written.
   */
  private bound(): void {
    const b = this.batches;
    while (b.length > 2 && (b.length > BATCHES_MAX || this.held > ROWS_PER_KEY * this.deviceKeys)) {
      const last = b.pop()!;
      const into = b[b.length - 1]!;
      for (const [k, v] of last.rows) {
        if (into.rows.has(k)) this.held--;
        into.rows.set(k, v);
      }
      into.tag = last.tag;
    }
  }

  /** Rows held in captures not written yet (health, tests). */
  get heldRows(): number {
    return this.held;
  }

  /** Captures not written yet (health). */
  get pending(): number {
    return this.batches.length;
  }

  /**
   * The time the shared store's watermark may be recorded as, together with the captures up to
   * `mark`: `mark`, unless a capture not written yet (tagged after `mark`) holds changes made
   * before it, i.e. a merged capture spanning `mark`. The state written is then only as of that
   * capture's `since`, and so is the watermark that goes with it (ADR 0151).
   */
  limit(mark: number): number {
    for (const b of this.batches) if (b.tag > mark) return Math.min(mark, b.since);
    return mark;
  }

  /**
   * The state captured at or before `mark` (latest per device), of the partitions `writable`
   * selects, as rows for the shared store, and `limit`, the watermark they are the state as of
   * (see limit()). Call written(mark) once they are committed.
   */
  settled(
    mark: number,
    writable: (partition: number) => boolean,
  ): { rules: RuleRow[]; meters: MeterRow[]; limit: number } {
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
    return { rules, meters, limit: this.limit(mark) };
  }

  /**
   * The captures up to `mark` are in the shared store (or belonged to partitions no longer held);
   * `rows` were actually written.
   */
  written(mark: number, rows: number): void {
    let k = 0;
    while (k < this.batches.length && this.batches[k]!.tag <= mark) this.held -= this.batches[k++]!.rows.size;
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
    for (const b of this.batches)
      for (const k of [...b.rows.keys()])
        if (inParts(k)) {
          b.rows.delete(k);
          this.held--;
        }
  }

  /** These partitions are no longer processed here: their devices' time-based rules stop. */
  released(parts: ReadonlySet<number>): void {
    if (parts.size === 0) return;
    this.targets?.parkRules(this.inParts(parts), true);
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
    t.parkRules(this.inParts(set), false);
    const m = t.restoreMeters(meters.map((r) => ({ key: `${r.site}/${r.device}`, ts: r.ts, index: r.idx })));
    const n = t.restoreRules(rules.map((r) => r.state));
    this.devicesRestored += m + n;
    return m + n;
  }

  /** Whether a device (site, device) is in one of `parts`. */
  private inParts(parts: ReadonlySet<number>): (site: string, device: string) => boolean {
    return (site, device) => parts.has(partitionOfDevice(site, device, this.partitions));
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
      this.deviceKeys++;
    }
    this.keys.set(key, i);
    return i;
  }
}
