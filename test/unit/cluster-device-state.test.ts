import { describe, expect, it } from 'vitest';
import {
  DeviceStateTracker,
  type LocalStateStore,
  type StateValue,
} from '../../gateway/src/cluster/device-state.js';
import { planCommit } from '../../gateway/src/cluster/commit-plan.js';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { pino } from 'pino';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { RulesRuntime } from '../../gateway/src/rules/runtime.js';
import { parseRules, type RuleInput } from '../../gateway/src/rules/schema.js';
import type { Transition } from '../../gateway/src/rules/types.js';

const P = 8;
const PREFIXES = { meter: 'consumption:', rules: 'rules:' };

/** The outbox's state interface, in memory (pure logic under test is the tracker's). */
function localStore() {
  const puts: Array<[string, string]> = [];
  const store: LocalStateStore = {
    loadState: () => new Map(),
    putState: (k: string, v: StateValue) => void puts.push([k, String(v)]),
    addStateSource: () => () => {},
    requestCommit: () => {},
  };
  return { store, puts };
}

/** A meter's state as derive keeps it: one object changed in place, serialised when read. */
class Meter {
  constructor(
    public ts: number,
    public index: number,
  ) {}
  toString(): string {
    return `${this.ts} ${this.index}`;
  }
}

describe('DeviceStateTracker (ADR 0151)', () => {
  it('forwards every write to the local store and hands out a capture only once the watermark passed it', () => {
    const { store, puts } = localStore();
    const t = new DeviceStateTracker(store, P, PREFIXES);
    const m = new Meter(1000, 5.5);
    t.putState('consumption:s1/wm-1', m);
    t.putState('rules:s1/chl-1', '{"site":"s1"}');
    t.putState('rules:_read_rate', '{}');
    expect(puts.map((p) => p[0])).toEqual(['consumption:s1/wm-1', 'rules:s1/chl-1', 'rules:_read_rate']);

    t.capture(100);
    // Changed after the capture: belongs to the next one, not to the state as of 100.
    m.ts = 2000;
    m.index = 6.25;
    t.putState('consumption:s1/wm-1', m);
    t.capture(200);

    expect(t.settled(99, () => true)).toEqual({ rules: [], meters: [], limit: 99 });
    const at100 = t.settled(100, () => true);
    expect(at100.meters).toEqual([
      { site: 's1', device: 'wm-1', partition: partitionOfDevice('s1', 'wm-1', P), ts: 1000, idx: 5.5 },
    ]);
    // The read-rate alarms are the site's, not a device's: they stay local.
    expect(at100.rules.map((r) => r.device)).toEqual(['chl-1']);
    t.written(100, 2);
    expect(t.pending).toBe(1);
    expect(t.settled(250, () => true).meters[0]).toMatchObject({ ts: 2000, idx: 6.25 });
  });

  it('writes only the partitions it is told, and forgets what is pending for purged ones', () => {
    const { store } = localStore();
    const t = new DeviceStateTracker(store, P, PREFIXES);
    const devices = Array.from({ length: 40 }, (_, i) => `wm-${i}`);
    for (const d of devices) t.putState(`consumption:s1/${d}`, `10 ${d.length}`);
    t.capture(10);
    const p0 = partitionOfDevice('s1', 'wm-0', P);
    const only = t.settled(10, (p) => p === p0).meters;
    expect(only.length).toBeGreaterThan(0);
    expect(only.every((r) => r.partition === p0)).toBe(true);
    t.purge(new Set([p0]));
    const rest = t.settled(10, () => true).meters;
    expect(rest.some((r) => r.partition === p0)).toBe(false);
    expect(rest.length).toBe(devices.length - only.length);
  });

  it('bounds the captures kept while the watermark stands still, merging the newest', () => {
    const { store } = localStore();
    const t = new DeviceStateTracker(store, P, PREFIXES);
    for (let i = 1; i <= 300; i++) {
      t.putState('consumption:s1/wm-1', `${i} ${i}`);
      if (i % 2) t.putState('consumption:s1/wm-2', `${i} ${i}`);
      t.capture(i);
    }
    expect(t.pending).toBeLessThanOrEqual(120);
    expect(t.heldRows).toBeLessThanOrEqual(4);
    const rows = t.settled(300, () => true).meters;
    expect(rows.find((r) => r.device === 'wm-1')).toMatchObject({ ts: 300 });
    expect(rows.find((r) => r.device === 'wm-2')).toMatchObject({ ts: 299 });
  });

  /**
   * `seconds` one-second captures (tag i) of the meters `changed(i)` lists, each set to `i i`; a
   * meter's row thus says the second it last changed. The truth as of W: that second, at or before W.
   */
  const outage = (seconds: number, changed: (i: number) => string[]) => {
    const { store } = localStore();
    const t = new DeviceStateTracker(store, P, PREFIXES);
    const history = new Map<string, number[]>();
    for (let i = 1; i <= seconds; i++) {
      for (const d of changed(i)) {
        t.putState(`consumption:s1/${d}`, `${i} ${i}`);
        (history.get(d) ?? history.set(d, []).get(d)!).push(i);
      }
      t.capture(i);
    }
    const asOf = (w: number) => {
      const m = new Map<string, number>();
      for (const [d, tags] of history) {
        const last = tags.filter((x) => x <= w).pop();
        if (last !== undefined) m.set(d, last);
      }
      return m;
    };
    return { t, asOf };
  };
  const byDevice = (rows: Array<{ device: string; ts: number }>) =>
    new Map(rows.map((r) => [r.device, r.ts]));

  it('after merging, settled(mid) gives exactly the state as of the watermark it returns, never a later watermark', () => {
    // 300 s without InfluxDB, two meters changing every second (the review's case).
    const { t, asOf } = outage(300, () => ['wm-1', 'wm-2']);
    const s = t.settled(150, () => true);
    expect(s.limit).toBeLessThanOrEqual(150);
    expect(byDevice(s.meters)).toEqual(asOf(s.limit));
    // Each meter's row is from a capture at or before the limit, and none is missing.
    expect(s.meters.length).toBe(2);
  });

  it('with many devices the oldest captures still go one by one as the watermark passes them', () => {
    // 500 meters, one changing per second: the capture count, not the row count, is the bound.
    const { t, asOf } = outage(300, (i) => [`wm-${i % 500}`]);
    expect(t.pending).toBeLessThanOrEqual(120);
    const shared = new Map<string, number>();
    let durable = 0;
    for (const mark of [60, 119, 150, 299, 300]) {
      const s = t.settled(mark, () => true);
      for (const [d, ts] of byDevice(s.meters)) shared.set(d, ts);
      t.written(mark, s.meters.length);
      expect(s.limit).toBeGreaterThanOrEqual(durable);
      durable = s.limit;
      // The shared store holds exactly the state as of the watermark recorded with it.
      expect(shared).toEqual(asOf(durable));
    }
    expect(durable).toBe(300);
    expect(t.pending).toBe(0);
    expect(t.heldRows).toBe(0);
  });

  it('holds at most about two rows per device however long the watermark stands still', () => {
    // Every device changes every second: 120 whole captures would be 120 states per device.
    const devices = Array.from({ length: 200 }, (_, i) => `wm-${i}`);
    const { t, asOf } = outage(300, () => devices);
    expect(t.heldRows).toBeLessThanOrEqual(2 * devices.length);
    // Bounded, and still exact: the state written goes with the watermark written.
    for (const mark of [150, 300]) {
      const s = t.settled(mark, () => true);
      expect(byDevice(s.meters)).toEqual(asOf(s.limit));
    }
    expect(t.settled(300, () => true).limit).toBe(300);
  });

  it('a renewal records the watermark of the state it writes (durable never ahead of the state)', () => {
    const { t, asOf } = outage(300, () => ['wm-1', 'wm-2', 'wm-3']);
    const offset = 1_000_000;
    const acquired = new Float64Array(P).fill(0.5);
    const plan = planCommit(150, acquired, offset, t);
    const limit = t.limit(150);
    expect(plan.durable).toBe(limit + offset);
    expect(plan.durable).toBeLessThan(150 + offset);
    expect(byDevice(plan.meters)).toEqual(asOf(limit));
    expect(plan.settled).toEqual(Array.from({ length: P }, (_, p) => p));
    // A partition taken after that watermark records none (its replay is in later captures).
    acquired[1] = limit;
    expect(planCommit(150, acquired, offset, t).settled).not.toContain(1);
    // Without device state (no tracker) the watermark is the mark itself.
    expect(planCommit(150, acquired, offset).durable).toBe(150 + offset);
  });

  it('a partition no longer processed records at most the time its processing stopped (ADR 0167)', () => {
    const offset = 1_000_000;
    const acquired = new Float64Array(P).fill(10);
    const until = (p: number) => (p === 2 ? 90 : p === 3 ? 5 : Infinity);
    const plan = planCommit(150, acquired, offset, undefined, until);
    expect(plan.durable).toBe(150 + offset);
    // Stopped at 90 (after a fence): recorded as of 90, not of the later watermark.
    expect(plan.settled).toContain(2);
    expect(plan.earlier.get(2)).toBe(90 + offset);
    // Stopped before it was taken again: nothing recorded.
    expect(plan.settled).not.toContain(3);
    // Processed: the watermark itself.
    expect(plan.settled).toContain(0);
    expect(plan.earlier.has(0)).toBe(false);
  });
});

