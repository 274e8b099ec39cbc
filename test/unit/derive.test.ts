import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { newDeviceRefs, type Quality, type Reading } from '../../gateway/src/core/types.js';
import {
  CONSUMPTION_PREFIX,
  Deriver,
  rolloverModulus,
  type DeriveOutcome,
  type DeviceLookup,
  type StateStore,
  type StateValue,
} from '../../gateway/src/ingest/derive.js';
import { dewPointC } from '../../gateway/src/ingest/derive-dewpoint.js';

class MemStore implements StateStore {
  readonly rows = new Map<string, string>();
  puts = 0;
  loadState(prefix: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, v] of this.rows) if (k.startsWith(prefix)) out.set(k, v);
    return out;
  }
  /** As if every reading were committed at once: the value is written as its string. */
  putState(key: string, value: StateValue): void {
    this.puts++;
    this.rows.set(key, String(value));
  }
}

function lookup(max?: number): DeviceLookup {
  return { registerMax: () => max };
}

function meter(ts: number, volume: number, kind = 'gas-meter'): Reading {
  return { site: 's1', kind, device: 'm1', ts, fields: { volume_m3: volume } };
}

const KEY = 's1/m1';

interface Step {
  ts: number;
  v: number;
  outcome: DeriveOutcome;
  /** undefined: the field must be absent. */
  consumption?: number;
  reset?: true;
}

interface Case {
  name: string;
  registerMax?: number;
  kind?: string;
  steps: Step[];
}

const cases: Case[] = [
  { name: 'first reading books nothing', steps: [{ ts: 1, v: 123.4, outcome: 'first' }] },
  {
    name: 'plain increase',
    steps: [
      { ts: 1, v: 100, outcome: 'first' },
      { ts: 2, v: 100.25, outcome: 'ok', consumption: 0.25 },
      { ts: 3, v: 100.25, outcome: 'ok', consumption: 0 },
    ],
  },
  {
    name: 'rollover at the default register maximum (modulus 100000)',
    steps: [
      { ts: 1, v: 99999.5, outcome: 'first' },
      { ts: 2, v: 0.3, outcome: 'rollover', consumption: 0.8 },
      { ts: 3, v: 1.3, outcome: 'ok', consumption: 1 },
    ],
  },
  {
    name: 'water meters roll over too',
    kind: 'water-meter',
    steps: [
      { ts: 1, v: 99990, outcome: 'first' },
      { ts: 2, v: 5, outcome: 'rollover', consumption: 15 },
    ],
  },
  {
    name: 'custom registerMax 9999 rolls over at 10000',
    registerMax: 9999,
    steps: [
      { ts: 1, v: 9998, outcome: 'first' },
      { ts: 2, v: 3, outcome: 'rollover', consumption: 5 },
    ],
  },
  {
    name: 'custom registerMax 9999: a drop that is no wrap at 10000 is a reset',
    registerMax: 9999,
    steps: [
      { ts: 1, v: 8000, outcome: 'first' },
      { ts: 2, v: 3, outcome: 'reset', consumption: 0, reset: true },
    ],
  },
  {
    name: 'meter reset / replacement is flagged, not booked, and becomes the base',
    steps: [
      { ts: 1, v: 5000, outcome: 'first' },
      { ts: 2, v: 12, outcome: 'reset', consumption: 0, reset: true },
      { ts: 3, v: 14.5, outcome: 'ok', consumption: 2.5 },
    ],
  },
  {
    name: 'near the top but the new index is not near zero: reset',
    steps: [
      { ts: 1, v: 99000, outcome: 'first' },
      { ts: 2, v: 50000, outcome: 'reset', consumption: 0, reset: true },
    ],
  },
  {
    name: 'redelivery (same ts) books once',
    steps: [
      { ts: 1, v: 10, outcome: 'first' },
      { ts: 2, v: 11, outcome: 'ok', consumption: 1 },
      { ts: 2, v: 11, outcome: 'duplicate' },
      { ts: 3, v: 12, outcome: 'ok', consumption: 1 },
    ],
  },
  {
    name: 'redelivered reset is not flagged twice',
    steps: [
      { ts: 1, v: 5000, outcome: 'first' },
      { ts: 2, v: 12, outcome: 'reset', consumption: 0, reset: true },
      { ts: 2, v: 12, outcome: 'duplicate' },
    ],
  },
  {
    name: 'late reading between two is omitted and the totals do not change',
    steps: [
      { ts: 10, v: 100, outcome: 'first' },
      { ts: 30, v: 110, outcome: 'ok', consumption: 10 },
      { ts: 20, v: 105, outcome: 'out_of_order' },
      { ts: 40, v: 120, outcome: 'ok', consumption: 10 },
    ],
  },
  {
    name: 'a late lower index is out of order, not a reset',
    steps: [
      { ts: 10, v: 100, outcome: 'first' },
      { ts: 5, v: 1, outcome: 'out_of_order' },
      { ts: 20, v: 101, outcome: 'ok', consumption: 1 },
    ],
  },
  {
    name: 'an absurd jump is booked (the rules judge it)',
    steps: [
      { ts: 1, v: 1, outcome: 'first' },
      { ts: 2, v: 90000, outcome: 'ok', consumption: 89999 },
    ],
  },
];

