/** The outbox's counters as the watermark reads them (storage/outbox.ts `stats()` and `storedLines()`). */
export interface OutboxCounters {
  stats(): { pendingLines: number; committedLines: number };
  storedLines(): number;
}

const SAMPLES_MAX = 600;

/**
 * "Everything this member's outbox took before t has left it" (written to InfluxDB, or parked or
 * dropped by the outbox's own policy), the durable watermark of ADR 0150. Sampled on a timer from
 * the outbox's counters, never per reading: a sample is (time, lines appended so far); the
 * watermark is the latest sample whose lines have all been removed since.
 */
export class DurableWatermark {
  private readonly times: number[] = [];
  private readonly appended: number[] = [];
  private mark: number;

  constructor(
    private readonly outbox: OutboxCounters,
    now: number,
  ) {
    this.mark = now;
  }

  /** Takes a sample and advances the watermark; returns it (local epoch ms). */
  sample(now: number): number {
    const s = this.outbox.stats();
    const stored = this.outbox.storedLines();
    // Lines appended so far: committed ones plus those still buffered or being committed.
    const appended = s.committedLines + (s.pendingLines - stored);
    // Lines that left the outbox: committed ones no longer stored.
    const removed = s.committedLines - stored;
    this.times.push(now);
    this.appended.push(appended);
    let k = -1;
    for (let i = 0; i < this.times.length && this.appended[i]! <= removed; i++) k = i;
    if (k >= 0) {
      this.mark = this.times[k]!;
      this.times.splice(0, k + 1);
      this.appended.splice(0, k + 1);
    }
    if (this.times.length > SAMPLES_MAX) {
      this.times.splice(0, this.times.length - SAMPLES_MAX);
      this.appended.splice(0, this.appended.length - SAMPLES_MAX);
    }
    return this.mark;
  }

  get value(): number {
    return this.mark;
  }
}
