import type { Logger } from '../core/log.js';
import { RateLimitedLog } from '../core/log.js';
import {
  newDeviceRefs,
  type DeviceRefs,
  type Reading,
  type ReadingListener,
  type MetricValue,
} from '../core/types.js';
import type { GatewayConfig } from '../config/schema.js';
import { BUILTIN_KINDS, measurementOf, type KindDef } from './catalogue.js';
import { PayloadValidator, checkIds, splitTopic, type TopicInfo } from './decode.js';
import { fieldKey, LineBuilder } from './line-builder.js';
import { PayloadScanner } from './scan.js';
import { REJECT_REASONS, Rejection, type RejectReason } from './reasons.js';

/** Where accepted lines go (the durable outbox). */
export interface LineSink {
  /** One line, newline included, as UTF-8 in `src[start, end)` (copied before the call returns). */
  appendBytes(src: Buffer, start: number, end: number): void;
}

/** Derived values (consumption, dew point); mutates the reading's fields. */
export interface ReadingDeriver {
  apply(reading: Reading, key: string, refs?: DeviceRefs): string;
}

/** The device registry as the ingest path needs it. */
export interface DeviceDirectory {
  ensure(site: string, kind: string, device: string): unknown;
  kindMismatch(site: string, device: string, kind: string): boolean;
}

/** Republishes a rejected message with its reason (MQTT `facility/_rejected/...`). */
export interface RejectPublisher {
  publishRejected(site: string, kind: string, device: string, payload: string): void;
  /** How the republished messages fared (MQTT: QoS 1 until PUBACK, bounded). */
  deadLetterStats?(): DeadLetterCounts | undefined;
}

export interface DeadLetterCounts {
  published: number;
  dropped: number;
  pending: number;
  /** Found on disk at start, queued before a crash or restart (ADR 0090). */
  restored?: number;
  /** Batches of letters that could not be written to disk (the letters were still sent). */
  storeErrors?: number;
}

export interface IngestCounters {
  messages: number;
  accepted: number;
  /** Metric values accepted (a "reading" in throughput figures), derived fields included. */
  values: number;
  rejected: Record<RejectReason, number>;
  derive: Record<string, number>;
}

/** Builds the full kind catalogue: the built-in kinds of DOMAIN.md plus kinds declared in the config. */
export function buildKinds(cfg: GatewayConfig): Map<string, KindDef> {
  const kinds = new Map<string, KindDef>(Object.entries(BUILTIN_KINDS));
  for (const [name, k] of Object.entries(cfg.kinds)) {
    const base = kinds.get(name);
    kinds.set(name, {
      measurement: measurementOf(name),
      reportIntervalSec: k.reportIntervalSec,
      metrics: { ...(base?.metrics ?? {}), ...k.metrics },
    });
  }
  return kinds;
}

const TOPIC_CACHE_MAX = 200_000;

/** The derived fields' keys; they always follow a metric of the message. */
const CONSUMPTION_KEY = fieldKey('consumption_m3');
const INDEX_RESET_KEY = fieldKey('index_reset');
const DEW_POINT_KEY = fieldKey('dew_point_c');

/**
 * decode → validate → registry → derived values → outbox line, for every message. The common
 * payload is read straight from its bytes (PayloadScanner); anything else goes through JSON.parse
 * and PayloadValidator, which also give every rejection its reason.
 * Runs synchronously per message; nothing here allocates beyond the parsed JSON, the Reading
 * and its line. Rejections are counted per reason, logged at a bounded rate and republished.
 */
export class IngestPipeline {
  readonly counters: IngestCounters;
  private readonly topics = new Map<string, TopicInfo | Rejection>();
  private readonly validator: PayloadValidator;
  private readonly scanner: PayloadScanner;
  private readonly line = new LineBuilder();
  /** Lines written beside a reading's (zero consumption at a takeover); built on first use. */
  private extra?: LineBuilder;
  private readonly kinds: Map<string, KindDef>;
  private readonly rlog: RateLimitedLog;
  private listeners: ReadingListener[] = [];

