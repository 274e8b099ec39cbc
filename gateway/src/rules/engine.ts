import type { Logger } from '../core/log.js';
import type { DeviceRefs, Reading } from '../core/types.js';
import { BUILTIN_KINDS } from '../ingest/catalogue.js';
import { CompiledRules, type ResolvedRule } from './compile.js';
import { EVALUATORS, type AnyEvaluator } from './evaluators/index.js';
import { computeReadRates, type ReadRateEntry, type ReadRateInput } from './read-rate.js';
import type { ReadRateRule, RuleDef, RulesConfig } from './schema.js';
import {
  StateArena,
  anchorOffsets,
  initState,
  jsonNumber,
  loadState,
  stateJson,
  type Layout,
} from './state-arena.js';
import {
  type DeviceSnapshot,
  type EngineSnapshot,
  type RuleStateRow,
  type RuleStateDelta,
} from './snapshot.js';
import {
  SEV,
  STATE_CHANGED,
  severityOf,
  severityRank,
  type BindCtx,
  type DeviceFacts,
  type DeviceFactsLookup,
  type PeerGroup,
  type RuleChange,
  type Transition,
  type TransitionListener,
} from './types.js';

/** One rule as bound to the devices of a plan. */
interface Entry {
  def: RuleDef;
  ev: AnyEvaluator;
  params: unknown;
  hash: string;
  ctx: BindCtx;
  layout: Layout;
  /** Where its state starts in a device's block. */
  off: number;
  /** `"<rule id>":{"hash":<hash>,"state":` for the device's saved JSON (SavedAs). */
  jsonHead: string;
}

/**
 * The rules of every device with the same kind, site, facts and resolved rules: most devices of
 * a kind and site share one, so a device costs its slot and its block of state, nothing per rule.
 */
interface Plan {
  entries: Entry[];
  /** The entries whose evaluator has a time-based part. */
  tickers: Entry[];
  /** Doubles of state per device. */
  size: number;
  /** Offsets in a device's block of the anchor doubles (not volatile, not rings): ADR 0080. */
  anchors: Int32Array;
}

interface Slot {
  key: string;
  site: string;
  device: string;
  kind: string;
  critical: boolean;
  lastTs: number;
  /** When the engine first knew the device (registered or first reading). */
  since: number;
  plan: Plan;
  /** Where the device's block of rule state starts in the arena. */
  base: number;
  /** Some rule state (or lastTs) changed since the last takeDirtyState(): a plain boolean store on the hot path. */
  dirty: boolean;
  /** What the outbox holds for this device: its key, and its state serialised when a commit reads it (made once). */
  saved?: SavedSlot;
  /** In the list takeChanged() walks (changes tracked). */
  listed: boolean;
  /** The anchors as last handed over (undefined: never, or since the plan changed). */
  shadow?: Float64Array;
  /**
   * Cluster mode only: the device's partition is processed by another member (ADR 0151), so its
   * time-based rules do not run here. Always false on a single instance.
   */
  parked: boolean;
}

/** A device's entry in a state store: `toString()` is the device's state as JSON at that moment. */
export interface SavedSlot {
  readonly key: string;
  toString(): string;
}

const NO_PLAN: Plan = { entries: [], tickers: [], size: 0, anchors: new Int32Array(0) };

/** How a (rule definition, device facts) pair is saved: its hash, and the JSON that opens its entry. */
interface SavedAs {
  hash: string;
  /** `"<rule id>":{"hash":<hash>,"state":` */
  jsonHead: string;
}

export interface RuleEngineOptions {
  rules: RulesConfig;
  facts: DeviceFactsLookup;
  /** Receives every batch of transitions: once per process(), processBatch() or tick() that changed anything. */
  listener?: TransitionListener;
  log?: Logger;
  /**
   * Cluster mode only (ADR 0151): whether this member processes the device. A device it does not
   * is kept parked: no ticks, so no offline or delayed alarm for a device another member owns.
   */
  owns?: (site: string, device: string) => boolean;
}

export interface RuleEngineStats {
  devices: number;
  bindings: number;
  /** Doubles of rule state handed out in the state array (released blocks included). */
  stateDoubles: number;
  /** Readings older than the device's last evaluated one, skipped so a late reading cannot re-raise. */
  outOfOrder: number;
}

const DEFAULT_INTERVAL_SEC = 300;
const READ_RATE_DEVICE = '_site';
/** The key takeChanged() hands the read-rate alarms under: without a `/`, so no `site/device` key can be it. */
export const READ_RATE_KEY = '_read_rate';