describe('rule state moving between engines (ADR 0151)', () => {
  const MIN = 60_000;
  const T0 = Date.UTC(2026, 0, 1);
  const rule: RuleInput = {
    id: 'c.low',
    kind: 'threshold',
    kinds: ['chlorination'],
    class: 'safety',
    metric: 'v',
    low: { value: 0.5, severity: 'warning', onDelayMs: 10 * MIN },
  };
  const make = (owns?: (s: string, d: string) => boolean) => {
    const out: Transition[] = [];
    const engine = new RuleEngine({
      rules: parseRules({ pack: [], custom: [rule] }),
      facts: { get: () => undefined },
      listener: (b) => out.push(...b),
      owns,
    });
    return { engine, out };
  };
  const low = (min: number) => ({
    site: 's1',
    kind: 'chlorination',
    device: 'c1',
    ts: T0 + min * MIN,
    fields: { v: 0.2 },
  });

  it('a taken-over device completes its on-delay at its own time on the new engine', () => {
    const a = make();
    a.engine.process(low(0));
    a.engine.process(low(4));
    const saved = a.engine.snapshotState().devices;

    // The new owner had the device parked (another member's), with state of its own.
    let mine = false;
    const b = make(() => mine);
    b.engine.process(low(-30));
    b.engine.tick(T0 + 9 * MIN);
    expect(b.out).toEqual([]);
    mine = true;
    b.engine.replaceDevices(saved, T0 + 6 * MIN);
    b.engine.tick(T0 + 9 * MIN);
    expect(b.out).toEqual([]);
    b.engine.tick(T0 + 10 * MIN);
    expect(b.out.map((t) => [t.type, (t.ts - T0) / MIN])).toEqual([['raise', 10]]);
    // A replayed reading older than the restored one changes nothing.
    b.engine.process(low(2));
    expect(b.engine.stats().outOfOrder).toBe(1);
  });

  it('a parked device runs no time-based rule; unparked, it does', () => {
    const a = make();
    a.engine.process(low(0));
    expect(a.engine.park((_s, d) => d === 'c1', true)).toBe(1);
    a.engine.tick(T0 + 20 * MIN);
    expect(a.out).toEqual([]);
    a.engine.park(() => true, false);
    a.engine.tick(T0 + 20 * MIN);
    expect(a.out.map((t) => t.type)).toEqual(['raise']);
  });

  it('a row from the shared store that is not a device state is counted, and the others restored', () => {
    const a = make();
    a.engine.process(low(0));
    const good = JSON.stringify(a.engine.snapshotState().devices[0]);
    const rt = new RulesRuntime({
      rules: parseRules({ pack: [], custom: [rule] }),
      facts: { get: () => undefined },
      store: { saveRuleStateRows: () => {}, loadRuleState: () => undefined },
      listener: () => {},
      tickMs: 1000,
      saveStateMs: 60_000,
      log: pino({ level: 'silent' }),
    });
    expect(rt.replaceDevices(['not json', '{"site":"s1","device":"x","rules":null}', good])).toBe(1);
    expect(rt.health().invalidStateRows).toBe(2);
    expect(rt.engine.snapshotState().devices.map((d) => d.device)).toEqual(['c1']);
  });
});
