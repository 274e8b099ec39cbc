import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth, DeviceRefs, Reading, ReadingListener } from '../core/types.js';
import { EventClock } from './clock.js';
import { RuleEngine } from './engine.js';
import type { ReadRateEntry } from './read-rate.js';
import type { RulesConfig } from './schema.js';
import type { EngineSnapshot, RuleStateRow } from './snapshot.js';
import type { DeviceFacts, DeviceFactsLookup, TransitionListener } from './types.js';

/** Where rule state survives a restart (the alarm database). */
export interface RuleStateStore {
  /** Upserts the rows of the devices whose state changed (and the read-rate alarms when given). */
  saveRuleStateRows(rows: readonly RuleStateRow[], readRate: string | undefined): void;
  loadRuleState(): EngineSnapshot | undefined;
  ruleStateSavedAt?(): number | undefined;
}

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

  constructor(private readonly opts: RulesRuntimeOptions) {
    this.wall = opts.wall ?? Date.now;
    this.clock = new EventClock(this.wall);
    this.rules = opts.rules;
    this.engine = new RuleEngine({
      rules: opts.rules,
      facts: opts.facts,
      listener: opts.listener,
      log: opts.log,
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
      this.clock.seed(maxTs, this.opts.store.ruleStateSavedAt?.() ?? this.wall());
      try {
        this.engine.restoreState(snap);
      } catch (err) {
        this.opts.log.error({ err }, 'rule state could not be restored; starting without it');
      }
    }
    // Declared devices that never report must still go offline: start their clocks now.
    const now = this.clock.now();
    if (this.opts.facts.list) for (const f of this.opts.facts.list()) this.engine.registerDevice(f, now);
    this.running = true;
    this.tickTimer = setInterval(() => this.tick(), this.opts.tickMs);
    this.tickTimer.unref();
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
    if (this.running) this.engine.registerDevice(f, this.clock.now());
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
    };
  }

  private loadState(): EngineSnapshot | undefined {
    try {
      return this.opts.store.loadRuleState();
    } catch (err) {
      // A damaged snapshot costs running delays, not the gateway: start fresh and say so.
      this.opts.log.error({ err }, 'rule state could not be loaded; starting without it');
      return undefined;
    }
  }
}
