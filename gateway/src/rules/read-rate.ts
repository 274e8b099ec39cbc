import type { ReadRateRule } from './schema.js';
import type { MeterClass } from './types.js';

export interface ReadRateInput {
  site: string;
  meterClass: MeterClass;
  /** Last reading time; NaN or undefined for a meter that never reported. */
  lastSeen: number | undefined;
  /**
   * Since when the gateway has known the meter. One that never reported counts only once it has
   * been known for a whole period: a meter declared yesterday has not missed a monthly read.
   */
  knownSince?: number;
  /** Which meter (for a report of a period that has ended, judged against InfluxDB's history). */
  device?: string;
  kind?: string;
}

export interface ReadRateEntry {
  site: string;
  meterClass: MeterClass;
  expected: number;
  read: number;
  /** read / expected, 0..1. */
  rate: number;
  target: number;
  windowDays: number;
  ok: boolean;
}

/**
 * The share of meters that reported within each class's period (a rolling window of
 * `windowDays`, so it can be judged at any moment rather than only at the end of a month).
 */
export function computeReadRates(
  meters: Iterable<ReadRateInput>,
  now: number,
  rule: ReadRateRule,
): ReadRateEntry[] {
  const bySite = new Map<string, Map<MeterClass, { expected: number; read: number }>>();
  for (const m of meters) {
    const windowMs = rule.targets[m.meterClass].windowDays * 86_400_000;
    if (m.lastSeen === undefined && m.knownSince !== undefined && now - m.knownSince < windowMs) continue;
    let classes = bySite.get(m.site);
    if (!classes) bySite.set(m.site, (classes = new Map()));
    let c = classes.get(m.meterClass);
    if (!c) classes.set(m.meterClass, (c = { expected: 0, read: 0 }));
    c.expected++;
    if (m.lastSeen !== undefined && now - m.lastSeen <= windowMs) c.read++;
  }
  const out: ReadRateEntry[] = [];
  for (const [site, classes] of bySite) {
    for (const [meterClass, c] of classes) {
      const t = rule.targets[meterClass];
      const rate = c.expected === 0 ? 1 : c.read / c.expected;
      // A tiny epsilon: 49/50 is 0.98 exactly and must meet a 98 % target despite float rounding.
      out.push({
        site,
        meterClass,
        ...c,
        rate,
        target: t.min,
        windowDays: t.windowDays,
        ok: rate + 1e-9 >= t.min,
      });
    }
  }
  return out;
}

const DAY_MS = 86_400_000;

/**
 * Read rates of a period that has ended (`[from, to)`, a report's month), from history rather than
 * last-seen times: `reported(kind, start, end)` answers which `site/device` wrote in a window (InfluxDB).
 * A monthly class is judged over the month; a longer class (in-home meters, quarterly) over its
 * window ending with the month. Each (kind, window) is asked once.
 */
export async function readRatesFromHistory(
  subjects: readonly { rule: ReadRateRule; meters: readonly ReadRateInput[] }[],
  from: number,
  to: number,
  reported: (kind: string, start: number, end: number) => Promise<Set<string>>,
): Promise<ReadRateEntry[]> {
  const asked = new Map<string, Set<string>>();
  const out: ReadRateEntry[] = [];
  for (const { rule, meters } of subjects) {
    const inputs: ReadRateInput[] = [];
    for (const m of meters) {
      if (m.kind === undefined || m.device === undefined) continue;
      const windowDays = rule.targets[m.meterClass].windowDays;
      const start = windowDays <= 31 ? from : to - windowDays * DAY_MS;
      const key = `${m.kind}\u0000${start}`;
      let set = asked.get(key);
      if (!set) asked.set(key, (set = await reported(m.kind, start, to)));
      // Judged at the period's last instant: a meter that wrote in the window was read then.
      inputs.push({
        site: m.site,
        meterClass: m.meterClass,
        lastSeen: set.has(`${m.site}/${m.device}`) ? to - 1 : undefined,
        knownSince: m.knownSince,
      });
    }
    out.push(...computeReadRates(inputs, to - 1, rule));
  }
  return out;
}