/**
 * Evaluates readings against the compiled rules. Readings of one device must arrive in time order
 * (ingest keeps per-device order); each device has one block of rule state in the arena,
 * allocated when the device is first seen and changed in place afterwards.
 */
export class RuleEngine {
  private compiled: CompiledRules;
  private readonly facts: DeviceFactsLookup;
  private readonly log: Logger | undefined;
  private listener: TransitionListener | undefined;
  private readonly sites = new Map<string, Map<string, Slot>>();
  private readonly slots: Slot[] = [];
  private peers = new Map<string, PeerGroup>();
  private hashes = new Map<string, Map<string, SavedAs>>();
  private plans = new Map<string, Plan>();
  private arena = new StateArena();
  private out: Transition[] = [];
  private outOfOrder = 0;
  private readRateSev = new Map<string, number>();
  private readRateDirty = false;
  /** Where the next partial state save starts (takeDirtyState with a limit). */
  private saveCursor = 0;
  private nextReadRateAt = 0;
  /** The devices marked dirty since the last takeChanged(), when changes are tracked (state saved with each commit). */
  private changed: Slot[] = [];
  private trackChanged = false;
  private readonly owns: ((site: string, device: string) => boolean) | undefined;

  constructor(opts: RuleEngineOptions) {
    this.compiled = new CompiledRules(opts.rules);
    this.facts = opts.facts;
    this.log = opts.log;
    this.listener = opts.listener;
    this.owns = opts.owns;
  }

  setListener(listener: TransitionListener | undefined): void {
    this.listener = listener;
  }

  /**
   * Evaluates one reading; the listener hears about it only if something changed. With `refs`,
   * the device's slot is kept there and found without a lookup next time.
   */
  process(reading: Reading, refs?: DeviceRefs): void {
    this.evaluate(reading, refs);
    this.flush();
  }

  /** Evaluates readings in order and hands all resulting transitions to the listener at once. */
  processBatch(readings: readonly Reading[]): void {
    for (let i = 0; i < readings.length; i++) this.evaluate(readings[i]!);
    this.flush();
  }

