/**
 * Local time of day in an IANA zone without Intl per reading: the UTC offset is looked up once per
 * UTC hour and cached. Zones change offset on whole UTC hours in practice, so the cache is exact
 * there; a zone with a half-hour transition is off by at most 30 minutes during that one hour.
 */
export class TzClock {
  private hour = NaN;
  private offsetMs = 0;
  private readonly fmt: Intl.DateTimeFormat | null;

  constructor(readonly timeZone: string) {
    this.fmt =
      timeZone === 'local'
        ? null
        : new Intl.DateTimeFormat('en-US', {
            timeZone,
            hourCycle: 'h23',
            year: 'numeric',
            month: 'numeric',
            day: 'numeric',
            hour: 'numeric',
            minute: 'numeric',
            second: 'numeric',
          });
  }

  offset(ts: number): number {
    const h = Math.floor(ts / 3_600_000);
    if (h !== this.hour) {
      this.hour = h;
      this.offsetMs = this.compute(h * 3_600_000);
    }
    return this.offsetMs;
  }

  /** Local minutes since midnight. */
  minuteOfDay(ts: number): number {
    const local = ts + this.offset(ts);
    return Math.floor((((local % 86_400_000) + 86_400_000) % 86_400_000) / 60_000);
  }

  /** Local day number since the epoch. */
  day(ts: number): number {
    return Math.floor((ts + this.offset(ts)) / 86_400_000);
  }

  private compute(ts: number): number {
    if (!this.fmt) return -new Date(ts).getTimezoneOffset() * 60_000;
    const p: Record<string, number> = {};
    for (const part of this.fmt.formatToParts(ts))
      if (part.type !== 'literal') p[part.type] = Number(part.value);
    const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
    return asUtc - ts;
  }
}
