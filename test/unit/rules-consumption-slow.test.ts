import { describe, expect, it } from 'vitest';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { DEFAULT_RULE_PACK } from '../../gateway/src/rules/default-pack.js';
import { parseRules, rulesSchema, type RulesConfigInput } from '../../gateway/src/rules/schema.js';
import type { DeviceFacts, Transition } from '../../gateway/src/rules/types.js';

/**
 * gas.consumption.slow (meter running slow, "慢"): four meters of one site reading every 15 minutes,
 * 4 m³ a day unless a row says otherwise; days are UTC (pinned by an override, as a site would).
 */

const T0 = Date.UTC(2026, 0, 5);
const MIN = 60_000;
const STEP = 15 * MIN;
const DAY = 1440 * MIN;
const M4 = ['m1', 'm2', 'm3', 'm4'];

const RULES: RulesConfigInput = {
  pack: DEFAULT_RULE_PACK.filter((r) => r.id === 'gas.consumption.slow'),
  overrides: [{ rule: 'gas.consumption.slow', site: 's1', set: { timeZone: 'UTC' } }],
};

interface Case {
  name: string;
  meters?: string[];
  days: number;
  /** m³ on day d for meter m (default 4). */
  daily?: (m: string, d: number) => number | undefined;
  /** No reading from meter m at minute t (counted from T0). */
  silent?: (m: string, t: number) => boolean;
  /** `type @minute device`. */
  expect: string[];
}

function engineFor(meters: string[], rules: RulesConfigInput = RULES) {
  const facts = new Map<string, DeviceFacts>(
    meters.map((d) => [
      d,
      { site: 's1', device: d, kind: 'gas-meter', critical: false, reportIntervalSec: 900 },
    ]),
  );
  const out: Transition[] = [];
  const engine = new RuleEngine({
    rules: parseRules(rules),
    facts: { get: (_s, d) => facts.get(d) },
    listener: (b) => out.push(...b),
  });
  return { engine, out };
}

function feed(engine: RuleEngine, c: Case, fromT: number, toT: number): void {
  const meters = c.meters ?? M4;
  for (let t = fromT; t <= toT; t += STEP) {
    const min = (t - T0) / MIN;
    const d = Math.floor((t - T0) / DAY);
    for (const m of meters) {
      if (c.silent?.(m, min)) continue;
      const daily = c.daily?.(m, d) ?? 4;
      engine.process({
        site: 's1',
        kind: 'gas-meter',
        device: m,
        ts: t,
        fields: { consumption_m3: daily / 96 },
      });
    }
    engine.tick(t);
  }
}

const fmt = (out: Transition[]) => out.map((t) => `${t.type} @${(t.ts - T0) / MIN} ${t.device}`);

const slowOn =
  (days: number[], share = 0.2, who = ['m1']) =>
  (m: string, d: number) =>
    who.includes(m) && days.includes(d) ? 4 * share : undefined;

