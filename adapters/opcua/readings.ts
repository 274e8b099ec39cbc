import type { MetricValue, Quality, Reading } from '../../gateway/src/core/types.js';
import type { OpcuaNodeConfig } from './schema.js';

/** What the source needs from one OPC UA DataValue (kept free of node-opcua for unit tests). */
export interface OpcuaSample {
  value: unknown;
  /** The StatusCode's severity bits: 0b00 good, 0b01 uncertain, 0b10/0b11 bad (Part 4, 7.39). */
  statusValue: number;
  sourceTimestamp?: Date | null;
  serverTimestamp?: Date | null;
}

export function qualityOf(statusValue: number): Quality {
  const severity = statusValue >>> 30;
  return severity === 0 ? 'good' : severity === 1 ? 'uncertain' : 'bad';
}

/** The device's clock first (the instant it was measured), then the server's, then ours. */
export function timestampOf(s: OpcuaSample, now: number): number {
  const t = s.sourceTimestamp?.getTime() ?? s.serverTimestamp?.getTime();
  // node-opcua reports an absent timestamp as the OPC UA minimum date (1601).
  return t !== undefined && Number.isFinite(t) && t > 0 ? t : now;
}

/** A number (scaled) or boolean; anything else (null, arrays, strings) is not a metric value. */
export function valueOf(
  s: OpcuaSample,
  node: Pick<OpcuaNodeConfig, 'scale' | 'offset'>,
): MetricValue | undefined {
  const v = s.value;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v) * node.scale + node.offset;
  if (typeof v === 'number' && Number.isFinite(v)) {
    const out = v * node.scale + node.offset;
    // Keep float noise of scale/offset out of stored values (0.1 * 3 → 0.30000000000000004).
    return node.scale === 1 && node.offset === 0 ? v : Math.round(out * 1e9) / 1e9;
  }
  return undefined;
}

/**
 * Collects the values of one publish response and hands them on as Readings: one per device and
 * source timestamp, each value with its own quality (ADR 0070), so values measured together stay
 * one point in InfluxDB and a failed sensor does not mark the good values beside it as bad.
 */
export class ReadingBatcher {
  private pending = new Map<string, Reading>();
  private scheduled = false;

  constructor(private readonly emit: (readings: Reading[]) => void) {}

  add(node: OpcuaNodeConfig, sample: OpcuaSample, now: number): boolean {
    const value = valueOf(sample, node);
    if (value === undefined) return false;
    const quality = qualityOf(sample.statusValue);
    const ts = timestampOf(sample, now);
    const key = `${node.site}\u0000${node.device}\u0000${node.kind}\u0000${ts}`;
    let r = this.pending.get(key);
    if (!r) {
      r = { site: node.site, kind: node.kind, device: node.device, ts, fields: {} };
      this.pending.set(key, r);
    }
    r.fields[node.metric] = value;
    if (quality !== 'good') {
      (r.qualities ??= {})[node.metric] = quality;
      r.quality = r.quality === 'bad' || quality === 'bad' ? 'bad' : 'uncertain';
    } else if (r.qualities !== undefined && node.metric in r.qualities) {
      // The same node twice in one response: its newest status counts.
      delete r.qualities[node.metric];
      const left = Object.values(r.qualities);
      if (left.length === 0) {
        delete r.qualities;
        delete r.quality;
      } else r.quality = left.includes('bad') ? 'bad' : 'uncertain';
    }
    if (!this.scheduled) {
      this.scheduled = true;
      // A publish response's notifications are dispatched in one synchronous loop: flushing
      // after it groups them without holding values back for longer than that loop.
      setImmediate(() => this.flush());
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0) return;
    const out = [...this.pending.values()];
    this.pending.clear();
    this.emit(out);
  }
}
