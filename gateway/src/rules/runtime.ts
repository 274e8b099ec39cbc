import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth, DeviceRefs, Reading, ReadingListener } from '../core/types.js';
import { EventClock } from './clock.js';
import { READ_RATE_KEY, RuleEngine, type SavedSlot } from './engine.js';
import type { ReadRateEntry } from './read-rate.js';
import type { RulesConfig } from './schema.js';
import type { DeviceSnapshot, EngineSnapshot, RuleStateRow } from './snapshot.js';
import type { DeviceFacts, DeviceFactsLookup, TransitionListener } from './types.js';

/** Where rule state survives a restart (the alarm database). */
export interface RuleStateStore {
  /** Upserts the rows of the devices whose state changed (and the read-rate alarms when given). */
  saveRuleStateRows(rows: readonly RuleStateRow[], readRate: string | undefined): void;
  loadRuleState(): EngineSnapshot | undefined;
  ruleStateSavedAt?(): number | undefined;
  /** Severity rank of each active alarm by `site/device|rule`, to reconcile restored state with (ADR 0080). */
  activeRanks?(): ReadonlyMap<string, number>;
}

/**
 * Where rule state is committed with the readings that changed it (the outbox, ADR 0080): a state
 * source is asked for its changes as each group commit is taken.
 */
export interface DurableRuleState {
  loadState(prefix: string): Map<string, string>;
  putState(key: string, value: SavedSlot | string): void;
  addStateSource(collect: () => void): () => void;
  requestCommit(): void;
}

/** The rules' keys in the durable state store: `rules:site/device`, `rules:_read_rate`, `rules:_saved_at`. */
export const RULE_STATE_PREFIX = 'rules:';
const SAVED_AT_KEY = RULE_STATE_PREFIX + '_saved_at';

export interface RulesRuntimeOptions {
  rules: RulesConfig;
  facts: DeviceFactsLookup;
  store: RuleStateStore;
  /** Receives every batch of transitions (the alarm service). */
  listener: TransitionListener;
  tickMs: number;
  saveStateMs: number;
  log: Logger;
  /** Runs after each rule tick with the wall time (alarm shelves and incidents). */
  onTick?: (wallNow: number) => void;
  wall?: () => number;
  /** With it, state is committed with the readings (alarms.ruleState `with-readings`); without, saved every saveStateMs. */
  durable?: DurableRuleState;
  /** Cluster mode only: whether this member processes a device (RuleEngineOptions.owns, ADR 0151). */
  owns?: (site: string, device: string) => boolean;
}

/** How often a slice of the rule state is saved, and the fewest devices a slice takes. */
const SAVE_SLICE_MS = 1000;
const SAVE_SLICE_MIN_ROWS = 50;

/**
 * The rule engine as a running part of the gateway: fed by the ingest pipeline (it is a
 * ReadingListener), ticked by a timer for time-based rules, its state restored at start and saved
 * periodically and at stop, so a running on-delay survives a restart.
 */
export class RulesRuntime implements Component, ReadingListener {
  readonly name = 'rules';
  readonly engine: RuleEngine;
  readonly clock: EventClock;
  private rules: RulesConfig;
  private tickTimer?: NodeJS.Timeout;
  private saveTimer?: NodeJS.Timeout;
  private running = false;
  private ticks = 0;
  private lastSaveAt: number | undefined;
  private lastSaveRows = 0;
  private saveError: string | undefined;
  private readonly wall: () => number;
  private offSource?: () => void;
  private invalidRows = 0;
  private reconciled = { forgotten: 0, adopted: 0 };

  constructor(private readonly opts: RulesRuntimeOptions) {
    this.wall = opts.wall ?? Date.now;
    this.clock = new EventClock(this.wall);
    this.rules = opts.rules;
    this.engine = new RuleEngine({
      rules: opts.rules,
      facts: opts.facts,
      listener: opts.listener,
      log: opts.log,
      owns: opts.owns,
    });
  }

  get config(): RulesConfig {
    return this.rules;
  }

  /** Hot path: one comparison, then the engine (which allocates only when something changes). */
  onReading(r: Reading, refs?: DeviceRefs): void {
    this.clock.observe(r.ts);
    this.engine.process(r, refs);
  }

