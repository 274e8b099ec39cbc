import { describe, expect, it } from 'vitest';
import type { Quality, Reading } from '../../gateway/src/core/types.js';
import { RuleEngine } from '../../gateway/src/rules/engine.js';
import { parseRules, type RulesConfigInput } from '../../gateway/src/rules/schema.js';
import type { DeviceFacts, Transition } from '../../gateway/src/rules/types.js';

/** 2026-01-01T00:00:00Z; step times below are minutes after it. */
const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

interface Step {
  at: number;
  f?: Record<string, number | boolean>;
  q?: Quality;
  /** Per metric (the reading's quality is then the worst of them). */
  qs?: Record<string, Quality>;
  tick?: true;
  device?: string;
}

interface Case {
  name: string;
  kind: string;
  steps: Step[];
  /** `type ruleId severity @minute[ device]`. */
  expect: string[];
  facts?: Partial<DeviceFacts>;
  devices?: string[];
}

/** The night-flow rule runs on the site's zone; tests pin it so they do not depend on the host. */
const RULES: RulesConfigInput = {
  overrides: [
    { rule: 'water.flow.night', site: 's1', set: { timeZone: 'UTC' } },
    { rule: 'gas.consumption.slow', site: 's1', set: { timeZone: 'UTC' } },
  ],
};

function run(c: Case): string[] {
  const ids = c.devices ?? ['d1'];
  const facts = new Map<string, DeviceFacts>(
    ids.map((d) => [
      d,
      {
        site: 's1',
        device: d,
        kind: c.kind,
        critical: false,
        reportIntervalSec: c.kind === 'gas-meter' || c.kind === 'water-meter' ? 900 : 60,
        ratedMaxFlow: c.kind === 'gas-meter' ? 6 : c.kind === 'water-meter' ? 2500 : undefined,
        ...c.facts,
      },
    ]),
  );
  const out: Transition[] = [];
  const engine = new RuleEngine({
    rules: parseRules(RULES),
    facts: { get: (_s, d) => facts.get(d) },
    listener: (b) => out.push(...b),
  });
  for (const s of c.steps) {
    const ts = T0 + s.at * MIN;
    if (s.tick) engine.tick(ts);
    else {
      const r: Reading = { site: 's1', kind: c.kind, device: s.device ?? 'd1', ts, fields: s.f ?? {} };
      if (s.q) r.quality = s.q;
      if (s.qs) {
        r.qualities = s.qs;
        r.quality = Object.values(s.qs).includes('bad') ? 'bad' : 'uncertain';
      }
      engine.process(r);
    }
  }
  return out.map(
    (t) =>
      `${t.type} ${t.ruleId} ${t.severity} @${(t.ts - T0) / MIN}` + (ids.length > 1 ? ` ${t.device}` : ''),
  );
}

/** Readings of one metric at the given minutes. */
const seq = (metric: string, pts: [number, number | boolean][]): Step[] =>
  pts.map(([at, v]) => ({ at, f: { [metric]: v } }));