  constructor(
    private readonly cfg: GatewayConfig,
    private readonly directory: DeviceDirectory,
    private readonly deriver: ReadingDeriver,
    private readonly sink: LineSink,
    private readonly rejects: RejectPublisher | null,
    log: Logger,
  ) {
    this.validator = new PayloadValidator(cfg.ingest);
    this.scanner = new PayloadScanner(cfg.ingest);
    this.kinds = buildKinds(cfg);
    this.rlog = new RateLimitedLog(log.child({ module: 'ingest' }));
    this.counters = {
      messages: 0,
      accepted: 0,
      values: 0,
      rejected: Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>,
      derive: {},
    };
  }

  /** How the rejected messages republished so far fared; undefined without a publisher. */
  deadLetters(): DeadLetterCounts | undefined {
    return this.rejects?.deadLetterStats?.();
  }

  addListener(l: ReadingListener): void {
    this.listeners = [...this.listeners, l];
  }

  kindDef(kind: string): KindDef | undefined {
    return this.kinds.get(kind);
  }

  /** One MQTT message. Never throws. */
  handleMessage(topic: string, payload: Buffer, now: number): void {
    this.counters.messages++;
    let info = this.topics.get(topic);
    if (info === undefined) {
      info = this.resolveTopic(topic);
      if (this.topics.size >= TOPIC_CACHE_MAX) this.topics.clear();
      this.topics.set(topic, info);
    }
    if (info instanceof Rejection) return this.reject(info, topic, null, payload);
    if (payload.length > this.cfg.ingest.maxPayloadBytes) {
      return this.reject(
        new Rejection(
          'payload_too_large',
          `${payload.length} bytes exceeds the limit of ${this.cfg.ingest.maxPayloadBytes}`,
        ),
        topic,
        info,
        payload,
      );
    }
    if (payload.length === 0)
      return this.reject(new Rejection('payload_empty', 'empty payload'), topic, info, payload);
    const fast = this.scanner.decode(info, payload, now, this.line);
    if (fast !== null) return this.accept(info, fast, this.scanner.count);
    let obj: unknown;
    try {
      obj = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return this.reject(
        new Rejection('json_invalid', (err as Error).message.slice(0, 200)),
        topic,
        info,
        payload,
      );
    }
    const reading = this.validator.validate(info, obj, now, this.line);
    if (reading instanceof Rejection) return this.reject(reading, topic, info, payload);
    this.accept(info, reading, this.validator.count);
  }

  /**
   * Readings from sources that decode themselves (OPC UA, Sparkplug B): same checks on ids,
   * kinds, types and ranges as JSON, same derived values and the same outbox.
   */
  handleReading(r: Reading, now: number): Rejection | null {
    this.counters.messages++;
    const topic = `facility/${r.site}/${r.kind}/${r.device}/telemetry`;
    let info = this.topics.get(topic);
    if (info === undefined) {
      info = this.resolveTopic(topic);
      this.topics.set(topic, info);
    }
    if (info instanceof Rejection) {
      this.count(info);
      return info;
    }
    // The source's quality, one for the reading or one per metric, goes through the same checks
    // as a JSON payload's `quality` and is written per metric (ADR 0070).
    const quality = r.qualities ?? (r.quality === 'good' ? undefined : r.quality);
    const reading = this.validator.validate(info, { ts: r.ts, values: r.fields, quality }, now, this.line);
    if (reading instanceof Rejection) {
      this.count(reading);
      return reading;
    }
    this.accept(info, reading, this.validator.count);
    return null;
  }

  /**
   * Cluster mode, a takeover's replay only (ADR 0177 addendum): a point of `device` at `ts` holding
   * only `consumption_m3 = 0`. InfluxDB merges it into a point already there (the dead owner's), so
   * that slot's consumption is booked by the meter's next reading alone; its `volume_m3` stays.
   */
  writeZeroConsumption(site: string, kind: string, device: string, ts: number): void {
    const topic = `facility/${site}/${kind}/${device}/telemetry`;
    let info = this.topics.get(topic);
    if (info === undefined) {
      info = this.resolveTopic(topic);
      this.topics.set(topic, info);
    }
    if (info instanceof Rejection) return;
    const line = (this.extra ??= new LineBuilder());
    line.start(info.prefix);
    line.key(CONSUMPTION_KEY, true);
    line.text('0 ');
    line.int(ts);
    line.text('\n');
    this.sink.appendBytes(line.buf, 0, line.at);
  }

