import { describe, expect, it } from 'vitest';
import type { Reading } from '../../gateway/src/core/types.js';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { parseRules, type RuleInput } from '../../gateway/src/rules/schema.js';
import type { EngineSnapshot } from '../../gateway/src/rules/snapshot.js';
import type { DeviceFacts, Transition } from '../../gateway/src/rules/types.js';

/**
 * Rule state lives in one shared array of doubles, a block per device: blocks are moved when a
 * device's rules change and reused once released. What must hold is what the state objects gave:
 * saved states keep their JSON shape, and no device ever sees another's state.
 */

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const DAY = 86_400_000;

const high: RuleInput = {
  id: 't.high',
  kind: 'threshold',
  kinds: ['x'],
  class: 'key',
  metric: 'v',
  high: { value: 10, severity: 'warning', onDelayMs: 5 * MIN },
};
const rise: RuleInput = {
  id: 't.rise',
  kind: 'rate',
  kinds: ['x'],
  class: 'key',
  metric: 'v',
  risePerHour: 100,
  maxSamples: 4,
  severity: 'warning',
};
const stuck: RuleInput = {
  id: 'stuck',
  kind: 'stuck-register',
  kinds: ['m'],
  class: 'routine',
  windowMs: 2 * DAY,
  minPeers: 1,
  severity: 'warning',
};

function harness(custom: RuleInput[], facts: DeviceFacts[] = []) {
  const out: Transition[] = [];
  const byKey = new Map(facts.map((f) => [`${f.site}/${f.device}`, f]));
  const engine = new RuleEngine({
    rules: parseRules({ pack: [], custom }),
    facts: { get: (s, d) => byKey.get(`${s}/${d}`), list: () => byKey.values() },
    listener: (b) => out.push(...b),
  });
  const feed = (at: number, fields: Reading['fields'], device = 'd1', kind = 'x') =>
    engine.process({ site: 's1', kind, device, ts: T0 + at, fields });
  const fmt = () => out.map((t) => `${t.type} ${t.ruleId} @${(t.ts - T0) / MIN} ${t.device}`);
  return { engine, out, feed, fmt, byKey };
}

/** Three meters of one site under the stuck-register rule; m1 reported no consumption at T0. */
function meterSite() {
  const facts = ['m1', 'm2', 'm3'].map((device): DeviceFacts => ({
    site: 's1',
    device,
    kind: 'm',
    critical: false,
    reportIntervalSec: 3600,
  }));
  const h = harness([stuck], facts);
  for (const f of facts) h.engine.registerDevice(f, T0);
  h.feed(0, { consumption_m3: 0 }, 'm1', 'm');
  return { h, facts };
}
const STUCK_WITH_TWO_PEERS = 'no consumption for 2 d while 2 meters of the site consumed: register stuck';

