import type { SourceRejection } from '../core/source.js';
import type { Reading } from '../core/types.js';
import { partitionOfDevice, partitionOfTopic } from './partition.js';
import { ReadingRing } from './reading-ring.js';
import { ReplayRing } from './replay-ring.js';

/** The ingest pipeline as the gate hands readings on to it (the sources' context calls the gate instead). */
export interface GatedPipeline {
  handleReading(r: Reading, now: number): SourceRejection | null;
  handleMessage(topic: string, payload: Buffer, now: number): void;
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
  replayed = 0;
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
   * replayed.
   */
  acquire(parts: ReadonlyMap<number, number>): number {
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
    if (target)
      n += this.readings.replay(
        (p) => from[p]!,
        (r, at) => void target.handleReading(r, at),
      );
    for (const p of parts.keys()) this.owned[p] = 1;
    this.replayed += n;
    return n;
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