const cases: Case[] = [
  // Chlorination
  {
    name: 'chlorine.free.low: warning, escalation to critical, deadband, one clear',
    kind: 'chlorination',
    steps: seq('free_chlorine_mgl', [
      [0, 0.5],
      [1, 0.25],
      [2, 0.04],
      [3, 0.055],
      [4, 0.2],
      [5, 0.31],
      [6, 0.35],
    ]),
    expect: [
      'raise chlorine.free.low warning @1',
      'escalate chlorine.free.low critical @2',
      'clear chlorine.free.low critical @6',
    ],
  },
  {
    name: 'chlorine.free.high',
    kind: 'chlorination',
    steps: seq('free_chlorine_mgl', [
      [0, 1],
      [1, 2.1],
      [2, 1.95],
      [3, 1.85],
    ]),
    expect: ['raise chlorine.free.high warning @1', 'clear chlorine.free.high warning @3'],
  },
  {
    name: 'chlorination.ph: both sides',
    kind: 'chlorination',
    steps: seq('ph', [
      [0, 7],
      [1, 6.4],
      [2, 6.55],
      [3, 6.65],
      [4, 8.6],
      [5, 8.3],
    ]),
    expect: [
      'raise chlorination.ph warning @1',
      'clear chlorination.ph warning @3',
      'raise chlorination.ph warning @4',
      'clear chlorination.ph warning @5',
    ],
  },
  {
    name: 'chlorination.turbidity.high',
    kind: 'chlorination',
    steps: seq('turbidity_ntu', [
      [0, 0.5],
      [1, 1.2],
      [2, 0.95],
      [3, 0.85],
    ]),
    expect: ['raise chlorination.turbidity.high warning @1', 'clear chlorination.turbidity.high warning @3'],
  },
  {
    name: 'chlorination.level.low',
    kind: 'chlorination',
    steps: seq('level_pct', [
      [0, 50],
      [1, 19],
      [2, 21],
      [3, 23],
    ]),
    expect: ['raise chlorination.level.low warning @1', 'clear chlorination.level.low warning @3'],
  },
  {
    name: 'chlorination.dosing.off-while-falling: raises after the on-delay, clears when the pump runs',
    kind: 'chlorination',
    steps: [
      ...Array.from({ length: 20 }, (_, t) => ({
        at: t,
        f: { free_chlorine_mgl: 1 - 0.01 * t, dosing_pump_on: false },
      })),
      { at: 20, f: { free_chlorine_mgl: 0.8, dosing_pump_on: true } },
    ],
    expect: [
      'raise chlorination.dosing.off-while-falling warning @15',
      'clear chlorination.dosing.off-while-falling warning @20',
    ],
  },
  {
    name: 'chlorination.dosing.off-while-falling: pump off but chlorine steady raises nothing',
    kind: 'chlorination',
    steps: Array.from({ length: 40 }, (_, t) => ({
      at: t,
      f: { free_chlorine_mgl: 1, dosing_pump_on: false },
    })),
    expect: [],
  },
  // Server room
  {
    name: 'serverroom.temperature: escalation, deadband, low side critical at once',
    kind: 'env-probe',
    steps: seq('temperature_c', [
      [0, 22],
      [1, 28],
      [2, 33],
      [3, 31.6],
      [4, 26.4],
      [10, 14],
      [11, 20],
    ]),
    expect: [
      'raise serverroom.temperature warning @1',
      'escalate serverroom.temperature critical @2',
      'clear serverroom.temperature critical @4',
      'raise serverroom.temperature critical @10',
      'clear serverroom.temperature critical @11',
    ],
  },
  {
    name: 'serverroom.humidity.high',
    kind: 'env-probe',
    steps: seq('humidity_pct', [
      [0, 50],
      [1, 61],
      [2, 59],
      [3, 57],
    ]),
    expect: ['raise serverroom.humidity.high warning @1', 'clear serverroom.humidity.high warning @3'],
  },
  {
    name: 'serverroom.dew-point: both sides',
    kind: 'env-probe',
    steps: seq('dew_point_c', [
      [0, 10],
      [1, 5],
      [2, 5.8],
      [3, 6.1],
      [4, 16],
      [5, 14.4],
    ]),
    expect: [
      'raise serverroom.dew-point warning @1',
      'clear serverroom.dew-point warning @3',
      'raise serverroom.dew-point warning @4',
      'clear serverroom.dew-point warning @5',
    ],
  },
  {
    name: 'serverroom.temperature.rate: 6 °C/h raises once history spans 15 min, clears below 4 °C/h',
    kind: 'env-probe',
    steps: [
      ...seq(
        'temperature_c',
        Array.from({ length: 7 }, (_, i) => [i * 10, 20 + i] as [number, number]),
      ),
      ...seq('temperature_c', [
        [70, 26.5],
        [80, 26.5],
        [90, 26.5],
      ]),
    ],
    expect: [
      'raise serverroom.temperature.rate warning @20',
      'clear serverroom.temperature.rate warning @90',
    ],
  },
  {
    name: 'serverroom.smoke: critical at once',
    kind: 'env-probe',
    steps: seq('smoke', [
      [0, false],
      [1, true],
      [2, true],
      [3, false],
    ]),
    expect: ['raise serverroom.smoke critical @1', 'clear serverroom.smoke critical @3'],
  },
  {
    name: 'serverroom.water-leak: critical at once',
    kind: 'env-probe',
    steps: seq('water_leak', [
      [0, false],
      [1, true],
      [3, false],
    ]),
    expect: ['raise serverroom.water-leak critical @1', 'clear serverroom.water-leak critical @3'],
  },
  {
    name: 'serverroom.door.open: only after 10 minutes, raised by tick at the original time',
    kind: 'env-probe',
    // A probe that reports on change and every 10 minutes: the offline rule stays quiet here.
    facts: { reportIntervalSec: 600 },
    steps: [
      { at: 0, f: { door_open: true } },
      { at: 5, tick: true },
      { at: 9, f: { door_open: true } },
      { at: 10.5, tick: true },
      { at: 12, f: { door_open: false } },
      { at: 20, f: { door_open: true } },
      { at: 29, f: { door_open: false } },
      { at: 40, tick: true },
    ],
    expect: ['raise serverroom.door.open warning @10', 'clear serverroom.door.open warning @12'],
  },
  // Gas
  {
    name: 'gas.pressure: 1.5-3.0 kPa',
    kind: 'gas-meter',
    steps: seq('pressure_kpa', [
      [0, 2],
      [1, 1.4],
      [2, 1.52],
      [3, 1.56],
      [4, 3.1],
      [5, 2.9],
    ]),
    expect: [
      'raise gas.pressure warning @1',
      'clear gas.pressure warning @3',
      'raise gas.pressure warning @4',
      'clear gas.pressure warning @5',
    ],
  },
  {
    name: 'gas.flow.continuous: 8 h without a stop',
    kind: 'gas-meter',
    steps: [
      ...seq(
        'flow_m3h',
        Array.from({ length: 10 }, (_, i) => [i * 60, 0.1] as [number, number]),
      ),
      { at: 600, f: { flow_m3h: 0 } },
    ],
    expect: ['raise gas.flow.continuous warning @480', 'clear gas.flow.continuous warning @600'],
  },
  {
    name: 'gas.flow.continuous: a stop every few hours raises nothing',
    kind: 'gas-meter',
    steps: seq(
      'flow_m3h',
      Array.from({ length: 30 }, (_, i) => [i * 60, i % 5 === 0 ? 0 : 0.3] as [number, number]),
    ),
    expect: [],
  },
  {
    name: 'gas.flow.over-rated: above Qmax 6 m³/h, 5 % deadband',
    kind: 'gas-meter',
    steps: seq('flow_m3h', [
      [0, 5],
      [1, 6.5],
      [2, 5.8],
      [3, 5.6],
    ]),
    expect: ['raise gas.flow.over-rated critical @1', 'clear gas.flow.over-rated critical @3'],
  },
  {
    name: 'gas.flow.over-rated: no rated flow, no rule',
    kind: 'gas-meter',
    facts: { ratedMaxFlow: undefined },
    steps: seq('flow_m3h', [
      [0, 5],
      [1, 60],
    ]),
    expect: [],
  },
  {
    name: 'gas.register.stuck: 7 days without consumption while two peers consume',
    kind: 'gas-meter',
    devices: ['m1', 'm2', 'm3'],
    steps: [
      ...Array.from({ length: 9 }, (_, d) =>
        ['m1', 'm2', 'm3'].map((device) => ({
          at: (d * DAY + 12 * HOUR) / MIN,
          device,
          f: { consumption_m3: device === 'm1' ? (d === 8 ? 0.5 : 0) : 1.2 },
        })),
      ).flat(),
    ],
    expect: ['raise gas.register.stuck warning @10800 m1', 'clear gas.register.stuck warning @12240 m1'],
  },
  {
    name: 'gas.register.stuck: a whole vacant site is not stuck',
    kind: 'gas-meter',
    devices: ['m1', 'm2', 'm3'],
    steps: Array.from({ length: 10 }, (_, d) =>
      ['m1', 'm2', 'm3'].map((device) => ({ at: (d * DAY) / MIN, device, f: { consumption_m3: 0 } })),
    ).flat(),
    expect: [],
  },
  {
    name: 'gas.consumption.slow: a fifth of the usual day while the peers consume as usual',
    kind: 'gas-meter',
    devices: ['m1', 'm2', 'm3'],
    // Every 15 minutes for 8 days, 4 m³ a day; m1 counts a fifth on day 7, judged when it ends.
    steps: Array.from({ length: 8 * 96 + 1 }, (_, i) =>
      ['m1', 'm2', 'm3'].map((device) => ({
        at: i * 15,
        device,
        f: { consumption_m3: (device === 'm1' && i >= 7 * 96 && i < 8 * 96 ? 0.8 : 4) / 96 },
      })),
    ).flat(),
    expect: ['raise gas.consumption.slow warning @11520 m1'],
  },
  {
    name: 'gas.consumption.jump: far outside a week of history, then back',
    kind: 'gas-meter',
    steps: [
      ...seq(
        'consumption_m3',
        Array.from({ length: 7 * 24 + 1 }, (_, i) => [i * 60, i % 2 ? 0.1 : 0.12] as [number, number]),
      ),
      { at: 10140, f: { consumption_m3: 5 } },
      { at: 10200, f: { consumption_m3: 0.11 } },
    ],
    expect: ['raise gas.consumption.jump warning @10140', 'clear gas.consumption.jump warning @10200'],
  },
  {
    name: 'gas.consumption.jump: not judged before the meter has a week of history',
    kind: 'gas-meter',
    steps: [
      ...seq(
        'consumption_m3',
        Array.from({ length: 60 }, (_, i) => [i * 60, i % 2 ? 0.1 : 0.12] as [number, number]),
      ),
      { at: 3600, f: { consumption_m3: 5 } },
      { at: 3660, f: { consumption_m3: 0.11 } },
    ],
    expect: [],
  },
  {
    name: 'gas.valve.closed',
    kind: 'gas-meter',
    steps: seq('valve_open', [
      [0, true],
      [1, false],
      [2, true],
    ]),
    expect: ['raise gas.valve.closed warning @1', 'clear gas.valve.closed warning @2'],
  },
  {
    name: 'gas.tamper',
    kind: 'gas-meter',
    steps: seq('tamper', [
      [0, false],
      [1, true],
      [2, false],
    ]),
    expect: ['raise gas.tamper warning @1', 'clear gas.tamper warning @2'],
  },
  {
    name: 'gas.battery.low',
    kind: 'gas-meter',
    steps: seq('battery_pct', [
      [0, 50],
      [1, 19],
      [2, 21],
      [3, 23],
    ]),
    expect: ['raise gas.battery.low warning @1', 'clear gas.battery.low warning @3'],
  },
  {
    name: 'gas.balance.low',
    kind: 'gas-meter',
    steps: seq('balance_m3', [
      [0, 10],
      [1, 4],
      [2, 5.4],
      [3, 5.6],
    ]),
    expect: ['raise gas.balance.low info @1', 'clear gas.balance.low info @3'],
  },
  {
    name: 'gas.methane: 25 % and 50 % LEL',
    kind: 'gas-meter',
    steps: seq('methane_lel_pct', [
      [0, 0],
      [1, 30],
      [2, 55],
      [3, 20],
    ]),
    expect: [
      'raise gas.methane warning @1',
      'escalate gas.methane critical @2',
      'clear gas.methane critical @3',
    ],
  },
  // Water
  {
    name: 'water leak: night flow at 04:00, then no zero-flow interval in 24 h',
    kind: 'water-meter',
    steps: [
      ...seq(
        'flow_lph',
        Array.from({ length: 25 }, (_, i) => [i * 60, 20] as [number, number]),
      ),
      { at: 1500, f: { flow_lph: 0 } },
    ],
    expect: [
      'raise water.flow.night warning @240',
      'raise water.flow.continuous warning @1440',
      'clear water.flow.continuous warning @1500',
    ],
  },
  {
    name: 'water.flow.night: minimum flow decides, cleared the next quiet night',
    kind: 'water-meter',
    steps: seq('flow_lph', [
      [60, 0],
      [120, 15],
      [150, 40],
      [180, 15],
      [210, 12],
      [240, 0],
      [1560, 12],
      [1590, 3],
      [1620, 12],
      [1680, 0],
    ]),
    expect: ['raise water.flow.night warning @240', 'clear water.flow.night warning @1680'],
  },
  {
    name: 'water.flow.night: a flush at 03:00 is not a leak',
    kind: 'water-meter',
    steps: seq('flow_lph', [
      [120, 0],
      [180, 300],
      [200, 0],
      [240, 0],
    ]),
    expect: [],
  },
  {
    name: 'water.flow.over-rated: above Q3 2500 L/h',
    kind: 'water-meter',
    steps: seq('flow_lph', [
      [0, 1000],
      [1, 2600],
      [2, 2400],
      [3, 2300],
      [4, 0],
    ]),
    expect: ['raise water.flow.over-rated critical @1', 'clear water.flow.over-rated critical @3'],
  },
  {
    name: 'water.reverse-flow',
    kind: 'water-meter',
    steps: seq('reverse_flow', [
      [0, false],
      [1, true],
      [2, false],
    ]),
    expect: ['raise water.reverse-flow warning @1', 'clear water.reverse-flow warning @2'],
  },
  {
    name: 'water.tamper',
    kind: 'water-meter',
    steps: seq('tamper', [
      [0, true],
      [1, false],
    ]),
    expect: ['raise water.tamper warning @0', 'clear water.tamper warning @1'],
  },
  {
    name: 'water.battery.low',
    kind: 'water-meter',
    steps: seq('battery_pct', [
      [0, 15],
      [1, 25],
    ]),
    expect: ['raise water.battery.low warning @0', 'clear water.battery.low warning @1'],
  },
  {
    name: 'water.pressure: 100-450 kPa',
    kind: 'water-meter',
    steps: seq('pressure_kpa', [
      [0, 300],
      [1, 95],
      [2, 103],
      [3, 106],
      [4, 460],
      [5, 440],
    ]),
    expect: [
      'raise water.pressure warning @1',
      'clear water.pressure warning @3',
      'raise water.pressure warning @4',
      'clear water.pressure warning @5',
    ],
  },
  {
    name: 'water.temperature.freeze',
    kind: 'water-meter',
    steps: seq('temperature_c', [
      [0, 8],
      [1, 1.5],
      [2, 2.5],
      [3, 3.5],
    ]),
    expect: ['raise water.temperature.freeze warning @1', 'clear water.temperature.freeze warning @3'],
  },
  // Every device
  {
    name: 'device.offline: 3 reporting intervals of silence, cleared by the next reading',
    kind: 'gas-meter',
    steps: [
      { at: 0, f: { pressure_kpa: 2 } },
      { at: 44, tick: true },
      { at: 46, tick: true },
      { at: 47, tick: true },
      { at: 50, f: { pressure_kpa: 2 } },
    ],
    expect: ['raise device.offline info @45', 'clear device.offline info @50'],
  },
  {
    name: 'device.offline: critical asset after 2 intervals, as a warning',
    kind: 'env-probe',
    facts: { critical: true },
    steps: [
      { at: 0, f: { temperature_c: 22 } },
      { at: 1.5, tick: true },
      { at: 2.5, tick: true },
    ],
    expect: ['raise device.offline warning @2'],
  },
  {
    name: 'device.offline: bad or uncertain readings count as no data and never reach value rules',
    kind: 'gas-meter',
    steps: [
      { at: 0, f: { pressure_kpa: 0 }, q: 'bad' },
      { at: 1, f: { pressure_kpa: 0 }, q: 'uncertain' },
      { at: 2, f: { pressure_kpa: 0 }, q: 'bad' },
      { at: 3, f: { pressure_kpa: 0 }, q: 'uncertain' },
      { at: 4, f: { pressure_kpa: 2 } },
    ],
    expect: ['raise device.offline info @2', 'clear device.offline info @4'],
  },
  {
    name: 'chlorine.free.low: a restarted PLC reporting 0 mg/L as Uncertain raises nothing',
    kind: 'chlorination',
    steps: [
      { at: 0, f: { free_chlorine_mgl: 0.5 } },
      { at: 1, f: { free_chlorine_mgl: 0, ph: 0 }, q: 'uncertain' },
      { at: 2, f: { free_chlorine_mgl: 0, ph: 0 }, q: 'uncertain' },
      { at: 3, f: { free_chlorine_mgl: 0.5, ph: 7.2 } },
    ],
    expect: [],
  },
  {
    name: 'chlorine.free.low: a good value after uncertain ones is judged as usual',
    kind: 'chlorination',
    steps: [
      { at: 0, f: { free_chlorine_mgl: 0 }, q: 'uncertain' },
      { at: 1, f: { free_chlorine_mgl: 0.04 } },
    ],
    expect: ['raise chlorine.free.low critical @1'],
  },
  {
    name: 'quality per metric: a failed analyser neither raises nor clears; the good pH beside it counts',
    kind: 'chlorination',
    steps: [
      { at: 0, f: { free_chlorine_mgl: 0.5, ph: 7.2 } },
      { at: 1, f: { free_chlorine_mgl: 0, ph: 9.2 }, qs: { free_chlorine_mgl: 'bad' } },
      { at: 2, f: { free_chlorine_mgl: 0.04, ph: 9.2 } },
      { at: 3, f: { free_chlorine_mgl: 0.5, ph: 7.2 }, qs: { free_chlorine_mgl: 'bad' } },
    ],
    expect: [
      'raise chlorination.ph warning @1',
      'raise chlorine.free.low critical @2',
      'clear chlorination.ph warning @3',
    ],
  },
];

describe('default rule pack (DOMAIN.md), one table row per rule', () => {
  it.each(cases)('$name', (c) => {
    expect(run(c)).toEqual(c.expect);
  });

  it('covers every device rule of the default pack', () => {
    const ids = parseRules()
      .pack.filter((r) => r.kind !== 'read-rate')
      .map((r) => r.id);
    const covered = new Set(cases.flatMap((c) => c.expect.map((e) => e.split(' ')[1])));
    expect(ids.filter((id) => !covered.has(id))).toEqual([]);
  });
});