const cases: Case[] = [
  {
    name: 'a fifth of the gas on day 7 raises when the day ends',
    days: 8,
    daily: slowOn([7]),
    expect: ['raise @11520 m1'],
  },
  {
    name: 'clears after a normal day',
    days: 9,
    daily: slowOn([7]),
    expect: ['raise @11520 m1', 'clear @12960 m1'],
  },
  {
    name: 'stays raised while slow: slow days are not learnt, so it never looks normal to itself',
    days: 12,
    daily: slowOn([7, 8, 9, 10, 11]),
    expect: ['raise @11520 m1'],
  },
  {
    name: 'the whole site low (warm day, holiday): no fault',
    days: 8,
    daily: slowOn([7], 0.2, M4),
    expect: [],
  },
  {
    name: 'half the site low: too few peers in their normal range',
    days: 8,
    daily: slowOn([7], 0.2, ['m1', 'm2']),
    expect: [],
  },
  {
    name: 'one peer only (minPeers 2): no judgement',
    meters: ['m1', 'm2'],
    days: 8,
    daily: slowOn([7]),
    expect: [],
  },
  {
    name: 'at 35 % of the baseline (limit 30 %): normal',
    days: 8,
    daily: slowOn([7], 0.35),
    expect: [],
  },
  {
    name: 'no consumption at all is the stuck-register rule, not this one',
    days: 8,
    daily: slowOn([7], 0),
    expect: [],
  },
  {
    name: 'too little history (4 whole days, 5 needed)',
    days: 6,
    daily: slowOn([5]),
    expect: [],
  },
  {
    name: 'silent across the day end: the day is not whole, not judged',
    days: 8,
    daily: slowOn([7]),
    silent: (m, t) => m === 'm1' && t > 7 * 1440 + 20 * 60 && t < 8 * 1440 + 4 * 60,
    expect: [],
  },
  {
    name: 'silent for hours inside the day: the index catches up, the day is still whole',
    days: 8,
    daily: (m, d) => (m === 'm1' && d === 7 ? 0.8 : undefined),
    silent: (m, t) => m === 'm2' && t > 7 * 1440 + 6 * 60 && t < 7 * 1440 + 12 * 60,
    expect: ['raise @11520 m1'],
  },
];

describe('gas.consumption.slow: a day far below the meter own median while its peers consume', () => {
  it.each(cases)('$name', (c) => {
    const { engine, out } = engineFor(c.meters ?? M4);
    feed(engine, c, T0, T0 + c.days * DAY);
    expect(fmt(out)).toEqual(c.expect);
  });

  it('peers with a shorter history are judged on their own history only', () => {
    // m1 keeps 14 days, its peers the default 7; another rule's state follows theirs. The peers
    // report from day 6 on, so on day 7 they are whole but have learnt nothing: not judged, and
    // one meter without judged peers raises nothing.
    const slow = DEFAULT_RULE_PACK.find((r) => r.id === 'gas.consumption.slow')!;
    const jump = DEFAULT_RULE_PACK.find((r) => r.id === 'gas.consumption.jump')!;
    const rules: RulesConfigInput = {
      pack: [slow, jump],
      overrides: [
        ...RULES.overrides!,
        { rule: 'gas.consumption.slow', device: 'm1', set: { historyDays: 14 } },
      ],
    };
    const { engine, out } = engineFor(M4, rules);
    const c: Case = {
      name: 'mixed history lengths',
      days: 8,
      daily: slowOn([7]),
      silent: (m, t) => m !== 'm1' && t < 6 * 1440,
      expect: [],
    };
    feed(engine, c, T0, T0 + c.days * DAY);
    expect(out.filter((t) => t.ruleId === 'gas.consumption.slow').map((t) => t.message)).toEqual([]);
  });

  it('a restart between days keeps the learnt history', () => {
    const c = cases[0]!;
    const a = engineFor(M4);
    feed(a.engine, c, T0, T0 + 5 * DAY);
    const b = engineFor(M4);
    b.engine.restoreState(
      JSON.parse(JSON.stringify(a.engine.snapshotState())) as ReturnType<RuleEngine['snapshotState']>,
    );
    feed(b.engine, c, T0 + 5 * DAY + STEP, T0 + 8 * DAY);
    expect(fmt(b.out)).toEqual(['raise @11520 m1']);
  });

  it('validates its settings with key paths', () => {
    const paths = (set: Record<string, unknown>) => {
      const r = rulesSchema.safeParse({ overrides: [{ rule: 'gas.consumption.slow', site: 's1', set }] });
      return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
    };
    expect(paths({ ratio: 1.5 })).toEqual(['overrides.0.set.ratio']);
    expect(paths({ historyDays: 4, minHistoryDays: 6 })).toEqual(['overrides.0.set.minHistoryDays']);
    expect(paths({ timeZone: 'Mars/Base' })).toEqual(['overrides.0.set.timeZone']);
    expect(paths({ ratio: 0.25, minPeers: 3 })).toEqual([]);
  });
});