  async start(): Promise<void> {
    const snap = this.loadState();
    if (snap) {
      let maxTs = -Infinity;
      for (const d of snap.devices) if (d.lastTs !== null && d.lastTs > maxTs) maxTs = d.lastTs;
      this.clock.seed(maxTs, this.savedAt() ?? this.wall());
      try {
        this.engine.restoreState(snap);
      } catch (err) {
        this.opts.log.error({ err }, 'rule state could not be restored; starting without it');
      }
    }
    // Declared devices that never report must still go offline: start their clocks now.
    const now = this.clock.now();
    if (this.opts.facts.list) for (const f of this.opts.facts.list()) this.engine.registerDevice(f, now);
    this.reconcile();
    this.running = true;
    this.tickTimer = setInterval(() => this.tick(), this.opts.tickMs);
    this.tickTimer.unref();
    const durable = this.opts.durable;
    if (durable) {
      // Each commit carries the state of the devices changed since the last one (ADR 0080).
      this.engine.trackChanges();
      this.offSource = durable.addStateSource(() => this.collect(durable));
      durable.requestCommit();
    }
    // Saved in slices every second rather than all at once every saveStateMs: with 10,000 devices
    // reporting, one full save held the event loop for most of a second (ingest and alarms waited).
    // Each slice takes its share, so every changed device is written within saveStateMs.
    const sliceMs = Math.min(SAVE_SLICE_MS, this.opts.saveStateMs);
    this.saveTimer = setInterval(() => {
      const share = Math.ceil((this.engine.deviceCount() * sliceMs) / this.opts.saveStateMs);
      this.save(Math.max(SAVE_SLICE_MIN_ROWS, share));
    }, sliceMs);
    this.saveTimer.unref();
  }

  /** A device the registry discovered. */
  registerDevice(f: DeviceFacts): void {
    if (!this.running) return;
    this.engine.registerDevice(f, this.clock.now());
    this.commitSoon();
  }

  /** A retired device: its alarms cleared, its state dropped. */
  removeDevice(site: string, device: string): void {
    if (this.engine.removeDevice(site, device, this.clock.now())) this.commitSoon();
  }

  /** Time-based rules, then the onTick hook; also called by tests for determinism. */
  tick(): void {
    this.ticks++;
    try {
      this.engine.tick(this.clock.now());
      this.opts.onTick?.(this.wall());
    } catch (err) {
      this.opts.log.error({ err }, 'rule tick failed');
    }
    this.commitSoon();
  }

  /** State changed without a reading (a tick, a new device): the outbox commits it though it has no lines. */
  private commitSoon(): void {
    if (this.opts.durable && this.engine.hasChanged()) this.opts.durable.requestCommit();
  }

  /** Runs as the outbox takes a commit: the changed devices' state goes into it. */
  private collect(durable: DurableRuleState): void {
    const n = this.engine.takeChanged(RULE_STATE_PREFIX, this.putDurable);
    if (n === 0) return;
    const now = this.wall();
    // Seeds the event clock after a restart, as ruleStateSavedAt() does for the periodic save.
    durable.putState(SAVED_AT_KEY, String(now));
    this.lastSaveAt = now;
    this.lastSaveRows = n;
  }

  private readonly putDurable = (key: string, value: SavedSlot | string): void =>
    this.opts.durable!.putState(key, value);

  /**
   * Cluster mode (ADR 0151): devices whose partition this member has taken over get the state the
   * previous owner left in the shared store (`rows`: DeviceSnapshot JSON), before the replay of
   * their readings runs; then, as after a restart, each rule's raised severity is made to agree
   * with the alarms the alarm store holds active. Returns the devices restored; a row that does not
   * parse is counted and that device starts afresh.
   */
  replaceDevices(rows: readonly string[]): number {
    const devices: DeviceSnapshot[] = [];
    for (const v of rows) {
      try {
        const d = JSON.parse(v) as DeviceSnapshot;
        if (
          typeof d.site !== 'string' ||
          typeof d.device !== 'string' ||
          typeof d.kind !== 'string' ||
          typeof d.rules !== 'object' ||
          d.rules === null
        )
          throw new Error('not a device state');
        devices.push(d);
      } catch (err) {
        this.invalidRows++;
        this.opts.log.error({ err }, "a device's rule state from the shared store could not be read");
      }
    }
    const now = this.clock.now();
    this.engine.replaceDevices(devices, now);
    for (const d of devices) if (d.lastTs !== null) this.clock.observe(d.lastTs);
    const active = this.opts.store.activeRanks?.();
    if (active && devices.length > 0) {
      const r = this.engine.reconcile(active, new Set(devices.map((d) => `${d.site}/${d.device}`)));
      this.reconciled.forgotten += r.forgotten;
      this.reconciled.adopted += r.adopted;
    }
    this.commitSoon();
    return devices.length;
  }

  /** Cluster mode: stops (`on`) or resumes the time-based rules of the devices `which` selects. */
  park(which: (site: string, device: string) => boolean, on: boolean): number {
    return this.engine.park(which, on);
  }

  /** Makes restored rule state agree with the alarms the alarm store holds active (ADR 0080). */
  private reconcile(): void {
    const active = this.opts.store.activeRanks?.();
    if (!active) return;
    const r = this.engine.reconcile(active);
    this.reconciled = r;
    if (r.forgotten || r.adopted)
      this.opts.log.warn(
        r,
        'rule state and active alarms disagreed after the restart; rule state follows the alarms',
      );
  }

  /** Replaces the rules; every (device, rule) whose effective definition is unchanged keeps its state. */
  reload(rules: RulesConfig): void {
    this.engine.reload(rules, this.clock.now());
    this.rules = rules;
  }

  readRates(): ReadRateEntry[] {
    return this.engine.readRates(this.clock.now());
  }

  readRateSubjects(): ReturnType<RuleEngine['readRateSubjects']> {
    return this.engine.readRateSubjects();
  }

