import { describe, expect, it } from 'vitest';
import { OwnershipGate, type GatedPipeline } from '../../gateway/src/cluster/gate.js';
import { partitionOfDevice } from '../../gateway/src/cluster/partition.js';
import { ReadingRing } from '../../gateway/src/cluster/reading-ring.js';
import type { Reading } from '../../gateway/src/core/types.js';
import { Deriver, type StateValue } from '../../gateway/src/ingest/derive.js';

const reading = (device: string, ts: number, fields: Reading['fields'] = { temperature_c: 20 }): Reading => ({
  site: 'plant',
  kind: 'env-probe',
  device,
  ts,
  fields,
});

describe('ring of polled readings', () => {
  it('keeps copies, replays per partition from its time, oldest first', () => {
    const ring = new ReadingRing(16, 60_000);
    const r = reading('a', 1, { temperature_c: 20 });
    ring.push(r, 3, 100);
    // The source may reuse its object: what was kept is what was polled.
    r.fields.temperature_c = 99;
    ring.push(reading('b', 2), 5, 150);
    ring.push(reading('a', 3), 3, 200);
    ring.push({ ...reading('a', 4), quality: 'bad', qualities: { temperature_c: 'bad' } }, 3, 300);
    const seen: Array<[string, number, number, unknown]> = [];
    const from = (p: number) => (p === 3 ? 150 : NaN);
    expect(ring.replay(from, (x, at) => void seen.push([x.device, x.ts, at, x.quality]))).toBe(2);
    expect(seen).toEqual([
      ['a', 3, 200, undefined],
      ['a', 4, 300, 'bad'],
    ]);
    const all: number[] = [];
    ring.replay(
      () => 0,
      (x) => void all.push(x.fields.temperature_c as number),
    );
    expect(all[0]).toBe(20);
  });

  it('overwrites the oldest when full and counts those still inside the window', () => {
    const ring = new ReadingRing(4, 1000);
    for (let i = 0; i < 6; i++) ring.push(reading('a', i), 0, 10_000 + i);
    expect(ring.size).toBe(4);
    expect(ring.overruns).toBe(2);
    expect(ring.oldestAt).toBe(10_002);
    // Entries older than the window are overwritten without counting: they were never needed.
    ring.push(reading('a', 7), 0, 20_000);
    expect(ring.overruns).toBe(2);
    const ts: number[] = [];
    ring.replay(
      () => 0,
      (x) => void ts.push(x.ts),
    );
    expect(ts).toEqual([3, 4, 5, 7]);
  });
});

describe('ownership gate with polled readings', () => {
  it('keeps the readings of partitions owned elsewhere and replays those after the watermark on takeover', () => {
    const gate = new OwnershipGate(4, { bytes: 1 << 20, windowMs: 60_000 });
    const seen: Array<{ r: Reading; at: number }> = [];
    const pipe: GatedPipeline = {
      handleMessage: () => undefined,
      handleReading: (r, at) => (seen.push({ r, at }), null),
    };
    gate.attach(pipe);
    const mine = partitionOfDevice('plant', 'dev-0', 4);
    let d = 1;
    while (partitionOfDevice('plant', `dev-${d}`, 4) === mine) d++;
    const theirs = partitionOfDevice('plant', `dev-${d}`, 4);
    gate.acquire(new Map([[mine, 0]]));

    // The owned path hands the source's own object on: nothing is copied or kept.
    const own = reading('dev-0', 1000);
    gate.handleReading(own, 1005);
    expect(seen[0]!.r).toBe(own);
    for (let k = 0; k < 5; k++) gate.handleReading(reading(`dev-${d}`, 1000 + k * 200), 1010 + k * 200);
    expect(seen).toHaveLength(1);
    expect(gate.skippedReadings).toBe(5);
    expect(gate.ringStats().readings.entries).toBe(5);

    // The previous owner's watermark: everything it received before 1400 is in InfluxDB.
    expect(gate.acquire(new Map([[theirs, 1400]]))).toBe(3);
    expect(seen.slice(1).map((s) => [s.r.ts, s.at])).toEqual([
      [1400, 1410],
      [1600, 1610],
      [1800, 1810],
    ]);
    // Owned now: the next polls go straight through.
    gate.handleReading(reading(`dev-${d}`, 2000), 2010);
    expect(seen).toHaveLength(5);
    expect(gate.skippedReadings).toBe(5);
  });
});

