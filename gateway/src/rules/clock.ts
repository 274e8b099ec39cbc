/**
 * The time the rules tick with. Readings carry their own timestamps and the evaluators compare
 * them with the tick time, so the two must agree: when readings arrive in real time it is the
 * wall clock; when a simulator replays a day in a minute (past timestamps, far apart) it is the
 * newest reading's time plus the wall time since it arrived. Never ahead of the wall clock, so a
 * device with a clock running fast cannot make every other device look silent.
 *
 * `observe` is on the hot path: one comparison. The wall time of a new maximum is taken at the
 * next `now()` (a tick), which is as precise as the ticks themselves.
 */
export class EventClock {
  private maxTs = -Infinity;
  private seenMax = -Infinity;
  private seenAtWall = 0;

  constructor(private readonly wall: () => number = Date.now) {}

  /**
   * Continues from a saved state: the newest reading time known then and the wall time it was
   * saved, so a replay stopped and restarted does not jump to the wall clock and find every
   * device silent.
   */
  seed(maxTs: number, savedAtWall: number): void {
    if (!Number.isFinite(maxTs) || maxTs <= this.maxTs) return;
    this.maxTs = this.seenMax = maxTs;
    this.seenAtWall = Math.min(savedAtWall, this.wall());
  }

  observe(ts: number): void {
    if (ts > this.maxTs) this.maxTs = ts;
  }

  now(): number {
    const wall = this.wall();
    if (this.maxTs === -Infinity) return wall;
    if (this.maxTs !== this.seenMax) {
      this.seenMax = this.maxTs;
      this.seenAtWall = wall;
    }
    return Math.min(wall, this.seenMax + (wall - this.seenAtWall));
  }
}