describe('rule state in the shared state array', () => {
  it('saves each rule state in the JSON shape of its fields, NaN as null', () => {
    const h = harness([high, rise]);
    h.feed(0, { v: 12 });
    h.feed(20 * MIN, { v: 13 });
    const rules = (JSON.parse(JSON.stringify(h.engine.snapshotState())) as EngineSnapshot).devices[0]!.rules;
    // Raised (warning = 2) by its first level, held since the first reading.
    expect(rules['t.high']!.state).toEqual({
      sev: 2,
      lvl: 1,
      held: 1,
      clearSince: null,
      value: 13,
      since: [T0],
    });
    expect(rules['t.rise']!.state).toEqual({
      sev: 0,
      lvl: 0,
      held: 0,
      clearSince: null,
      value: 3,
      since: [null],
      ring: { ts: [T0, T0 + 20 * MIN, null, null], v: [12, 13, null, null], head: 2, len: 2 },
    });
  });

  it('writes booleans, condition values and trend rings as JSON', () => {
    const combo: RuleInput = {
      id: 'c',
      kind: 'combined',
      kinds: ['x'],
      class: 'key',
      severity: 'warning',
      all: [
        { metric: 'on', eq: false },
        { metric: 'v', trend: 'falling', minPerHour: 1 },
      ],
    };
    const h = harness([combo]);
    h.feed(0, { on: true, v: 12 });
    const none = (n: number) => Array.from({ length: n }, () => null);
    const d = (JSON.parse(JSON.stringify(h.engine.snapshotState())) as EngineSnapshot).devices[0]!;
    expect(d).toMatchObject({ site: 's1', device: 'd1', kind: 'x', lastTs: T0, since: T0 });
    expect(d.rules.c!.state).toEqual({
      sev: 0,
      holds: false,
      since: null,
      clearSince: null,
      vals: [1, null],
      rings: [{ ts: [T0, ...none(15)], v: [12, ...none(15)], head: 1, len: 1 }],
    });
  });

  it('restores a state saved with its fields in another order (an older snapshot)', () => {
    const a = harness([high]);
    a.feed(0, { v: 5 });
    const saved = JSON.parse(JSON.stringify(a.engine.snapshotState())) as EngineSnapshot;
    const d = saved.devices[0]!;
    // Held since minute 1, as the state object of an older version wrote it (keys in its order).
    d.rules['t.high']!.state = { sev: 0, lvl: 0, held: 1, since: [T0 + MIN], clearSince: null, value: 12 };
    const b = harness([high]);
    b.engine.restoreState(saved);
    b.engine.tick(T0 + 5.5 * MIN);
    expect(b.out).toEqual([]);
    b.engine.tick(T0 + 6 * MIN);
    expect(b.fmt()).toEqual(['raise t.high @6 d1']);
  });

  it('a block released by a device that changed kind starts fresh for the next device', () => {
    const h = harness([high]);
    h.feed(0, { v: 12 });
    h.engine.tick(T0 + 6 * MIN);
    expect(h.fmt()).toEqual(['raise t.high @5 d1']);
    // d1 now reports as another kind: its block is released, and d2 gets one of the same size.
    h.feed(7 * MIN, { v: 12 }, 'd1', 'y');
    h.feed(8 * MIN, { v: 12 }, 'd2');
    h.engine.tick(T0 + 14 * MIN);
    expect(h.fmt()).toEqual(['raise t.high @5 d1', 'raise t.high @13 d2']);
    expect(h.engine.stats()).toMatchObject({ devices: 2, bindings: 1 });
  });

  it('a device whose facts changed is counted once among its peers, at its new place', () => {
    const { h, facts } = meterSite();
    for (const at of [0, DAY]) {
      h.feed(at, { consumption_m3: 1 }, 'm2', 'm');
      h.feed(at, { consumption_m3: 1 }, 'm3', 'm');
    }
    // m2 becomes a critical asset: its rules move to another block, which starts afresh.
    h.byKey.set('s1/m2', { ...facts[1]!, critical: true });
    h.engine.refreshDevice('s1', 'm2', T0 + DAY + MIN);
    h.feed(1.5 * DAY, { consumption_m3: 1 }, 'm2', 'm');
    h.feed(2 * DAY, { consumption_m3: 0 }, 'm1', 'm');
    expect(h.out.map((t) => t.message)).toEqual([STUCK_WITH_TWO_PEERS]);
  });

  it('reloads that change the size of a state keep the array packed, and the states that stay', () => {
    const h = harness([high, rise]);
    for (let d = 0; d < 50; d++) h.feed(0, { v: 12 }, `d${d}`);
    for (let k = 5; k <= 14; k++)
      h.engine.reload(parseRules({ pack: [], custom: [high, { ...rise, maxSamples: k }] }), T0 + MIN);
    const fresh = harness([high, { ...rise, maxSamples: 14 }]);
    for (let d = 0; d < 50; d++) fresh.feed(0, { v: 1 }, `d${d}`);
    expect(h.engine.stats().stateDoubles).toBe(fresh.engine.stats().stateDoubles);
    // The threshold's on-delay, started before the reloads, still ends at minute 5.
    h.engine.tick(T0 + 5 * MIN);
    expect(h.fmt().filter((t) => t.endsWith(' d0'))).toEqual(['raise t.high @5 d0']);
  });

  it('peer groups follow the blocks a reload moves', () => {
    const { h } = meterSite();
    for (const m of ['m2', 'm3']) h.feed(DAY, { consumption_m3: 1 }, m, 'm');
    // Another rule for the kind: every block grows and moves; the stuck rule's states stay.
    h.engine.reload(parseRules({ pack: [], custom: [{ ...high, kinds: ['m'] }, stuck] }), T0 + DAY);
    h.feed(2 * DAY, { consumption_m3: 0 }, 'm1', 'm');
    expect(h.out.map((t) => t.message)).toEqual([STUCK_WITH_TWO_PEERS]);
  });
});