  /**
   * Writes the state of the devices that changed since the last save, not all of them: with
   * 10,000 devices a full save blocked the event loop for about a second every minute.
   */
  save(max = Infinity): void {
    const durable = this.opts.durable;
    if (durable) {
      // The volatile parts (latest values, sums, samples) of devices whose anchors did not move:
      // into the same store, with the next commit.
      const n = this.engine.takeDirtySlots(max, RULE_STATE_PREFIX, this.putDurable);
      if (n === 0) return;
      durable.putState(SAVED_AT_KEY, String(this.wall()));
      durable.requestCommit();
      this.lastSaveAt = this.wall();
      this.lastSaveRows = n;
      return;
    }
    const delta = this.engine.takeDirtyState(max);
    if (delta.rows.length === 0 && delta.readRate === undefined) return;
    try {
      this.opts.store.saveRuleStateRows(delta.rows, delta.readRate);
      this.lastSaveAt = this.wall();
      this.lastSaveRows = delta.rows.length;
      this.saveError = undefined;
    } catch (err) {
      // Shown in health; those devices stay due, so the next save writes them with their then-current state.
      this.engine.markDirty(delta);
      this.saveError = (err as Error).message;
      this.opts.log.error({ err }, 'saving rule state failed');
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.tickTimer);
    clearInterval(this.saveTimer);
    if (this.opts.durable) {
      // Everything left goes with the outbox's last commit, which follows (it stops after us).
      this.collect(this.opts.durable);
      this.save();
      this.offSource?.();
      this.offSource = undefined;
      return;
    }
    this.save();
  }

  health(): ComponentHealth {
    const s = this.engine.stats();
    return {
      state: !this.running ? 'stopped' : this.saveError ? 'degraded' : 'ok',
      ...(this.saveError ? { detail: `saving rule state failed: ${this.saveError}` } : {}),
      devices: s.devices,
      bindings: s.bindings,
      outOfOrder: s.outOfOrder,
      ticks: this.ticks,
      lastSaveAt: this.lastSaveAt === undefined ? null : new Date(this.lastSaveAt).toISOString(),
      lastSaveDevices: this.lastSaveRows,
      saved: this.opts.durable ? 'with-readings' : 'periodic',
      ...(this.invalidRows ? { invalidStateRows: this.invalidRows } : {}),
      reconciled: this.reconciled,
    };
  }

  private loadState(): EngineSnapshot | undefined {
    let snap: EngineSnapshot | undefined;
    try {
      snap = this.opts.store.loadRuleState();
    } catch (err) {
      // A damaged snapshot costs running delays, not the gateway: start fresh and say so.
      this.opts.log.error({ err }, 'rule state could not be loaded; starting without it');
    }
    const durable = this.opts.durable;
    return durable ? this.mergeDurable(snap, durable.loadState(RULE_STATE_PREFIX)) : snap;
  }

  /**
   * The state committed with the readings, over what alarms.db holds (saved there before, or with
   * `ruleState: periodic`): per device, whichever has seen the later reading.
   */
  private mergeDurable(
    snap: EngineSnapshot | undefined,
    rows: Map<string, string>,
  ): EngineSnapshot | undefined {
    if (rows.size === 0) return snap;
    const out: EngineSnapshot = snap ?? { version: 1, devices: [], readRate: {} };
    const byKey = new Map<string, number>();
    out.devices.forEach((d, i) => byKey.set(`${d.site}/${d.device}`, i));
    for (const [k, v] of rows) {
      const key = k.slice(RULE_STATE_PREFIX.length);
      if (k === SAVED_AT_KEY) continue;
      try {
        if (key === READ_RATE_KEY) {
          out.readRate = JSON.parse(v) as EngineSnapshot['readRate'];
          continue;
        }
        const d = JSON.parse(v) as DeviceSnapshot;
        if (typeof d.site !== 'string' || typeof d.device !== 'string' || typeof d.rules !== 'object')
          throw new Error('not a device state');
        const i = byKey.get(key);
        if (i === undefined) {
          byKey.set(key, out.devices.length);
          out.devices.push(d);
        } else if ((d.lastTs ?? -Infinity) >= (out.devices[i]!.lastTs ?? -Infinity)) out.devices[i] = d;
      } catch (err) {
        // One damaged row costs that device's running delays, not the others'.
        this.invalidRows++;
        this.opts.log.error({ err, key }, "a device's rule state could not be read; it starts fresh");
      }
    }
    return out;
  }

  /** Wall time of the newest saved state: committed with the readings, or in alarms.db. */
  private savedAt(): number | undefined {
    const fromStore = this.opts.store.ruleStateSavedAt?.();
    const v = this.opts.durable?.loadState(SAVED_AT_KEY).get(SAVED_AT_KEY);
    const fromOutbox = v === undefined ? undefined : Number(v);
    if (fromOutbox === undefined || !Number.isFinite(fromOutbox)) return fromStore;
    return fromStore === undefined ? fromOutbox : Math.max(fromStore, fromOutbox);
  }
}