describe('Deriver: consumption', () => {
  // The pipeline hands the device's refs, where the meter's state is kept after its first reading.
  const modes = [
    { how: 'state looked up', refs: () => undefined },
    { how: 'state kept in the device refs', refs: newDeviceRefs },
  ];
  it.each(modes.flatMap((m) => cases.map((c) => ({ ...c, ...m }))))('$name ($how)', (c) => {
    const { steps, registerMax, kind } = c;
    const refs = c.refs();
    const store = new MemStore();
    const d = new Deriver(store, lookup(registerMax));
    d.load();
    for (const [i, s] of steps.entries()) {
      const r = meter(s.ts, s.v, kind);
      const outcome = d.apply(r, KEY, refs);
      if (refs) expect(refs.derive, `step ${i}`).toBeDefined();
      expect(outcome, `step ${i}`).toBe(s.outcome);
      if (s.consumption === undefined) expect(r.fields, `step ${i}`).not.toHaveProperty('consumption_m3');
      else expect(r.fields.consumption_m3 as number, `step ${i}`).toBeCloseTo(s.consumption, 9);
      expect(r.fields.index_reset, `step ${i}`).toBe(s.reset);
    }
  });

  it('books the rollover 99999.5 → 0.3 as 0.8 within 1e-9', () => {
    const d = new Deriver(new MemStore(), lookup(undefined));
    d.apply(meter(1, 99999.5), KEY);
    const r = meter(2, 0.3);
    d.apply(r, KEY);
    expect(Math.abs((r.fields.consumption_m3 as number) - 0.8)).toBeLessThan(1e-9);
  });

  it('persists every accepted change and nothing for duplicates or late readings', () => {
    const store = new MemStore();
    const d = new Deriver(store, lookup(undefined));
    d.apply(meter(10, 1), KEY);
    d.apply(meter(20, 2), KEY);
    d.apply(meter(20, 2), KEY);
    d.apply(meter(15, 1.5), KEY);
    expect(store.puts).toBe(2);
    expect([...store.rows.keys()]).toEqual([CONSUMPTION_PREFIX + KEY]);
  });

  it('continues across a restart on the same store', () => {
    const store = new MemStore();
    const a = new Deriver(store, lookup(undefined));
    a.load();
    a.apply(meter(1, 99999), KEY);
    a.apply(meter(2, 99999.9), KEY);

    const b = new Deriver(store, lookup(undefined));
    b.load();
    expect(b.stats()).toEqual({ devices: 1, invalidState: 0 });
    // The broker redelivers what was not acknowledged before the crash.
    const again = meter(2, 99999.9);
    expect(b.apply(again, KEY)).toBe('duplicate');
    expect(again.fields).not.toHaveProperty('consumption_m3');
    const next = meter(3, 0.4);
    expect(b.apply(next, KEY)).toBe('rollover');
    expect(next.fields.consumption_m3 as number).toBeCloseTo(0.5, 9);
  });

  it('drops corrupt state rows at load and treats the device as new', () => {
    const store = new MemStore();
    store.rows.set(CONSUMPTION_PREFIX + KEY, 'garbage');
    const d = new Deriver(store, lookup(undefined));
    d.load();
    expect(d.stats()).toEqual({ devices: 0, invalidState: 1 });
    expect(d.apply(meter(1, 5), KEY)).toBe('first');
  });

  it('keeps devices apart', () => {
    const d = new Deriver(new MemStore(), lookup(undefined));
    d.apply(meter(1, 10), 's1/a');
    expect(d.apply(meter(1, 500), 's1/b')).toBe('first');
    const r = meter(2, 11);
    d.apply(r, 's1/a');
    expect(r.fields.consumption_m3).toBe(1);
  });

  it('ignores readings without an index, bad or uncertain readings and other kinds', () => {
    const d = new Deriver(new MemStore(), lookup(undefined));
    d.apply(meter(1, 10), KEY);
    const noIndex: Reading = { site: 's1', kind: 'gas-meter', device: 'm1', ts: 2, fields: { flow_m3h: 1 } };
    expect(d.apply(noIndex, KEY)).toBe('ok');
    expect(noIndex.fields).toEqual({ flow_m3h: 1 });
    const bad: Reading = { ...meter(3, 0), quality: 'bad' };
    expect(d.apply(bad, KEY)).toBe('ok');
    expect(bad.fields).toEqual({ volume_m3: 0 });
    // A register restarting reports 0 as Uncertain: neither a reset nor a new base.
    const uncertain: Reading = { ...meter(3, 0), quality: 'uncertain' };
    expect(d.apply(uncertain, KEY)).toBe('ok');
    expect(uncertain.fields).toEqual({ volume_m3: 0 });
    // Per metric: a bad index books nothing, even beside good values ...
    const badIndex: Reading = {
      ...meter(3, 0),
      fields: { volume_m3: 0, flow_m3h: 1 },
      quality: 'bad',
      qualities: { volume_m3: 'bad' },
    };
    expect(d.apply(badIndex, KEY)).toBe('ok');
    expect(badIndex.fields).toEqual({ volume_m3: 0, flow_m3h: 1 });
    const chl: Reading = { site: 's1', kind: 'chlorination', device: 'm1', ts: 4, fields: { volume_m3: 1 } };
    expect(d.apply(chl, KEY)).toBe('ok');
    expect(chl.fields).toEqual({ volume_m3: 1 });
    const next = meter(5, 12);
    d.apply(next, KEY);
    expect(next.fields.consumption_m3).toBe(2);
    // ... and a good index beside a bad value does.
    const goodIndex: Reading = { ...meter(6, 13), quality: 'bad', qualities: { flow_m3h: 'bad' } };
    goodIndex.fields.flow_m3h = 0;
    d.apply(goodIndex, KEY);
    expect(goodIndex.fields.consumption_m3).toBe(1);
  });
});

