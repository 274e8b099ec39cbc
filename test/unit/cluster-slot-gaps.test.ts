import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { OwnershipGate, type ReplayMeters } from '../../gateway/src/cluster/gate.js';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { FILL_MAX, missedSlots, slotStep } from '../../gateway/src/cluster/slot-gaps.js';
import { configSchema } from '../../gateway/src/config/schema.js';
import type { Reading } from '../../gateway/src/core/types.js';
import { Deriver, type StateValue } from '../../gateway/src/ingest/derive.js';
import { IngestPipeline } from '../../gateway/src/ingest/pipeline.js';
import { DeviceRegistry } from '../../gateway/src/registry/registry.js';

describe('slot gaps: pure logic', () => {
  it('tells the poll interval from slot timestamps, 0 when it cannot', () => {
    expect(slotStep([1000, 1200, 1400, 1800])).toBe(200);
    expect(slotStep([2000, 1200, 1600])).toBe(400);
    // Every other slot missed from 1000 on: 400 is not the grid (1000), nothing is guessed.
    expect(slotStep([1800, 1000, 1400])).toBe(0);
    expect(slotStep([1000])).toBe(0);
    expect(slotStep([1000, 1000])).toBe(0);
    // Not stamped with a slot (OPC UA server time): no grid, nothing to fill.
    expect(slotStep([1000, 1203, 1400])).toBe(0);
  });

  it('lists the slots strictly between a chain end and the next reading', () => {
    expect(missedSlots(1000, 1200, 200)).toEqual([]);
    expect(missedSlots(1000, 1600, 200)).toEqual([1200, 1400]);
    expect(missedSlots(1000, 1000, 200)).toEqual([]);
    expect(missedSlots(1000, 800, 200)).toEqual([]);
    expect(missedSlots(1000, 1600, 0)).toEqual([]);
    // An upper bound off the grid (now + 1): slots up to it.
    expect(missedSlots(1000, 1401, 200)).toEqual([1200, 1400]);
    // A chain end off the grid (a restored index of another interval): the grid's next slot.
    expect(missedSlots(1050, 1600, 200)).toEqual([1200, 1400]);
    // Not before the lower bound.
    expect(missedSlots(1000, 2000, 200, 1500)).toEqual([1600, 1800]);
    // Bounded: the newest FILL_MAX.
    const many = missedSlots(0, 200 * (FILL_MAX + 50), 200);
    expect(many).toHaveLength(FILL_MAX);
    expect(many[many.length - 1]).toBe(200 * (FILL_MAX + 49));
  });
});

/**
 * What InfluxDB holds for a meter, by slot: a later write of a slot replaces the fields it
 * carries (same series, same timestamp), keeps those it does not.
 */
class Points {
  readonly bySlot = new Map<number, { volume?: number; consumption?: number }>();
  write(ts: number, fields: Reading['fields']): void {
    const p = this.bySlot.get(ts) ?? {};
    if (typeof fields.volume_m3 === 'number') p.volume = fields.volume_m3;
    if (typeof fields.consumption_m3 === 'number') p.consumption = fields.consumption_m3;
    this.bySlot.set(ts, p);
  }
  booked(): number {
    let s = 0;
    for (const p of this.bySlot.values()) s += p.consumption ?? 0;
    return s;
  }
}

class MemStore {
  loadState(): Map<string, string> {
    return new Map();
  }
  putState(_key: string, _value: StateValue): void {}
}