/**
 * What InfluxDB holds for a meter across a takeover, by slot: a later write of a slot replaces the
 * fields it carries (same series, same timestamp), keeps those it does not.
 */
class Points {
  readonly bySlot = new Map<number, { volume?: number; consumption?: number }>();
  write(r: Reading): void {
    const p = this.bySlot.get(r.ts) ?? {};
    if (typeof r.fields.volume_m3 === 'number') p.volume = r.fields.volume_m3;
    if (typeof r.fields.consumption_m3 === 'number') p.consumption = r.fields.consumption_m3;
    this.bySlot.set(r.ts, p);
  }
  booked(): number {
    let s = 0;
    for (const p of this.bySlot.values()) s += p.consumption ?? 0;
    return s;
  }
}

class MemStore {
  readonly rows = new Map<string, string>();
  loadState(): Map<string, string> {
    return new Map();
  }
  putState(key: string, value: StateValue): void {
    this.rows.set(key, String(value));
  }
}

describe('consumption across a replay of polled readings', () => {
  const meter = (ts: number, volume: number): Reading => ({
    site: 'plant',
    kind: 'water-meter',
    device: 'm',
    ts,
    fields: { volume_m3: volume },
  });
  const lookup = { registerMax: () => undefined };

  it('books the index difference once: the survivor’s polls overwrite the dead owner’s of the same slots', () => {
    const influx = new Points();
    // Both members poll every 200 ms slot; the survivor's poll of a slot reads a little more.
    const a = (k: number) => meter(k * 200, 100 + k * 0.02);
    const b = (k: number) => meter(k * 200, 100 + k * 0.02 + 0.001);
    const dead = new Deriver(new MemStore(), lookup);
    for (let k = 0; k <= 12; k++) {
      const r = a(k);
      dead.apply(r, 'plant/m');
      influx.write(r);
    }
    // Its state in the shared store is as of slot 8 (its watermark); it wrote up to slot 12, died.
    const survivor = new Deriver(new MemStore(), lookup);
    survivor.restore([{ key: 'plant/m', ts: 8 * 200, index: 100 + 8 * 0.02 }]);
    // The replay (from before the watermark, with the slack), then the survivor's own polls.
    for (let k = 6; k <= 20; k++) {
      const r = b(k);
      survivor.apply(r, 'plant/m');
      influx.write(r);
    }
    expect(influx.bySlot.size).toBe(21);
    expect(influx.booked()).toBeCloseTo(
      (b(20).fields.volume_m3 as number) - (a(0).fields.volume_m3 as number),
      9,
    );
  });

  it('the deriver alone books a slot twice that the dead owner wrote after its watermark and the survivor missed (the gate fills it: cluster-slot-gaps.test.ts)', () => {
    const influx = new Points();
    const v = (k: number) => 100 + k * 0.02;
    const dead = new Deriver(new MemStore(), lookup);
    for (let k = 0; k <= 12; k++) {
      const r = meter(k * 200, v(k));
      dead.apply(r, 'plant/m');
      influx.write(r);
    }
    const survivor = new Deriver(new MemStore(), lookup);
    survivor.restore([{ key: 'plant/m', ts: 8 * 200, index: v(8) }]);
    for (let k = 6; k <= 20; k++) {
      // Slot 10: the survivor's poll timed out; the dead owner's point and consumption stay.
      if (k === 10) continue;
      const r = meter(k * 200, v(k));
      survivor.apply(r, 'plant/m');
      influx.write(r);
    }
    expect(influx.booked()).toBeCloseTo(v(20) - v(0) + 0.02, 9);
  });
});