  /**
   * `count`: the metric values the validator accepted; derived ones are added here. The line's
   * pieces so far are in `this.line`; the derived fields and the timestamp complete it.
   */
  private accept(info: TopicInfo, reading: Reading, count: number): void {
    const refs = info.refs;
    const outcome = this.deriver.apply(reading, info.key, refs);
    this.counters.derive[outcome] = (this.counters.derive[outcome] ?? 0) + 1;
    const f = reading.fields;
    const line = this.line;
    let n = count;
    const c = f.consumption_m3;
    if (c !== undefined) {
      line.key(CONSUMPTION_KEY, false);
      line.text(String(c));
      n++;
    }
    const reset = f.index_reset;
    if (reset !== undefined) {
      line.key(INDEX_RESET_KEY, false);
      line.bool(reset === true);
      n++;
    }
    const dp = f.dew_point_c;
    if (dp !== undefined) {
      line.key(DEW_POINT_KEY, false);
      line.text(String(dp));
      n++;
    }
    line.text(' ');
    line.int(reading.ts);
    line.text('\n');
    this.sink.appendBytes(line.buf, 0, line.at);
    this.counters.accepted++;
    this.counters.values += n;
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) ls[i]!.onReading(reading, refs);
  }

  private resolveTopic(topic: string): TopicInfo | Rejection {
    const parts = splitTopic(topic);
    if (parts instanceof Rejection) return parts;
    const { site, kind, device } = parts;
    const bad = checkIds(site, kind, device);
    if (bad) return bad;
    const def = this.kinds.get(kind);
    if (!def) {
      return new Rejection(
        'kind_unknown',
        `kind "${kind}" is not one of ${[...this.kinds.keys()].join(', ')}`,
      );
    }
    if (this.directory.kindMismatch(site, device, kind)) {
      return new Rejection(
        'kind_mismatch',
        `device ${site}/${device} is declared with another kind than "${kind}"`,
      );
    }
    this.directory.ensure(site, kind, device);
    return {
      site,
      kind,
      device,
      key: `${site}/${device}`,
      def,
      // Tags in key order (device < site): InfluxDB sorts them per point otherwise.
      prefix: Buffer.from(`${def.measurement},device=${device},site=${site} `),
      refs: newDeviceRefs(),
    };
  }

  private count(r: Rejection): void {
    this.counters.rejected[r.reason]++;
  }

  private reject(r: Rejection, topic: string, info: TopicInfo | null, payload: Buffer): void {
    this.count(r);
    const where = info ? `${info.site}/${info.kind}/${info.device}` : topic.slice(0, 200);
    this.rlog.warn(
      `${r.reason}:${where}`,
      { reason: r.reason, detail: r.detail, topic: topic.slice(0, 200) },
      'message rejected',
    );
    if (!this.rejects) return;
    let site = '_invalid';
    let kind = '_invalid';
    let device = '_invalid';
    if (info) ({ site, kind, device } = info);
    else {
      const parts = splitTopic(topic);
      if (!(parts instanceof Rejection) && !checkIds(parts.site, parts.kind, parts.device))
        ({ site, kind, device } = parts);
    }
    const original =
      payload.length > 4096 ? payload.subarray(0, 4096).toString('utf8') : payload.toString('utf8');
    const body = JSON.stringify({
      reason: r.reason,
      detail: r.detail,
      topic: topic.slice(0, 512),
      receivedAt: new Date().toISOString(),
      payloadBytes: payload.length,
      truncated: payload.length > 4096,
      payload: original,
    });
    this.rejects.publishRejected(site, kind, device, body);
  }
}

export type { MetricValue };