  /** Time-based rules: stale devices, on/off-delays expiring, flow windows, read rate. */
  tick(now: number): void {
    const slots = this.slots;
    const st = this.arena.buf;
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if (slot.parked) continue;
      const tickers = slot.plan.tickers;
      for (let j = 0; j < tickers.length; j++) {
        const e = tickers[j]!;
        const ch = e.ev.tick!(st, slot.base + e.off, e.params, now, e.ctx);
        if (ch === null) continue;
        if (ch === STATE_CHANGED) this.touch(slot);
        else this.push(slot, e, ch);
      }
    }
    if (now >= this.nextReadRateAt) this.evaluateReadRates(now);
    this.flush();
  }

  /** Starts the offline clock of a registered device that has not reported yet. */
  registerDevice(facts: DeviceFacts, now: number): void {
    this.slotFor(facts.site, facts.device, facts.kind, now);
  }

  /** The registry changed a device's facts (critical, interval, rated flow): re-resolve its rules. */
  refreshDevice(site: string, device: string, now: number): void {
    const slot = this.sites.get(site)?.get(device);
    if (slot) this.bind(slot, now, true);
    this.flush();
  }

  /**
   * A device retired by an operator: whatever its rules raised is cleared ("device retired"), and
   * its state is dropped, so a device nobody reads any more never goes offline.
   */
  removeDevice(site: string, device: string, now: number): boolean {
    const bySite = this.sites.get(site);
    const slot = bySite?.get(device);
    if (!bySite || !slot) return false;
    const st = this.arena.buf;
    for (const e of slot.plan.entries) {
      const o = slot.base + e.off;
      if (e.ev.peers) e.ctx.peers?.members.delete(o);
      const sev = st[o + SEV]!;
      if (sev > 0)
        this.push(slot, e, {
          type: 'clear',
          severity: severityOf(sev),
          value: null,
          ts: now,
          message: 'device retired',
        });
    }
    this.flush();
    // Out of the change list too: its block is released and may be handed to another device.
    slot.dirty = false;
    if (slot.listed) this.changed = this.changed.filter((s) => s !== slot);
    slot.listed = false;
    this.arena.release(slot.base, slot.plan.size);
    bySite.delete(device);
    if (bySite.size === 0) this.sites.delete(site);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    return true;
  }

  /** Replaces the rules; every (device, rule) whose effective definition is unchanged keeps its state. */
  reload(rules: RulesConfig, now: number): void {
    this.compiled = new CompiledRules(rules);
    this.peers = new Map();
    this.hashes = new Map();
    this.plans = new Map();
    for (const slot of this.slots) this.bind(slot, now, true);
    const ids = new Set(this.compiled.readRateRules().map((r) => r.id));
    for (const key of [...this.readRateSev.keys()]) {
      const ruleId = key.slice(key.indexOf('|') + 1);
      if (![...ids].some((id) => ruleId.startsWith(id + '.'))) {
        this.readRateSev.delete(key);
        this.readRateDirty = true;
      }
    }
    this.nextReadRateAt = 0;
    this.compact();
    this.flush();
  }

  /** Every device's state as a detached copy (tests, diagnostics); saving uses takeDirtyState(). */
  snapshotState(): EngineSnapshot {
    // Parsed from the JSON a save writes: a detached copy, in exactly the saved form.
    const devices: DeviceSnapshot[] = [];
    for (const s of this.slots) devices.push(JSON.parse(this.deviceJson(s)) as DeviceSnapshot);
    return { version: 1, devices, readRate: Object.fromEntries(this.readRateSev) };
  }

  /**
   * The state of every device changed since the last call (at most `max` of them, taken round
   * robin), serialised once (the JSON string is the detached copy), and their dirty flags cleared. If writing it fails, hand it back with
   * markDirty() so the next save retries those devices.
   */
  takeDirtyState(max = Infinity): RuleStateDelta {
    const rows: RuleStateRow[] = [];
    const slots = this.slots;
    const n = slots.length;
    // Round robin from where the last partial save stopped, so every device gets its turn.
    let i = n ? this.saveCursor % n : 0;
    for (let seen = 0; seen < n && rows.length < max; seen++, i = i + 1 === n ? 0 : i + 1) {
      const s = slots[i]!;
      if (!s.dirty) continue;
      s.dirty = false;
      rows.push({ site: s.site, device: s.device, json: this.deviceJson(s) });
    }
    this.saveCursor = i;
    let readRate: string | undefined;
    if (this.readRateDirty) {
      this.readRateDirty = false;
      readRate = JSON.stringify(Object.fromEntries(this.readRateSev));
    }
    return { rows, readRate };
  }

  /** Marks the devices of a delta that could not be written as changed again. */
  markDirty(delta: RuleStateDelta): void {
    for (const r of delta.rows) {
      const slot = this.sites.get(r.site)?.get(r.device);
      if (slot) this.touch(slot);
    }
    if (delta.readRate !== undefined) this.readRateDirty = true;
  }

  /**
   * From now on, keeps the devices whose state changes in a list, so that takeChanged() costs the
   * changed devices and not a walk over every device (it runs with every group commit).
   */
  trackChanges(): void {
    if (this.trackChanged) return;
    this.trackChanged = true;
    for (const s of this.slots) {
      if (!s.dirty || s.listed) continue;
      s.listed = true;
      this.changed.push(s);
    }
  }

  /**
   * Hands to `put` (key `prefix` + `site/device`) every device whose anchors (the state fields that
   * are not volatile: a raised severity, when a condition began to hold, a day's verdict) changed
   * since they were last handed over, and the read-rate alarms (key `prefix` + `_read_rate`) when
   * they changed; called with every group commit (ADR 0080). A device whose change touched only
   * volatile fields (latest values, sums, samples) stays dirty for takeDirtySlots(), the periodic
   * save. A device's value is one object per device, made once, that serialises the device's state
   * when it is read: the caller reads it at once (the outbox, as it takes its commit), so nothing is
   * built per reading. `prefix` must be the same on every call.
   */
  takeChanged(prefix: string, put: (key: string, value: SavedSlot | string) => void): number {
    const list = this.changed;
    const st = this.arena.buf;
    let n = 0;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      s.listed = false;
      if (!s.dirty || !this.anchorsMoved(s, st)) continue;
      this.handOver(s, prefix, put);
      n++;
    }
    list.length = 0;
    if (this.readRateDirty) {
      this.readRateDirty = false;
      put(prefix + READ_RATE_KEY, JSON.stringify(Object.fromEntries(this.readRateSev)));
      n++;
    }
    return n;
  }

  /**
   * The periodic save when changes are tracked: like takeDirtyState(), at most `max` dirty devices
   * round robin, but handed to `put` as takeChanged() does (the same keys, the same store).
   */
  takeDirtySlots(max: number, prefix: string, put: (key: string, value: SavedSlot | string) => void): number {
    const slots = this.slots;
    const n = slots.length;
    let i = n ? this.saveCursor % n : 0;
    let taken = 0;
    for (let seen = 0; seen < n && taken < max; seen++, i = i + 1 === n ? 0 : i + 1) {
      const s = slots[i]!;
      if (!s.dirty) continue;
      this.handOver(s, prefix, put);
      taken++;
    }
    this.saveCursor = i;
    return taken;
  }

  /** Whether takeChanged() has anything to look at. */
  hasChanged(): boolean {
    return this.changed.length > 0 || this.readRateDirty;
  }

  /** Whether a device's anchors differ from what was last handed over (NaN equals NaN). */
  private anchorsMoved(s: Slot, st: Float64Array): boolean {
    const a = s.plan.anchors;
    const sh = s.shadow;
    if (sh === undefined || sh.length !== a.length) return true;
    const base = s.base;
    for (let k = 0; k < a.length; k++) {
      const v = st[base + a[k]!]!;
      const w = sh[k]!;
      if (v !== w && (v === v || w === w)) return true;
    }
    return false;
  }

  /** Records a device's anchors as they are now: what the store holds for it. */
  private keepShadow(s: Slot): void {
    const a = s.plan.anchors;
    if (s.shadow === undefined || s.shadow.length !== a.length) s.shadow = new Float64Array(a.length);
    const st = this.arena.buf;
    for (let k = 0; k < a.length; k++) s.shadow[k] = st[s.base + a[k]!]!;
  }

  private handOver(s: Slot, prefix: string, put: (key: string, value: SavedSlot | string) => void): void {
    s.dirty = false;
    this.keepShadow(s);
    const saved = (s.saved ??= { key: prefix + s.key, toString: () => this.deviceJson(s) });
    put(saved.key, saved);
  }

  /**
   * Makes every rule's raised severity (`sev`) agree with the alarms the alarm store holds active,
   * after a restart. The two live in different files and are committed apart, so a crash can leave
   * one a few milliseconds ahead of the other:
   * - the rule thinks it raised, no alarm is active (the alarm's commit was lost): the rule forgets
   *   it raised, so its next tick or reading raises again, with the delayed rules' own time;
   * - an alarm is active, the rule thinks it did not raise (rule state older than the alarm): the
   *   rule takes the alarm's severity, so it neither raises it a second time nor forgets to clear it.
   * `active` maps `site/device|rule` to the severity rank of the active alarm.
   */
  reconcile(
    active: ReadonlyMap<string, number>,
    /** Only these devices (`site/device`), and not the read-rate alarms: a takeover (ADR 0151). */
    only?: ReadonlySet<string>,
  ): { forgotten: number; adopted: number } {
    let forgotten = 0;
    let adopted = 0;
    const st = this.arena.buf;
    for (const slot of this.slots) {
      if (only ? !only.has(slot.key) : slot.parked) continue;
      for (const e of slot.plan.entries) {
        const o = slot.base + e.off + SEV;
        const want = active.get(`${slot.key}|${e.def.id}`) ?? 0;
        const sev = st[o]!;
        if (sev === want) continue;
        if (want === 0) {
          st[o] = 0;
          forgotten++;
        } else {
          if (e.ev.adopt) e.ev.adopt(st, slot.base + e.off, e.params, want);
          else st[o] = want;
          adopted++;
        }
        this.touch(slot);
      }
    }
    if (only) return { forgotten, adopted };
    // Read-rate alarms: kept per `site|rule` in the engine, raised on the site's pseudo-device.
    for (const [key, rank] of active) {
      const bar = key.indexOf('|');
      const dev = key.slice(0, bar);
      if (!dev.endsWith(`/${READ_RATE_DEVICE}`)) continue;
      const rkey = `${dev.slice(0, -READ_RATE_DEVICE.length - 1)}|${key.slice(bar + 1)}`;
      if (this.readRateSev.get(rkey) === rank) continue;
      this.readRateSev.set(rkey, rank);
      this.readRateDirty = true;
      adopted++;
    }
    for (const rkey of [...this.readRateSev.keys()]) {
      const bar = rkey.indexOf('|');
      const akey = `${rkey.slice(0, bar)}/${READ_RATE_DEVICE}|${rkey.slice(bar + 1)}`;
      if (active.has(akey)) continue;
      this.readRateSev.delete(rkey);
      this.readRateDirty = true;
      forgotten++;
    }
    return { forgotten, adopted };
  }

  /** How many devices have unsaved state (health, tests). */
  dirtyCount(): number {
    let n = 0;
    for (const s of this.slots) if (s.dirty) n++;
    return n;
  }

  /** Restores a snapshot into this engine (normally fresh, before the first reading). */
  restoreState(snap: EngineSnapshot): void {
    if (snap.version !== 1)
      throw new Error(`unsupported rule-state snapshot version ${String(snap.version)}`);
    let restored = 0;
    for (const d of snap.devices) {
      const lastTs = d.lastTs ?? NaN;
      const slot = this.slotFor(d.site, d.device, d.kind, Number.isNaN(lastTs) ? 0 : lastTs);
      if (!(slot.lastTs >= lastTs)) slot.lastTs = lastTs;
      if (d.since !== undefined && d.since < slot.since) slot.since = d.since;
      let all = true;
      const st = this.arena.buf;
      const entries = slot.plan.entries;
      for (const e of entries) {
        const saved = d.rules[e.def.id];
        if (!saved || saved.hash !== e.hash) {
          all = false;
          continue;
        }
        const o = slot.base + e.off;
        loadState(st, o, e.layout, saved.state);
        e.ev.attach?.(st, o, e.params, e.ctx);
        restored++;
      }
      // What was just read back needs no saving; a rule added or changed since does.
      if (!all || Object.keys(d.rules).length !== entries.length) this.touch(slot);
      else slot.dirty = false;
      // What was read back is what the store holds: only a change from it needs a commit.
      this.keepShadow(slot);
    }
    for (const [k, v] of Object.entries(snap.readRate ?? {})) this.readRateSev.set(k, v);
    this.log?.info({ devices: snap.devices.length, states: restored }, 'rule state restored');
  }

  /**
   * Cluster mode (ADR 0151): the state of devices whose partition this member has just taken over,
   * as the previous owner left it in the shared store. It replaces whatever this engine held for
   * them (parked state from an earlier ownership), last reading time included; a rule with no saved
   * state, or saved under another definition, starts afresh. The devices are unparked.
   */
  replaceDevices(devices: readonly DeviceSnapshot[], now: number): void {
    const st = () => this.arena.buf;
    for (const d of devices) {
      const lastTs = d.lastTs ?? NaN;
      const slot = this.slotFor(d.site, d.device, d.kind, Number.isNaN(lastTs) ? now : lastTs);
      slot.parked = false;
      slot.lastTs = lastTs;
      if (d.since !== undefined) slot.since = d.since;
      for (const e of slot.plan.entries) {
        const saved = d.rules[e.def.id];
        const o = slot.base + e.off;
        initState(st(), o, e.layout);
        if (saved && saved.hash === e.hash) loadState(st(), o, e.layout, saved.state);
        else e.ev.init?.(st(), o, e.params, e.ctx, now);
        e.ev.attach?.(st(), o, e.params, e.ctx);
      }
      slot.dirty = false;
      this.keepShadow(slot);
    }
  }

  /**
   * Cluster mode (ADR 0151): parks (`on` true) or unparks the devices `which` selects, as their
   * partitions are released or taken. A parked device keeps its state but runs no time-based rule;
   * nothing is raised or cleared by parking.
   */
  park(which: (site: string, device: string) => boolean, on: boolean): number {
    let n = 0;
    for (const slot of this.slots) {
      if (slot.parked === on || !which(slot.site, slot.device)) continue;
      slot.parked = on;
      n++;
    }
    return n;
  }

  /** Read rate per site and meter class, computed now from last-seen times. */
  readRates(now: number): ReadRateEntry[] {
    return this.compiled
      .readRateRules()
      .flatMap((r) => computeReadRates(this.meters(r as ReadRateRule), now, r as ReadRateRule));
  }

  /** The meters each read-rate rule judges, with site, device, kind and class: for reports of ended periods. */
  readRateSubjects(): { rule: ReadRateRule; meters: ReadRateInput[] }[] {
    return (this.compiled.readRateRules() as ReadRateRule[]).map((rule) => ({
      rule,
      meters: [...this.meters(rule)],
    }));
  }

  deviceCount(): number {
    return this.slots.length;
  }

  stats(): RuleEngineStats {
    let bindings = 0;
    for (const s of this.slots) bindings += s.plan.entries.length;
    return {
      devices: this.slots.length,
      bindings,
      stateDoubles: this.arena.used(),
      outOfOrder: this.outOfOrder,
    };
  }

  private evaluate(reading: Reading, refs?: DeviceRefs): void {
    // A slot is never replaced (a device that changes kind is rebound in place), so a kept one holds.
    let slot = refs?.rules as Slot | undefined;
    if (slot === undefined || slot.kind !== reading.kind) {
      slot = this.slotFor(reading.site, reading.device, reading.kind, reading.ts);
      if (refs) refs.rules = slot;
    }
    const ts = reading.ts;
    if (ts < slot.lastTs) {
      this.outOfOrder++;
      return;
    }
    slot.lastTs = ts;
    if (!slot.listed || !slot.dirty) this.touch(slot);
    const notGood = reading.quality !== undefined && reading.quality !== 'good';
    // Rules other than the stale one see only the good values: a value its source does not vouch
    // for must neither raise nor clear a threshold, but the good pH beside a failed chlorine
    // sensor still counts. Only a reading with values that are not good pays for the copy.
    const good = notGood ? goodPart(reading) : reading;
    const entries = slot.plan.entries;
    const st = this.arena.buf;
    const base = slot.base;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const seen = e.ev.seesNotGood === true ? reading : good;
      if (seen === null) continue;
      const ch = e.ev.evaluate(st, base + e.off, seen, e.params, ts, e.ctx);
      if (ch) this.push(slot, e, ch);
    }
  }

  private slotFor(site: string, device: string, kind: string, now: number): Slot {
    let devices = this.sites.get(site);
    if (!devices) this.sites.set(site, (devices = new Map()));
    let slot = devices.get(device);
    if (slot && slot.kind === kind) return slot;
    if (slot) {
      // A device id reused for another kind: its old rules no longer mean anything.
      slot.kind = kind;
      this.bind(slot, now, false);
      return slot;
    }
    slot = {
      key: `${site}/${device}`,
      site,
      device,
      kind,
      critical: false,
      lastTs: NaN,
      since: now,
      plan: NO_PLAN,
      base: 0,
      dirty: false,
      listed: false,
      parked: this.owns !== undefined && !this.owns(site, device),
    };
    devices.set(device, slot);
    this.slots.push(slot);
    this.touch(slot);
    this.bind(slot, now, false);
    // A new device's anchors are their initial values: nothing to commit until a reading moves them.
    this.keepShadow(slot);
    return slot;
  }

  /**
   * (Re)binds a slot's rules to a new block of state. With `keep`, the states of rules whose
   * effective definition is unchanged move over, and raised alarms of rules no longer bound clear.
   */
  private bind(slot: Slot, now: number, keep: boolean): void {
    const f = this.facts.get(slot.site, slot.device);
    const intervalSec =
      f?.reportIntervalSec ?? BUILTIN_KINDS[slot.kind]?.reportIntervalSec ?? DEFAULT_INTERVAL_SEC;
    slot.critical = f?.critical ?? false;
    const plan = this.planFor(slot, intervalSec, f?.ratedMaxFlow);
    const old = slot.plan;
    const oldBase = slot.base;
    if (plan === old) return;
    const base = this.arena.alloc(plan.size);
    const st = this.arena.buf;
    const carried = new Set<Entry>();
    for (const e of plan.entries) {
      const o = base + e.off;
      const prev = keep ? old.entries.find((p) => p.def.id === e.def.id) : undefined;
      if (prev && prev.hash === e.hash && prev.layout.size === e.layout.size) {
        st.copyWithin(o, oldBase + prev.off, oldBase + prev.off + prev.layout.size);
        e.ev.attach?.(st, o, e.params, e.ctx);
        carried.add(prev);
      } else {
        initState(st, o, e.layout);
        e.ev.init?.(st, o, e.params, e.ctx, now);
        this.touch(slot);
      }
      if (e.ev.peers) e.ctx.peers?.members.add(o);
    }
    // Whatever was raised under a definition that no longer applies is cleared, not left dangling.
    for (const e of old.entries) {
      const o = oldBase + e.off;
      if (e.ev.peers) e.ctx.peers?.members.delete(o);
      if (carried.has(e)) continue;
      this.touch(slot);
      const sev = st[o + SEV]!;
      if (keep && sev > 0) {
        this.push(slot, e, {
          type: 'clear',
          severity: severityOf(sev),
          value: null,
          ts: now,
          message: 'rule changed or removed',
        });
      }
    }
    this.arena.release(oldBase, old.size);
    slot.plan = plan;
    slot.base = base;
    slot.shadow = undefined;
  }

  /**
   * Moves every device's block into a fresh arena, packed. A reload that changes the size of a
   * rule's state gives every device a new block; without this the old ones, of a size nothing
   * asks for any more, would stay unused, and repeated reloads would grow the arena without end.
   */
  private compact(): void {
    const old = this.arena.buf;
    let total = 0;
    for (const slot of this.slots) total += slot.plan.size;
    const next = new StateArena(Math.max(total, 1024));
    for (const g of this.peers.values()) g.members.clear();
    for (const slot of this.slots) {
      const size = slot.plan.size;
      const base = next.alloc(size);
      next.buf.set(old.subarray(slot.base, slot.base + size), base);
      slot.base = base;
      for (const e of slot.plan.entries) if (e.ev.peers) e.ctx.peers?.members.add(base + e.off);
    }
    this.arena = next;
  }

  /** The shared plan for a device's kind, site, facts and resolved rules; built on first need. */
  private planFor(slot: Slot, intervalSec: number, ratedMaxFlow: number | undefined): Plan {
    const factsHash = `|${slot.critical ? 1 : 0}|${intervalSec}|${ratedMaxFlow ?? ''}`;
    // The site is part of the key because peer rules compare the devices of one site. A device no
    // override names resolves like every other of its kind, site and facts: no need to resolve.
    const common = !this.compiled.namesDevice(slot.device);
    const shortKey = `${slot.kind}\n${slot.site}\n${factsHash}`;
    if (common) {
      const hit = this.plans.get(shortKey);
      if (hit) return hit;
    }
    const facts = { site: slot.site, device: slot.device, critical: slot.critical, kind: slot.kind };
    const resolved: ResolvedRule[] = [];
    let ids = '';
    for (const rule of this.compiled.forKind(slot.kind)) {
      const r = this.compiled.resolve(rule, facts);
      if (!r) continue;
      resolved.push(r);
      ids += `,${r.id}`;
    }
    const key = `${shortKey}\n${ids}`;
    let plan = this.plans.get(key);
    if (plan) {
      if (common) this.plans.set(shortKey, plan);
      return plan;
    }
    const ctx: BindCtx = { reportIntervalMs: intervalSec * 1000, ratedMaxFlow, peers: undefined };
    const entries: Entry[] = [];
    let size = 0;
    for (const r of resolved) {
      const ev = EVALUATORS[r.def.kind as keyof typeof EVALUATORS];
      const ectx = ev.peers ? { ...ctx, peers: this.peerGroup(slot.site, r.def.id) } : ctx;
      const params = this.params(ev, r, ectx);
      if (params === null) continue;
      const layout = ev.layout(params);
      const { hash, jsonHead } = this.savedAs(r, factsHash);
      entries.push({
        def: r.def,
        ev,
        params,
        hash,
        ctx: ectx,
        layout,
        off: size,
        jsonHead,
      });
      size += layout.size;
    }
    const anchors: number[] = [];
    for (const e of entries) for (const a of anchorOffsets(e.layout)) anchors.push(e.off + a);
    plan = {
      entries,
      tickers: entries.filter((e) => e.ev.tick !== undefined),
      size,
      anchors: Int32Array.from(anchors),
    };
    this.plans.set(key, plan);
    if (common) this.plans.set(shortKey, plan);
    return plan;
  }

  /**
   * One record per distinct (rule definition, device facts) pair: the plans of every site share
   * both, and strings of their own would cost some hundred bytes per plan and rule.
   */
  private savedAs(r: ResolvedRule, factsHash: string): SavedAs {
    let byFacts = this.hashes.get(r.hash);
    if (!byFacts) this.hashes.set(r.hash, (byFacts = new Map()));
    let saved = byFacts.get(factsHash);
    if (saved === undefined) {
      const hash = r.hash + factsHash;
      const jsonHead = `${JSON.stringify(r.def.id)}:{"hash":${JSON.stringify(hash)},"state":`;
      byFacts.set(factsHash, (saved = { hash, jsonHead }));
    }
    return saved;
  }

  private params(ev: AnyEvaluator, resolved: ResolvedRule, ctx: BindCtx): unknown {
    if (ev.perDevice) return ev.compile(resolved.def, ctx);
    if (resolved.shared === undefined) resolved.shared = ev.compile(resolved.def, ctx);
    return resolved.shared;
  }

  private peerGroup(site: string, ruleId: string): PeerGroup {
    const key = `${site}|${ruleId}`;
    let g = this.peers.get(key);
    if (!g) this.peers.set(key, (g = { members: new Set() }));
    return g;
  }

  /** Marks a device's state as changed (listed for takeChanged() once per change, not per reading). */
  private touch(slot: Slot): void {
    slot.dirty = true;
    if (slot.listed || !this.trackChanged) return;
    slot.listed = true;
    this.changed.push(slot);
  }

  private push(slot: Slot, e: Entry, ch: RuleChange): void {
    this.touch(slot);
    this.out.push({
      ...ch,
      deviceKey: slot.key,
      site: slot.site,
      device: slot.device,
      kind: slot.kind,
      ruleId: e.def.id,
      ruleClass: e.def.class,
      critical: slot.critical,
    });
  }

  private flush(): void {
    if (this.out.length === 0) return;
    const batch = this.out;
    this.out = [];
    if (!this.listener) return;
    try {
      this.listener(batch);
    } catch (err) {
      // A failing consumer must not stop rule evaluation; the error is its to fix.
      this.log?.error({ err }, 'transition listener failed');
    }
  }

  private *meters(rule: ReadRateRule): Iterable<ReadRateInput> {
    const seen = new Set<Slot>();
    const kinds = rule.kinds;
    const applies = (k: string) => kinds.includes(k) || kinds.includes('*');
    if (this.facts.list) {
      for (const f of this.facts.list()) {
        if (!applies(f.kind)) continue;
        const slot = this.sites.get(f.site)?.get(f.device);
        if (slot) seen.add(slot);
        const last = slot?.lastTs;
        yield {
          site: f.site,
          device: f.device,
          kind: f.kind,
          meterClass: f.meterClass ?? rule.defaultClass,
          lastSeen: last === undefined || Number.isNaN(last) ? undefined : last,
          knownSince: slot?.since,
        };
      }
    }
    for (const slot of this.slots) {
      if (seen.has(slot) || !applies(slot.kind)) continue;
      yield {
        site: slot.site,
        device: slot.device,
        kind: slot.kind,
        meterClass: this.facts.get(slot.site, slot.device)?.meterClass ?? rule.defaultClass,
        lastSeen: Number.isNaN(slot.lastTs) ? undefined : slot.lastTs,
      };
    }
  }

  /** One device's state as a DeviceSnapshot in JSON, written straight from the state array. */
  private deviceJson(s: Slot): string {
    const st = this.arena.buf;
    let rules = '';
    for (const e of s.plan.entries)
      rules += (rules ? ',' : '') + e.jsonHead + stateJson(st, s.base + e.off, e.layout) + '}';
    return (
      `{"site":${JSON.stringify(s.site)},"device":${JSON.stringify(s.device)},"kind":${JSON.stringify(s.kind)},` +
      `"lastTs":${jsonNumber(s.lastTs)},"since":${jsonNumber(s.since)},"rules":{${rules}}}`
    );
  }

  private evaluateReadRates(now: number): void {
    const rules = this.compiled.readRateRules() as ReadRateRule[];
    let every = Infinity;
    for (const rule of rules) {
      every = Math.min(every, rule.evaluateEveryMs);
      const sev = severityRank(rule.severity);
      for (const e of computeReadRates(this.meters(rule), now, rule)) {
        const ruleId = `${rule.id}.${e.meterClass}`;
        const key = `${e.site}|${ruleId}`;
        const cur = this.readRateSev.get(key) ?? 0;
        const pct = `${(e.rate * 100).toFixed(1)} % of ${e.expected} ${e.meterClass} meters read in ${e.windowDays} d`;
        if (!e.ok && cur === 0) {
          this.readRateSev.set(key, sev);
          this.readRateDirty = true;
          this.pushSite(e.site, rule, ruleId, {
            type: 'raise',
            severity: rule.severity,
            value: e.rate,
            ts: now,
            message: `read rate ${pct}, target ${e.target * 100} %`,
          });
        } else if (e.ok && cur !== 0) {
          this.readRateSev.delete(key);
          this.readRateDirty = true;
          this.pushSite(e.site, rule, ruleId, {
            type: 'clear',
            severity: severityOf(cur),
            value: e.rate,
            ts: now,
            message: `read rate ${pct}`,
          });
        }
      }
    }
    this.nextReadRateAt = Number.isFinite(every) ? now + every : Infinity;
  }

  private pushSite(site: string, rule: RuleDef, ruleId: string, ch: RuleChange): void {
    this.out.push({
      ...ch,
      deviceKey: `${site}/${READ_RATE_DEVICE}`,
      site,
      device: READ_RATE_DEVICE,
      kind: 'site',
      ruleId,
      ruleClass: rule.class,
      critical: false,
    });
  }
}

/** The reading with only its good values, or null when it has none. */
function goodPart(r: Reading): Reading | null {
  const per = r.qualities;
  if (per === undefined) return null;
  const fields: Reading['fields'] = {};
  let any = false;
  for (const m in r.fields) {
    if (per[m] === undefined || per[m] === 'good') {
      fields[m] = r.fields[m]!;
      any = true;
    }
  }
  return any ? { site: r.site, kind: r.kind, device: r.device, ts: r.ts, fields } : null;
}
