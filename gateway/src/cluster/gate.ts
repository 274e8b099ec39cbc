import type { SourceRejection } from '../core/source.js';
import type { Reading } from '../core/types.js';
import { partitionOfDevice, partitionOfTopic } from './partition.js';
import { ReplayRing } from './replay-ring.js';

/** The ingest pipeline as the gate hands readings on to it (the sources' context calls the gate instead). */
export interface GatedPipeline {
  handleReading(r: Reading, now: number): SourceRejection | null;
  handleMessage(topic: string, payload: Buffer, now: number): void;
}

/** Topics remembered at most; beyond, a message of a partition not owned is not kept for replay. */
const TOPICS_MAX = 1_000_000;

/**
 * The ownership filter of cluster mode (ADR 0150), put between the sources and the ingest pipeline
 * by the composition root only when clustered. A message of an owned partition goes to the pipeline;
 * any other is copied into the replay ring. Taking a partition replays its entries newer than the
 * previous owner's durable watermark, synchronously, before its new messages are processed.
 */
export class OwnershipGate implements GatedPipeline {
  /** 1 where this member processes the partition. */
  readonly owned: Uint8Array;
  private readonly ring: ReplayRing;
  private readonly topicIds = new Map<string, number>();
  private readonly topics: string[] = [];
  private readonly topicPartition: number[] = [];
  private target?: GatedPipeline;
  replayed = 0;
  /** Polled readings (OPC UA, Modbus, M-Bus) of partitions owned elsewhere: the owner polls them too. */
  skippedReadings = 0;

  constructor(
    readonly partitions: number,
    replay: { bytes: number; windowMs: number },
  ) {
    this.owned = new Uint8Array(partitions);
    this.ring = new ReplayRing(replay.bytes, replay.windowMs);
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
    if (this.owned[partitionOfDevice(r.site, r.device, this.partitions)] === 1)
      return this.target!.handleReading(r, now);
    this.skippedReadings++;
    return null;
  };

  /**
   * Starts processing `parts`, after replaying, oldest first, every kept message of each received
   * at or after its `from` (local epoch ms). Returns how many messages were replayed.
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

  ringStats(): { entries: number; oldestAgeMs: number | null; overruns: number; oversized: number } {
    const oldest = this.ring.oldestAt;
    return {
      entries: this.ring.size,
      oldestAgeMs: Number.isNaN(oldest) ? null : Date.now() - oldest,
      overruns: this.ring.overruns,
      oversized: this.ring.oversized,
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
