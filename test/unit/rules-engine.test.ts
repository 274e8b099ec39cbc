import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../gateway/src/core/types.js';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { parseRules, type RuleInput, type RulesConfigInput } from '../../gateway/src/rules/schema.js';
import { TzClock } from '../../gateway/src/rules/tz-clock.js';
import type { DeviceFacts, Transition } from '../../gateway/src/rules/types.js';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

function harness(rules: RulesConfigInput, facts: DeviceFacts[] = []) {
  const out: Transition[] = [];
  const byKey = new Map(facts.map((f) => [`${f.site}/${f.device}`, f]));
  const lookup = { get: (s: string, d: string) => byKey.get(`${s}/${d}`), list: () => byKey.values() };
  const engine = new RuleEngine({ rules: parseRules(rules), facts: lookup, listener: (b) => out.push(...b) });
  const feed = (minute: number, fields: Reading['fields'], device = 'd1', site = 's1', kind = 'x') =>
    engine.process({ site, kind, device, ts: T0 + minute * MIN, fields });
  const fmt = () => out.map((t) => `${t.type} ${t.ruleId} ${t.severity} @${(t.ts - T0) / MIN} ${t.device}`);
  return { engine, out, feed, fmt, lookup };
}

const only = (...custom: RuleInput[]): RulesConfigInput => ({ pack: [], custom });

const tempRule: RuleInput = {
  id: 't.high',
  kind: 'threshold',
  kinds: ['x'],
  class: 'key',
  metric: 'v',
  high: { value: 10, severity: 'warning', hysteresis: 1, onDelayMs: 5 * MIN, offDelayMs: 3 * MIN },
};

describe('rules schema', () => {
  it('parses the default pack with no configuration', () => {
    const cfg = parseRules();
    expect(cfg.pack.length).toBeGreaterThan(30);
    expect(cfg.pack.find((r) => r.id === 'chlorine.free.low')).toMatchObject({
      low: { value: 0.3, severity: 'warning' },
      lowLow: { value: 0.05, severity: 'critical' },
    });
  });

  it('rejects unknown keys, with their key path', () => {
    const res = parseRules.bind(null, { custom: [{ ...tempRule, hihg: 3 }] });
    expect(res).toThrow(/hihg/);
  });

  it('reports a bad override at the override key path', () => {
    try {
      parseRules({ overrides: [{ rule: 'chlorine.free.low', site: 's1', set: { low: { value: 'x' } } }] });
      expect.unreachable();
    } catch (e) {
      const issues = (e as { issues: { path: unknown[] }[] }).issues;
      expect(issues.map((i) => i.path.join('.'))).toContain('overrides.0.set.low.value');
    }
  });

  it('rejects overrides of unknown rules, duplicate ids, bad time zones and inverted levels', () => {
    expect(() => parseRules({ overrides: [{ rule: 'nope', site: 's', set: {} }] })).toThrow(/unknown rule/);
    expect(() => parseRules({ custom: [{ ...tempRule, id: 'chlorine.free.low' }] })).toThrow(/duplicate/);
    expect(() =>
      parseRules({ overrides: [{ rule: 'water.flow.night', site: 's', set: { timeZone: 'Mars/Olympus' } }] }),
    ).toThrow(/time zone/);
    expect(() =>
      parseRules(only({ ...tempRule, highHigh: { value: 5, severity: 'critical' } } as RuleInput)),
    ).toThrow(/above high/);
  });
});

