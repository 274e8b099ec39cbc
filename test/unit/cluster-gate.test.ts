import { describe, expect, it } from 'vitest';
import { OwnershipGate, type GatedPipeline } from '../../gateway/src/cluster/gate.js';
import { partitionOfDevice, partitionOfTopic } from '../../gateway/src/cluster/partition.js';
import { ReplayRing } from '../../gateway/src/cluster/replay-ring.js';
import { DurableWatermark } from '../../gateway/src/cluster/watermark.js';
import type { Reading } from '../../gateway/src/core/types.js';

const topic = (d: number, site = 'plant') => `facility/${site}/env-probe/dev-${d}/telemetry`;

function recorder(): GatedPipeline & { seen: Array<{ topic: string; payload: string; at: number }> } {
  const seen: Array<{ topic: string; payload: string; at: number }> = [];
  return {
    seen,
    handleMessage: (t, p, at) => void seen.push({ topic: t, payload: p.toString(), at }),
    handleReading: (r, at) => (seen.push({ topic: `${r.site}/${r.device}`, payload: '', at }), null),
  };
}

describe('device partitions', () => {
  it('puts a topic and a polled reading of one device in the same partition, and spreads devices', () => {
    const counts = new Array<number>(16).fill(0);
    for (let d = 0; d < 4000; d++) {
      const p = partitionOfTopic(topic(d), 16);
      expect(p).toBe(partitionOfDevice('plant', `dev-${d}`, 16));
      counts[p]!++;
    }
    // 250 expected per partition; a hash that clumps would leave some nearly empty.
    for (const c of counts) expect(c).toBeGreaterThan(150);
  });

  it('hashes a topic off the convention whole, and always the same way', () => {
    const p = partitionOfTopic('other/thing', 64);
    expect(p).toBe(partitionOfTopic('other/thing', 64));
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(64);
  });
});

describe('replay ring', () => {
  it('overwrites the oldest entries first and counts those still inside the window', () => {
    const ring = new ReplayRing(64 * 1024, 1000, 1024);
    const payload = Buffer.alloc(100, 1);
    for (let i = 0; i < 2000; i++) ring.push(i % 7, payload, 10_000 + i);
    expect(ring.size).toBeLessThanOrEqual(1024);
    expect(ring.oldestAt).toBe(10_000 + 2000 - ring.size);
    expect(ring.overruns).toBeGreaterThan(0);
    const seen: number[] = [];
    ring.replay(
      () => 11_990,
      (_id, _p, at) => void seen.push(at),
    );
    expect(seen).toEqual([...Array(10).keys()].map((k) => 11_990 + k));
  });
});

describe('ownership gate', () => {
  it('hands owned partitions to the pipeline and keeps the rest for a takeover, replayed from the watermark', () => {
    const gate = new OwnershipGate(4, { bytes: 1 << 20, windowMs: 60_000 });
    const pipe = recorder();
    gate.attach(pipe);
    const mine = partitionOfTopic(topic(1), 4);
    let other = 2;
    while (partitionOfTopic(topic(other), 4) === mine) other++;
    const theirs = partitionOfTopic(topic(other), 4);
    gate.acquire(new Map([[mine, 0]]));
    gate.handleMessage(topic(1), Buffer.from('a'), 100);
    gate.handleMessage(topic(other), Buffer.from('b1'), 101);
    gate.handleMessage(topic(other), Buffer.from('b2'), 205);
    expect(pipe.seen.map((s) => s.payload)).toEqual(['a']);

    // The previous owner wrote up to 200: only what came after is replayed, with its receipt time.
    expect(gate.acquire(new Map([[theirs, 200]]))).toBe(1);
    gate.handleMessage(topic(other), Buffer.from('b3'), 300);
    expect(pipe.seen.map((s) => [s.payload, s.at])).toEqual([
      ['a', 100],
      ['b2', 205],
      ['b3', 300],
    ]);

    gate.release([mine]);
    gate.handleMessage(topic(1), Buffer.from('a2'), 400);
    expect(pipe.seen).toHaveLength(3);
    const reading: Reading = { site: 'plant', kind: 'env-probe', device: `dev-${other}`, ts: 1, fields: {} };
    gate.handleReading(reading, 500);
    gate.handleReading({ ...reading, device: 'dev-1' }, 501);
    expect(pipe.seen).toHaveLength(4);
    expect(gate.skippedReadings).toBe(1);
  });
});

describe('durable watermark', () => {
  it('advances to the last sample whose lines have all left the outbox', () => {
    const s = { pendingLines: 0, committedLines: 0, stored: 0 };
    const outbox = {
      stats: () => ({ pendingLines: s.pendingLines, committedLines: s.committedLines }),
      storedLines: () => s.stored,
    };
    const w = new DurableWatermark(outbox, 0);
    expect(w.sample(1000)).toBe(1000);
    // 10 lines appended and committed, not yet written.
    Object.assign(s, { pendingLines: 10, committedLines: 10, stored: 10 });
    expect(w.sample(2000)).toBe(1000);
    // 5 more buffered; the first 10 written.
    Object.assign(s, { pendingLines: 5, committedLines: 10, stored: 0 });
    expect(w.sample(3000)).toBe(2000);
    Object.assign(s, { pendingLines: 0, committedLines: 15, stored: 0 });
    expect(w.sample(4000)).toBe(4000);
  });
});