describe('rolloverModulus', () => {
  it.each([
    [99999.999, 100000],
    [99999, 100000],
    [9999, 10000],
    [999.99, 1000],
    [100000, 100000],
    [1e9 - 0.001, 1e9],
    [0, 100000],
    [Number.NaN, 100000],
  ])('%d → %d', (max, mod) => expect(rolloverModulus(max)).toBe(mod));
});

describe('Deriver: dew point', () => {
  function probe(fields: Reading['fields']): Reading {
    return { site: 's1', kind: 'env-probe', device: 'p1', ts: 1, fields };
  }

  it.each([
    { t: 20, rh: 50, dp: 9.26 },
    { t: 25, rh: 60, dp: 16.7 },
    { t: 22, rh: 100, dp: 22 },
    { t: 0, rh: 80, dp: -3.0 },
    { t: 30, rh: 30, dp: 10.5 },
  ])('$t °C, $rh % → $dp °C', ({ t, rh, dp }) => {
    const r = probe({ temperature_c: t, humidity_pct: rh });
    expect(new Deriver(new MemStore(), lookup()).apply(r, 's1/p1')).toBe('ok');
    expect(Math.abs((r.fields.dew_point_c as number) - dp)).toBeLessThan(0.1);
    // Rounded to 2 decimals.
    expect(Math.round((r.fields.dew_point_c as number) * 100) / 100).toBe(r.fields.dew_point_c);
  });

  const noDewPoint: Array<{ name: string; fields: Reading['fields'] }> = [
    { name: 'humidity 0', fields: { temperature_c: 20, humidity_pct: 0 } },
    { name: 'no humidity', fields: { temperature_c: 20 } },
    { name: 'no temperature', fields: { humidity_pct: 40 } },
    { name: 'boolean temperature', fields: { temperature_c: true, humidity_pct: 40 } },
  ];
  it.each(noDewPoint)('no dew point with $name', ({ fields }) => {
    const r = probe({ ...fields });
    new Deriver(new MemStore(), lookup()).apply(r, 's1/p1');
    expect(r.fields).not.toHaveProperty('dew_point_c');
  });

  it('no dew point from a temperature or humidity that is not good', () => {
    const cases: Array<Record<string, Quality>> = [{ temperature_c: 'bad' }, { humidity_pct: 'uncertain' }];
    for (const qualities of cases) {
      const r: Reading = { ...probe({ temperature_c: 0, humidity_pct: 40 }), quality: 'bad', qualities };
      new Deriver(new MemStore(), lookup()).apply(r, 's1/p1');
      expect(r.fields).not.toHaveProperty('dew_point_c');
    }
    const ok: Reading = { ...probe({ temperature_c: 20, humidity_pct: 50, smoke: false }), quality: 'bad' };
    ok.qualities = { smoke: 'bad' };
    new Deriver(new MemStore(), lookup()).apply(ok, 's1/p1');
    expect(ok.fields.dew_point_c).toBeTypeOf('number');
  });

  it('dewPointC never exceeds the temperature', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -40, max: 60, noNaN: true }),
        fc.double({ min: 0.1, max: 100, noNaN: true }),
        (t, rh) => dewPointC(t, rh) <= t + 0.01,
      ),
    );
  });
});