describe('overrides', () => {
  const facts = (device: string, critical = false, site = 's1'): DeviceFacts => ({
    site,
    device,
    kind: 'x',
    critical,
    reportIntervalSec: 60,
  });
  const rule: RuleInput = {
    id: 'v.high',
    kind: 'threshold',
    kinds: ['x'],
    class: 'key',
    metric: 'v',
    high: { value: 10, severity: 'warning' },
    critical: { high: { value: 8 } },
  };

  it('applies critical, site and device overrides, most specific last, once per combination', () => {
    const h = harness(
      {
        pack: [],
        custom: [rule],
        overrides: [
          { rule: 'v.high', device: 'd3', set: { high: { value: 20 } } },
          { rule: 'v.high', site: 's2', set: { high: { value: 15 } } },
          { rule: 'v.high', site: 's2', device: 'd5', set: { enabled: false } },
        ],
      },
      [facts('d1'), facts('d2', true), facts('d3', true), facts('d4', false, 's2'), facts('d5', false, 's2')],
    );
    for (const [d, site] of [
      ['d1', 's1'],
      ['d2', 's1'],
      ['d3', 's1'],
      ['d4', 's2'],
      ['d5', 's2'],
    ] as const) {
      h.feed(0, { v: 9 }, d, site);
      h.feed(1, { v: 12 }, d, site);
      h.feed(2, { v: 16 }, d, site);
      h.feed(3, { v: 25 }, d, site);
    }
    expect(h.fmt()).toEqual([
      'raise v.high warning @1 d1',
      'raise v.high warning @0 d2', // critical asset: 8
      'raise v.high warning @3 d3', // device override beats critical
      'raise v.high warning @2 d4', // site override
    ]);
  });
});