describe('a takeover’s replay fills the slots a meter’s chain skipped', () => {
  const IV = 200;
  /** Slot 0 of the scenario, on the grid; slot 13 is the first after the takeover's `now`. */
  const T0 = 1_000_000_000;
  const NOW = T0 + 12 * IV + 50;
  const slot = (k: number) => T0 + k * IV;
  const v = (k: number) => 100 + k * 0.02;
  const PARTS = 4;
  const lookup = { registerMax: () => undefined };
  const part = partitionOfDevice('plant', 'm', PARTS);
  const meter = (k: number): Reading => ({
    site: 'plant',
    kind: 'water-meter',
    device: 'm',
    ts: slot(k),
    fields: { volume_m3: v(k) },
  });

  /**
   * The dead owner writes slots 0..`lastDead` and dies with its state in the shared store as of
   * slot 8; the survivor polled every slot but `missed` (kept in its ring), takes over at NOW with
   * the watermark's replay from slot 7, then polls slots 13..20 itself.
   */
  function takeover(opts: { lastDead: number; missed: number[]; fill: boolean }) {
    const influx = new Points();
    const dead = new Deriver(new MemStore(), lookup);
    for (let k = 0; k <= opts.lastDead; k++) {
      const r = meter(k);
      dead.apply(r, 'plant/m');
      influx.write(r.ts, r.fields);
    }
    const survivor = new Deriver(new MemStore(), lookup);
    const gate = new OwnershipGate(PARTS, { bytes: 1 << 20, windowMs: 60_000 });
    gate.attach({
      handleMessage: () => undefined,
      handleReading: (r) => {
        survivor.apply(r, `${r.site}/${r.device}`);
        influx.write(r.ts, r.fields);
        return null;
      },
    });
    const zeros: number[] = [];
    const meters: ReplayMeters = {
      chainEnd: (site, kind, device) => survivor.chainEnd(kind, `${site}/${device}`),
      zeroConsumption: (_s, _k, _d, ts) => {
        zeros.push(ts);
        influx.write(ts, { consumption_m3: 0 });
      },
    };
    if (opts.fill) gate.attachMeters(meters);
    for (let k = 0; k <= 12; k++) if (!opts.missed.includes(k)) gate.handleReading(meter(k), slot(k) + 10);
    survivor.restore([{ key: 'plant/m', ts: slot(8), index: v(8) }]);
    gate.acquire(new Map([[part, slot(7)]]), NOW);
    for (let k = 13; k <= 20; k++) if (!opts.missed.includes(k)) gate.handleReading(meter(k), slot(k) + 10);
    return { influx, zeros, gate, excess: influx.booked() - (v(20) - v(0)) };
  }

  it('without gaps nothing extra is written and the sum is exact', () => {
    const t = takeover({ lastDead: 12, missed: [], fill: true });
    expect(t.zeros).toEqual([]);
    expect(t.gate.filledSlots).toBe(0);
    expect(Math.abs(t.excess)).toBeLessThan(1e-9);
  });

  it('a slot the dead owner wrote after its watermark and the survivor missed is booked once', () => {
    const t = takeover({ lastDead: 12, missed: [10], fill: true });
    expect(t.zeros).toEqual([slot(10)]);
    // The dead owner's index stays at that slot; only its consumption was replaced.
    expect(t.influx.bySlot.get(slot(10))).toEqual({ volume: v(10), consumption: 0 });
    expect(Math.abs(t.excess)).toBeLessThan(1e-9);
    // Unwired, the old behaviour: that slot's consumption booked twice.
    expect(takeover({ lastDead: 12, missed: [10], fill: false }).excess).toBeCloseTo(0.02, 9);
  });

  it('several missed slots, and the last ones before the takeover (after the replayed readings)', () => {
    const t = takeover({ lastDead: 12, missed: [9, 10, 12], fill: true });
    expect(t.zeros).toEqual([slot(9), slot(10), slot(12)]);
    expect(Math.abs(t.excess)).toBeLessThan(1e-9);
    expect(takeover({ lastDead: 12, missed: [9, 10, 12], fill: false }).excess).toBeCloseTo(0.06, 9);
  });

  it('a slot the dead owner never wrote gets a harmless zero point', () => {
    const t = takeover({ lastDead: 9, missed: [10], fill: true });
    expect(t.zeros).toEqual([slot(10)]);
    expect(t.influx.bySlot.get(slot(10))).toEqual({ consumption: 0 });
    expect(Math.abs(t.excess)).toBeLessThan(1e-9);
  });

  it('a slot missed after the takeover is not filled (the survivor books it alone)', () => {
    const t = takeover({ lastDead: 12, missed: [15], fill: true });
    expect(t.zeros).toEqual([]);
    expect(Math.abs(t.excess)).toBeLessThan(1e-9);
  });

  it('devices that are not meters get no zero points', () => {
    const gate = new OwnershipGate(PARTS, { bytes: 1 << 20, windowMs: 60_000 });
    gate.attach({ handleMessage: () => undefined, handleReading: () => null });
    const survivor = new Deriver(new MemStore(), lookup);
    const zeros: number[] = [];
    gate.attachMeters({
      chainEnd: (site, kind, device) => survivor.chainEnd(kind, `${site}/${device}`),
      zeroConsumption: (_s, _k, _d, ts) => void zeros.push(ts),
    });
    for (const k of [0, 1, 4, 5])
      gate.handleReading(
        { site: 'plant', kind: 'env-probe', device: 'm', ts: slot(k), fields: { temperature_c: 20 } },
        slot(k) + 10,
      );
    gate.acquire(new Map([[part, slot(0)]]), NOW);
    expect(zeros).toEqual([]);
  });
});

describe('the zero consumption line', () => {
  it('holds only consumption_m3 = 0 at the slot, beside the readings’ lines, which it leaves as they are', () => {
    const registry = new DeviceRegistry([]);
    const lines: string[] = [];
    const p = new IngestPipeline(
      configSchema.parse({}),
      registry,
      new Deriver(new MemStore(), registry),
      { appendBytes: (src, start, end) => void lines.push(src.toString('utf8', start, end)) },
      null,
      pino({ level: 'silent' }),
    );
    const T = 1767225600000;
    const r = (ts: number, v: number): Reading => ({
      site: 'plant',
      kind: 'water-meter',
      device: 'm-1',
      ts,
      fields: { volume_m3: v },
    });
    expect(p.handleReading(r(T, 100), T)).toBeNull();
    p.writeZeroConsumption('plant', 'water-meter', 'm-1', T + 200);
    expect(p.handleReading(r(T + 400, 100.5), T + 400)).toBeNull();
    // A device id the topic rules refuse: nothing written, no throw.
    p.writeZeroConsumption('plant', 'water-meter', 'bad/id', T + 200);
    expect(lines).toEqual([
      `water_meter,device=m-1,site=plant volume_m3=100 ${T}\n`,
      `water_meter,device=m-1,site=plant consumption_m3=0 ${T + 200}\n`,
      `water_meter,device=m-1,site=plant volume_m3=100.5,consumption_m3=0.5 ${T + 400}\n`,
    ]);
  });
});