describe('Deriver: property', () => {
  // Register 9999 (modulus 10000 m³ = 10,000,000 L); each step is at most 200 m³, so even a span
  // of three steps (after a swap and a redelivery) stays under the 10 % wrap window.
  const MOD_L = 10_000_000;

  it('booked consumption equals the true total under wraps, redeliveries and local reordering', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MOD_L - 1 }),
        fc.array(
          fc.record({
            litres: fc.integer({ min: 0, max: 200_000 }),
            redeliver: fc.boolean(),
            swapWithNext: fc.boolean(),
          }),
          { minLength: 1, maxLength: 200 },
        ),
        (startL, steps) => {
          // True order: reading i at ts 1000*i with cumulative litres.
          const readings: Array<{ ts: number; v: number }> = [{ ts: 0, v: startL / 1000 }];
          let litres = startL;
          let trueTotalL = 0;
          for (const [i, s] of steps.entries()) {
            litres += s.litres;
            trueTotalL += s.litres;
            readings.push({ ts: 1000 * (i + 1), v: (litres % MOD_L) / 1000 });
          }
          // Delivery order: the base first, then neighbours swapped and redeliveries added.
          const order: number[] = [];
          for (let i = 1; i < readings.length; i++) order.push(i);
          for (let i = 0; i + 1 < order.length; i += 2) {
            if (steps[i]!.swapWithNext) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
          }
          const delivery = [0];
          for (const [j, i] of order.entries()) {
            delivery.push(i);
            if (steps[j]!.redeliver) delivery.push(i);
          }

          const d = new Deriver(new MemStore(), lookup(9999));
          let booked = 0;
          for (const i of delivery) {
            const r = meter(readings[i]!.ts, readings[i]!.v);
            const outcome = d.apply(r, KEY);
            expect(outcome).not.toBe('reset');
            const c = r.fields.consumption_m3;
            if (typeof c === 'number') {
              expect(c).toBeGreaterThanOrEqual(0);
              booked += c;
            }
          }
          expect(Math.abs(booked - trueTotalL / 1000)).toBeLessThan(1e-6 * delivery.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
