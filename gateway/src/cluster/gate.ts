import type { SourceRejection } from '../core/source.js';
import type { Reading } from '../core/types.js';
import { partitionOfDevice, partitionOfTopic } from './partition.js';
import { ReadingRing } from './reading-ring.js';
import { ReplayRing } from './replay-ring.js';
import { missedSlots, slotStep } from './slot-gaps.js';

/** The ingest pipeline as the gate hands readings on to it (the sources' context calls the gate instead). */
export interface GatedPipeline {
  handleReading(r: Reading, now: number): SourceRejection | null;
  handleMessage(topic: string, payload: Buffer, now: number): void;
}

/**
 * The meters' consumption chains as the replay of a takeover needs them (ADR 0177 addendum), wired
 * by the composition root to the deriver and the pipeline.
 */
export interface ReplayMeters {
  /** Timestamp of a meter's last accepted index (restored or replayed); undefined: none, or not a meter. */
  chainEnd(site: string, kind: string, device: string): number | undefined;
  /** Writes a point holding only `consumption_m3 = 0` at `ts` (the other fields of that point stay). */
  zeroConsumption(site: string, kind: string, device: string, ts: number): void;
}

/** One polled device of a partition taken over, with its poll interval told from the ring. */
interface GapPlan {
  site: string;
  kind: string;
  device: string;
  step: number;
  /** Slots before this cannot hold a point of the dead owner newer than its watermark. */
  notBefore: number;
}

/** Topics remembered at most; beyond, a message of a partition not owned is not kept for replay. */
const TOPICS_MAX = 1_000_000;

/**
 * Bytes of `replayBytes` counted per polled reading kept (a copied Reading of a few fields is a few
 * hundred bytes of heap): the readings ring holds about as much memory as the payload arena.
 */
const BYTES_PER_READING = 512;

/**
 * The ownership filter of cluster mode (ADR 0150), put between the sources and the ingest pipeline
 * by the composition root only when clustered. A message of an owned partition goes to the pipeline;
 * any other is copied into the replay ring. Taking a partition replays its entries newer than the
 * previous owner's durable watermark, synchronously, before its new messages are processed. Polled
 * readings (OPC UA, Modbus, M-Bus) and decoded Sparkplug B readings of partitions not owned are kept
 * likewise, in a ring of readings replayed from the same watermark (ADR 0177, ADR 0181).
 */
export class OwnershipGate implements GatedPipeline {
  /** 1 where this member processes the partition. */
  readonly owned: Uint8Array;
  private readonly ring: ReplayRing;
  private readonly readings: ReadingRing;
  private readonly topicIds = new Map<string, number>();
  private readonly topics: string[] = [];
  private readonly topicPartition: number[] = [];
  private target?: GatedPipeline;
  private meters?: ReplayMeters;
  replayed = 0;
  /** Consumption-only zero points written at slots a replayed meter chain skipped (ADR 0177 addendum). */
  filledSlots = 0;
  /**
   * Structured readings (OPC UA, Modbus, M-Bus, Sparkplug B) of partitions owned elsewhere: the owner
   * polls or decodes them too; kept in the readings ring for a takeover.
   */
  skippedReadings = 0;

  constructor(
    readonly partitions: number,
    replay: { bytes: number; windowMs: number; readings?: number },
  ) {
    this.owned = new Uint8Array(partitions);
    this.ring = new ReplayRing(replay.bytes, replay.windowMs);
    this.readings = new ReadingRing(
      replay.readings ?? Math.max(1024, Math.floor(replay.bytes / BYTES_PER_READING)),
      replay.windowMs,
    );
  }

  /** The pipeline behind the gate; set before any source starts. */
  attach(target: GatedPipeline): void {
    this.target = target;
  }

  /** The meters' chains, for the gap filling of a takeover's replay; without, no gap is filled. */
  attachMeters(meters: ReplayMeters): void {
    this.meters = meters;
  }

  handleMessage = (topic: string, payload: Buffer, now: number): void => {
    let id = this.topicIds.get(topic);
    if (id === undefined) id = this.learn(topic);
    const p = id < 0 ? partitionOfTopic(topic, this.partitions) : this.topicPartition[id]!;
    if (this.owned[p] === 1) return this.target!.handleMessage(topic, payload, now);
    if (id >= 0) this.ring.push(id, payload, now);
    else this.ring.overruns++;
  };

  handleReading = (r: Reading, now: number): SourceRejection | null => {
    const p = partitionOfDevice(r.site, r.device, this.partitions);
    if (this.owned[p] === 1) return this.target!.handleReading(r, now);
    this.readings.push(r, p, now);
    this.skippedReadings++;
    return null;
  };

