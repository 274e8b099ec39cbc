import type { DeviceStateTracker } from './device-state.js';
import type { MeterRow, RuleRow } from './device-state-store.js';

/** What one renewal writes (ClusterMember.commit): the watermark, for which partitions, and their state. */
export interface CommitPlan {
  /** The partitions whose durable watermark is recorded (and whose state is written). */
  settled: number[];
  /** The watermark recorded, on PostgreSQL's clock. */
  durable: number;
  /**
   * Settled partitions whose watermark is earlier than `durable` (PostgreSQL's clock): those this
   * member stopped processing before it, whose readings after the stop it never processed.
   */
  earlier: Map<number, number>;
  rules: RuleRow[];
  meters: MeterRow[];
}

/**
 * The watermark and device state a renewal at watermark `mark` (local clock) writes (ADR 0151).
 * The watermark is `mark`, or earlier when a merged capture not written yet holds changes made
 * before `mark` (the tracker's limit): recording `mark` then would claim state the shared store
 * does not hold, and the next owner would book again what this member wrote. It is recorded only
 * for partitions taken strictly before it (`acquiredAt`, local clock, 0 = never): a partition's
 * replayed readings are processed at its take, and their state is in captures tagged after it.
 * A partition no longer processed here (after a fence, in a hand-over) records at most the time
 * its processing stopped (`processedUntil`, local clock, Infinity while processed; ADR 0167): the
 * outbox being durable later says nothing about readings of it this member dropped since.
 */
export function planCommit(
  mark: number,
  acquiredAt: ArrayLike<number>,
  offset: number,
  state?: DeviceStateTracker,
  processedUntil?: (partition: number) => number,
): CommitPlan {
  const upTo = state ? state.limit(mark) : mark;
  const settled: number[] = [];
  const earlier = new Map<number, number>();
  for (let p = 0; p < acquiredAt.length; p++) {
    const at = acquiredAt[p]!;
    if (at <= 0) continue;
    const until = processedUntil ? processedUntil(p) : Infinity;
    const end = Math.min(upTo, until);
    if (end <= at) continue;
    settled.push(p);
    if (end < upTo) earlier.set(p, Math.round(end + offset));
  }
  const ok = new Set(settled);
  const rows = state?.settled(mark, (p) => ok.has(p));
  return {
    settled,
    durable: Math.round(upTo + offset),
    earlier,
    rules: rows?.rules ?? [],
    meters: rows?.meters ?? [],
  };
}