describe('threshold delays and hysteresis', () => {
  it('on-delay: a short excursion raises nothing; a held one raises at since + delay', () => {
    const h = harness(only(tempRule));
    h.feed(0, { v: 5 });
    h.feed(1, { v: 12 });
    h.feed(4, { v: 12 });
    h.feed(5, { v: 8 }); // back before 5 minutes passed
    h.feed(10, { v: 12 });
    h.feed(14, { v: 12 });
    expect(h.out).toHaveLength(0);
    h.feed(16, { v: 12 });
    expect(h.fmt()).toEqual(['raise t.high warning @15 d1']);
  });

  it('off-delay and deadband: clears only after 3 minutes below value - hysteresis', () => {
    const h = harness(only(tempRule));
    h.feed(0, { v: 12 });
    h.engine.tick(T0 + 5 * MIN);
    h.feed(6, { v: 9.5 }); // inside the deadband: still held
    h.feed(7, { v: 8 }); // clear pending
    h.feed(8, { v: 12 }); // back: pending clear cancelled
    h.feed(9, { v: 8 });
    h.engine.tick(T0 + 11.9 * MIN);
    h.engine.tick(T0 + 12 * MIN);
    expect(h.fmt()).toEqual(['raise t.high warning @5 d1', 'clear t.high warning @12 d1']);
  });

  it('readings out of order are skipped, so a late one cannot raise a second alarm', () => {
    const h = harness(only({ ...tempRule, high: { value: 10, severity: 'warning' } }));
    h.feed(0, { v: 12 });
    h.feed(2, { v: 5 });
    h.feed(1, { v: 12 }); // late
    expect(h.fmt()).toEqual(['raise t.high warning @0 d1', 'clear t.high warning @2 d1']);
    expect(h.engine.stats().outOfOrder).toBe(1);
  });

  it('property: a noisy signal around the threshold with hysteresis >= noise never flaps', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.01, max: 5, noNaN: true }),
        fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 10, maxLength: 300 }),
        fc.array(fc.integer({ min: 0, max: 299 }), { maxLength: 4 }),
        (amp, noise, steps) => {
          const limit = 50;
          const hyst = amp * 2; // the band must cover the full swing of the noise (±amp)
          const h = harness(
            only({
              id: 'n',
              kind: 'threshold',
              kinds: ['x'],
              class: 'key',
              metric: 'v',
              high: { value: limit, severity: 'warning', hysteresis: hyst },
            }),
          );
          // A level that is either far below or just above the threshold, changing at `steps`.
          const switches = new Set(steps);
          let high = false;
          let realCrossings = 0;
          let prev: boolean | undefined;
          noise.forEach((n, i) => {
            if (switches.has(i)) high = !high;
            const base = high ? limit + amp * 1.01 : limit - hyst - amp * 1.01;
            h.feed(i, { v: base + n * amp });
            if (prev !== undefined && prev !== high) realCrossings++;
            prev = high;
          });
          const types = h.out.map((t) => t.type);
          // Alternating raise/clear, and no more changes than the level really made.
          types.forEach((t, i) => expect(t).toBe(i % 2 === 0 ? 'raise' : 'clear'));
          expect(types.length).toBeLessThanOrEqual(realCrossings + 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: noise entirely inside the deadband after a raise never clears', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -0.99, max: 0.99, noNaN: true }), { minLength: 1, maxLength: 200 }),
        (noise) => {
          const h = harness(only({ ...tempRule, high: { value: 10, severity: 'warning', hysteresis: 1 } }));
          h.feed(0, { v: 11 });
          noise.forEach((n, i) => h.feed(i + 1, { v: 10 + n }));
          expect(h.out.map((t) => t.type)).toEqual(['raise']);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('restart and reload', () => {
  const door: RulesConfigInput = {
    pack: [],
    custom: [
      {
        id: 'door',
        kind: 'state',
        kinds: ['x'],
        class: 'routine',
        metric: 'door_open',
        severity: 'warning',
        onDelayMs: 10 * MIN,
      },
      { ...tempRule, high: { value: 10, severity: 'warning' } },
    ],
  };

  it('a restart in the middle of an on-delay raises at the original time', () => {
    const a = harness(door);
    a.feed(0, { door_open: true });
    a.engine.tick(T0 + 5 * MIN);
    const snap = JSON.parse(JSON.stringify(a.engine.snapshotState())) as ReturnType<
      RuleEngine['snapshotState']
    >;
    expect(a.out).toHaveLength(0);

    const b = harness(door);
    b.engine.restoreState(snap);
    b.engine.tick(T0 + 9 * MIN);
    expect(b.out).toHaveLength(0);
    b.engine.tick(T0 + 10.5 * MIN);
    expect(b.fmt()).toEqual(['raise door warning @10 d1']);
    // And the restored alarm is not raised twice.
    b.feed(11, { door_open: true });
    b.engine.tick(T0 + 20 * MIN);
    expect(b.out).toHaveLength(1);
  });

  it('a fresh engine without the snapshot would start the delay over (the test can fail)', () => {
    const b = harness(door);
    b.feed(5, { door_open: true });
    b.engine.tick(T0 + 10.5 * MIN);
    expect(b.out).toHaveLength(0);
  });

  it('restores NaN-bearing states (rings, night windows) from JSON', () => {
    const cfg: RulesConfigInput = {
      overrides: [{ rule: 'water.flow.night', site: 's1', set: { timeZone: 'UTC' } }],
    };
    const a = harness(cfg);
    a.feed(120, { flow_lph: 20 }, 'w1', 's1', 'water-meter');
    a.feed(150, { flow_lph: 20 }, 'w1', 's1', 'water-meter');
    const b = harness(cfg);
    b.engine.restoreState(JSON.parse(JSON.stringify(a.engine.snapshotState())));
    b.feed(200, { flow_lph: 20 }, 'w1', 's1', 'water-meter');
    b.feed(250, { flow_lph: 0 }, 'w1', 's1', 'water-meter');
    expect(b.fmt()).toEqual(['raise water.flow.night warning @250 w1']);
  });

  it('reload keeps the state of unchanged rules and resets (clearing) changed ones', () => {
    const h = harness(door);
    h.feed(0, { door_open: true, v: 12 });
    expect(h.fmt()).toEqual(['raise t.high warning @0 d1']);
    h.engine.reload(
      parseRules({
        pack: [],
        custom: [door.custom![0]!, { ...tempRule, high: { value: 20, severity: 'warning' } }],
      }),
      T0 + 5 * MIN,
    );
    h.engine.tick(T0 + 10 * MIN);
    expect(h.fmt()).toEqual([
      'raise t.high warning @0 d1',
      'clear t.high warning @5 d1', // changed definition: the old alarm does not dangle
      'raise door warning @10 d1', // unchanged rule: the on-delay kept running
    ]);
  });

  it('reload with the same config changes nothing', () => {
    const h = harness(door);
    h.feed(0, { door_open: true, v: 12 });
    h.engine.reload(parseRules(door), T0 + MIN);
    h.feed(2, { v: 13 });
    h.engine.tick(T0 + 10 * MIN);
    expect(h.fmt()).toEqual(['raise t.high warning @0 d1', 'raise door warning @10 d1']);
  });
});

describe('other rule kinds', () => {
  it('rate: falling too fast', () => {
    const h = harness(
      only({
        id: 'r',
        kind: 'rate',
        kinds: ['x'],
        class: 'key',
        metric: 'v',
        fallPerHour: 2,
        severity: 'warning',
      }),
    );
    for (let m = 0; m <= 30; m += 5) h.feed(m, { v: 100 - m * 0.1 }); // 6 per hour down
    expect(h.fmt()).toEqual(['raise r warning @15 d1']);
  });

  it('combined: lt and gt conditions, unknown metric never completes', () => {
    const h = harness(
      only({
        id: 'c',
        kind: 'combined',
        kinds: ['x'],
        class: 'key',
        all: [
          { metric: 'a', lt: 5 },
          { metric: 'b', gt: 10 },
        ],
        severity: 'critical',
      }),
    );
    h.feed(0, { a: 1 });
    h.feed(1, { b: 11 });
    h.feed(2, { a: 6 });
    expect(h.fmt()).toEqual(['raise c critical @1 d1', 'clear c critical @2 d1']);
  });

  it('continuous flow raised by tick while readings keep coming, not for a silent device', () => {
    const rule: RuleInput = {
      id: 'cf',
      kind: 'continuous-flow',
      kinds: ['x'],
      class: 'key',
      metric: 'f',
      windowMs: 60 * MIN,
      severity: 'warning',
    };
    const facts: DeviceFacts[] = [
      { site: 's1', device: 'd1', kind: 'x', critical: false, reportIntervalSec: 900 },
      { site: 's1', device: 'd2', kind: 'x', critical: false, reportIntervalSec: 60 },
    ];
    const h = harness(only(rule), facts);
    h.feed(0, { f: 1 }, 'd1');
    h.feed(45, { f: 1 }, 'd1');
    h.feed(0, { f: 1 }, 'd2');
    h.engine.tick(T0 + 61 * MIN);
    expect(h.fmt()).toEqual(['raise cf warning @60 d1']);
  });

  it('time zone clock: local minute of day across a DST change', () => {
    const c = new TzClock('Europe/Berlin');
    expect(c.minuteOfDay(Date.UTC(2026, 0, 1, 1, 30))).toBe(150); // 02:30 CET
    expect(c.minuteOfDay(Date.UTC(2026, 6, 1, 1, 30))).toBe(210); // 03:30 CEST
    expect(c.minuteOfDay(Date.UTC(2026, 2, 29, 0, 30))).toBe(90); // before the switch
    expect(c.minuteOfDay(Date.UTC(2026, 2, 29, 1, 30))).toBe(210); // after it
    expect(new TzClock('Asia/Shanghai').minuteOfDay(Date.UTC(2026, 0, 1, 18, 0))).toBe(120);
  });

  it('read rate per site and class against its target, alarm below target, cleared when met', () => {
    const facts: DeviceFacts[] = [];
    for (let i = 0; i < 50; i++)
      facts.push({
        site: 's1',
        device: `r${i}`,
        kind: 'water-meter',
        critical: false,
        reportIntervalSec: 900,
      });
    facts.push({
      site: 's1',
      device: 'c1',
      kind: 'water-meter',
      critical: false,
      reportIntervalSec: 900,
      meterClass: 'commercial',
    });
    const h = harness({ pack: parseRules().pack.filter((r) => r.id === 'meter.read-rate') }, facts);
    for (let i = 0; i < 48; i++) h.feed(0, { flow_lph: 0 }, `r${i}`, 's1', 'water-meter');
    h.feed(0, { flow_lph: 0 }, 'c1', 's1', 'water-meter');
    const rates = h.engine.readRates(T0 + MIN);
    expect(rates).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          meterClass: 'residential',
          expected: 50,
          read: 48,
          ok: false,
          target: 0.98,
        }),
        expect.objectContaining({ meterClass: 'commercial', expected: 1, read: 1, ok: true }),
      ]),
    );
    h.engine.tick(T0 + MIN);
    h.feed(2, { flow_lph: 0 }, 'r48', 's1', 'water-meter');
    h.engine.tick(T0 + 30 * MIN); // not yet: evaluated hourly
    h.engine.tick(T0 + 62 * MIN);
    expect(h.fmt()).toEqual([
      'raise meter.read-rate.residential warning @1 _site',
      'clear meter.read-rate.residential warning @62 _site',
    ]);
  });
});