  /** Whether this member processes the partition of (site, device) now (a Sparkplug rebirth request, ADR 0181). */
  owns = (site: string, device: string): boolean =>
    this.owned[partitionOfDevice(site, device, this.partitions)] === 1;

  /**
   * Starts processing `parts`, after replaying, oldest first, every kept message and polled reading
   * of each received at or after its `from` (local epoch ms): the messages, then the readings (a
   * device comes by one kind of source, so each device's order is kept). Returns how many were
   * replayed. `now` (wall clock, ms): up to where a replayed meter's skipped slots are filled.
   */
  acquire(parts: ReadonlyMap<number, number>, now = Date.now()): number {
    if (parts.size === 0) return 0;
    const from = new Float64Array(this.partitions).fill(NaN);
    for (const [p, t] of parts) if (this.owned[p] === 0) from[p] = t;
    const target = this.target;
    let n = 0;
    if (target)
      n = this.ring.replay(
        (id) => from[this.topicPartition[id]!]!,
        (id, payload, at) => target.handleMessage(this.topics[id]!, payload, at),
      );
    if (target) {
      const meters = this.meters;
      const plan = meters ? this.gapPlan(from) : undefined;
      n += this.readings.replay(
        (p) => from[p]!,
        (r, at) => {
          if (plan && meters) {
            const g = plan.get(`${r.site}/${r.device}`);
            if (g) this.fill(meters, g, r.ts);
          }
          void target.handleReading(r, at);
        },
      );
      // Slots skipped after the last replayed reading, up to now: the dead owner may have written
      // them; this member's next poll then books them once.
      if (plan && meters) {
        const until = now + 1;
        for (const g of plan.values()) this.fill(meters, g, until);
      }
    }
    for (const p of parts.keys()) this.owned[p] = 1;
    this.replayed += n;
    return n;
  }

  /**
   * The polled devices of the partitions being taken over (`from[p]` set), each with its poll
   * interval told from this member's own readings in the ring (0: cannot be told, nothing filled).
   * Built once per takeover, never on the live path.
   */
  private gapPlan(from: Float64Array): Map<string, GapPlan> {
    const ts = new Map<string, { g: GapPlan; ts: number[] }>();
    this.readings.forEach((r, p) => {
      const f = from[p]!;
      if (Number.isNaN(f)) return;
      const key = `${r.site}/${r.device}`;
      let e = ts.get(key);
      if (!e) {
        e = {
          g: { site: r.site, kind: r.kind, device: r.device, step: 0, notBefore: f - this.readings.windowMs },
          ts: [],
        };
        ts.set(key, e);
      }
      e.ts.push(r.ts);
    });
    const plan = new Map<string, GapPlan>();
    for (const [key, e] of ts) {
      e.g.step = slotStep(e.ts);
      if (e.g.step > 0) plan.set(key, e.g);
    }
    return plan;
  }

  /** Zero points at the slots the meter's chain skips before `next` (see slot-gaps.ts). */
  private fill(meters: ReplayMeters, g: GapPlan, next: number): void {
    const prev = meters.chainEnd(g.site, g.kind, g.device);
    if (prev === undefined) return;
    for (const t of missedSlots(prev, next, g.step, g.notBefore)) {
      meters.zeroConsumption(g.site, g.kind, g.device, t);
      this.filledSlots++;
    }
  }

  release(parts: Iterable<number>): void {
    for (const p of parts) this.owned[p] = 0;
  }

  ownedList(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.partitions; p++) if (this.owned[p] === 1) out.push(p);
    return out;
  }

  /** The payload ring's figures; `overruns` counts both rings' (one metric for a lost replay). */
  ringStats(): {
    entries: number;
    oldestAgeMs: number | null;
    overruns: number;
    oversized: number;
    readings: { entries: number; capacity: number; oldestAgeMs: number | null; overruns: number };
  } {
    const now = Date.now();
    const oldest = this.ring.oldestAt;
    const oldestReading = this.readings.oldestAt;
    return {
      entries: this.ring.size,
      oldestAgeMs: Number.isNaN(oldest) ? null : now - oldest,
      overruns: this.ring.overruns + this.readings.overruns,
      oversized: this.ring.oversized,
      readings: {
        entries: this.readings.size,
        capacity: this.readings.capacity,
        oldestAgeMs: Number.isNaN(oldestReading) ? null : now - oldestReading,
        overruns: this.readings.overruns,
      },
    };
  }

  private learn(topic: string): number {
    if (this.topics.length >= TOPICS_MAX) return -1;
    const id = this.topics.length;
    this.topics.push(topic);
    this.topicPartition.push(partitionOfTopic(topic, this.partitions));
    this.topicIds.set(topic, id);
    return id;
  }
}
