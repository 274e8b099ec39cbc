import type { DeviceRefs, Reading, MetricValue, Quality } from '../core/types.js';
import type { IngestConfig } from '../config/schema.js';
import {
  DERIVED_FIELDS,
  EXTRA_FIELD_ABS_MAX,
  FIELD_NAME_PATTERN,
  ID_PATTERN,
  type KindDef,
} from './catalogue.js';
import { fieldKey, type FieldKey, type LineBuilder } from './line-builder.js';
import { BAD_SUFFIX, parseQuality, QUALITY_SUFFIX, worse, type PayloadQuality } from './quality.js';
import { Rejection } from './reasons.js';

/** What the topic says, resolved once per topic and cached: ids checked, kind looked up. */
export interface TopicInfo {
  site: string;
  kind: string;
  device: string;
  /** `site/device`: the key of per-device state. */
  key: string;
  def: KindDef;
  /** Line-protocol prefix `measurement,device=..,site=.. ` (ids need no escaping: see ID_PATTERN). */
  prefix: Buffer;
  /** The listeners' references to the device's state. */
  refs: DeviceRefs;
}

/** Splits `<anything>/<site>/<kind>/<device>/telemetry` without validating the ids. */
export function splitTopic(topic: string): { site: string; kind: string; device: string } | Rejection {
  const SUFFIX = '/telemetry';
  if (!topic.endsWith(SUFFIX)) return new Rejection('topic_invalid', `topic must end with ${SUFFIX}`);
  const end = topic.length - SUFFIX.length;
  const d = topic.lastIndexOf('/', end - 1);
  const k = d > 0 ? topic.lastIndexOf('/', d - 1) : -1;
  const s = k > 0 ? topic.lastIndexOf('/', k - 1) : -1;
  if (s < 0) return new Rejection('topic_invalid', 'topic must be facility/<site>/<kind>/<device>/telemetry');
  return { site: topic.slice(s + 1, k), kind: topic.slice(k + 1, d), device: topic.slice(d + 1, end) };
}

export function checkIds(site: string, kind: string, device: string): Rejection | null {
  if (!ID_PATTERN.test(site))
    return new Rejection('id_invalid', `site id "${site.slice(0, 80)}" must match [A-Za-z0-9_-]{1,64}`);
  if (!ID_PATTERN.test(device))
    return new Rejection('id_invalid', `device id "${device.slice(0, 80)}" must match [A-Za-z0-9_-]{1,64}`);
  if (!ID_PATTERN.test(kind))
    return new Rejection('id_invalid', `kind "${kind.slice(0, 80)}" must match [A-Za-z0-9_-]{1,64}`);
  return null;
}

/** Field names whose keys are kept (catalogue metrics and a bounded number of extras). */
const FIELD_KEY_CACHE_MAX = 100_000;

export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Validates one decoded JSON payload against its kind and produces the Reading and its
 * InfluxDB line. Returns a Rejection (never throws) when the message cannot be used.
 * Field types of extra (non-catalogue) metrics are remembered per kind so that a device
 * switching a field from number to boolean is rejected here rather than poisoning a batch.
 */
export class PayloadValidator {
  private readonly extraTypes = new Map<string, 'number' | 'boolean'>();
  private readonly keys = new Map<string, FieldKey>();
  /** Metric values in the reading the last validate() returned. */
  count = 0;

  constructor(private readonly cfg: IngestConfig) {}

  private keyOf(name: string): FieldKey {
    let k = this.keys.get(name);
    if (k === undefined) {
      k = fieldKey(name);
      if (this.keys.size < FIELD_KEY_CACHE_MAX) this.keys.set(name, k);
    }
    return k;
  }

  /**
   * The reading, with its line (without the timestamp) pushed into `line`; `count` holds the
   * number of metric values. Or the reason the payload cannot be used.
   */
  validate(info: TopicInfo, obj: unknown, now: number, line: LineBuilder): Reading | Rejection {
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
      return new Rejection('payload_not_object', 'payload must be a JSON object');
    }
    const o = obj as Record<string, unknown>;
    let ts: number;
    const rawTs = o.ts;
    if (rawTs === undefined || rawTs === null) {
      ts = now;
    } else if (typeof rawTs === 'number') {
      if (!Number.isFinite(rawTs))
        return new Rejection('ts_invalid', 'ts must be a finite number of epoch milliseconds');
      ts = Math.floor(rawTs);
    } else if (typeof rawTs === 'string') {
      if (!RFC3339.test(rawTs))
        return new Rejection('ts_invalid', 'ts string must be RFC 3339, e.g. 2026-01-01T00:00:00Z');
      ts = Date.parse(rawTs);
      if (!Number.isFinite(ts)) return new Rejection('ts_invalid', 'ts is not a valid date');
    } else {
      return new Rejection('ts_invalid', 'ts must be epoch milliseconds or an RFC 3339 string');
    }
    if (ts > now + this.cfg.maxFutureMs) {
      return new Rejection(
        'ts_future',
        `ts is ${Math.round((ts - now) / 1000)} s in the future (limit ${this.cfg.maxFutureMs / 1000} s)`,
      );
    }
    if (ts < now - this.cfg.maxAgeMs) {
      return new Rejection(
        'ts_too_old',
        `ts is older than ${Math.round(this.cfg.maxAgeMs / 3600_000)} h (epoch milliseconds expected)`,
      );
    }

    let src: Record<string, unknown>;
    const nested = o.values;
    const isNested = nested !== undefined;
    // `quality` as a string or an object is the payload's quality (ADR 0070); a number or boolean
    // under that name stays what it always was, an extra metric of a flat payload.
    const rawQ = o.quality;
    const hasQ = rawQ !== undefined && typeof rawQ !== 'number' && typeof rawQ !== 'boolean';
    let pq: PayloadQuality | undefined;
    if (hasQ) {
      const parsed = parseQuality(rawQ);
      if (parsed instanceof Rejection) return parsed;
      pq = parsed;
    }
    if (isNested) {
      if (typeof nested !== 'object' || nested === null || Array.isArray(nested)) {
        return new Rejection('values_not_object', '"values" must be an object of metric: value');
      }
      for (const k in o) {
        if (k !== 'ts' && k !== 'values' && !(k === 'quality' && (hasQ || rawQ === undefined))) {
          return new Rejection('payload_not_object', `unexpected key "${k.slice(0, 64)}" beside "values"`);
        }
      }
      src = nested as Record<string, unknown>;
    } else {
      src = o;
    }
    if (pq !== undefined && typeof pq === 'object') {
      for (const k in pq) {
        if (!Object.hasOwn(src, k) || (!isNested && (k === 'ts' || k === 'quality')))
          return new Rejection('quality_invalid', `quality names ${k.slice(0, 64)}, which has no value here`);
      }
    }
    let qualities: Record<string, Quality> | undefined;
    let worst: Quality | undefined;

    const metrics = info.def.metrics;
    const fields: Record<string, MetricValue> = {};
    line.start(info.prefix);
    let n = 0;
    for (const name in src) {
      if (!isNested && (name === 'ts' || (name === 'quality' && hasQ))) continue;
      if (++n > this.cfg.maxFields)
        return new Rejection('too_many_fields', `more than ${this.cfg.maxFields} metrics in one message`);
      const raw = src[name];
      // Own keys only: a metric named `constructor` or `toString` is an extra, not a catalogue one.
      const def = Object.hasOwn(metrics, name) ? metrics[name] : undefined;
      const q = pq === undefined ? undefined : typeof pq === 'string' ? pq : pq[name];
      if (q !== undefined && q !== 'good') {
        // A value its source does not vouch for: kept under <metric>_bad, beside the good ones.
        // Its range is not checked: a failed sensor's reading is often impossible, and rejecting
        // the message for it would lose the good values measured with it.
        const bad = this.notGood(info, name, raw, def?.type, n === 1, line, q);
        if (bad instanceof Rejection) return bad;
        fields[name] = bad;
        (qualities ??= {})[name] = q;
        worst = worse(worst, q);
        continue;
      }
      let value: MetricValue;
      if (def) {
        if (def.type === 'boolean') {
          if (typeof raw === 'boolean') value = raw;
          else if (raw === 0 || raw === 1) value = raw === 1;
          else
            return new Rejection('value_type', `${name} must be true/false (or 0/1), got ${describe(raw)}`);
        } else {
          if (typeof raw !== 'number') {
            if (typeof raw === 'string' && /^(nan|-?inf(inity)?)$/i.test(raw)) {
              return new Rejection('value_not_finite', `${name} is ${raw}`);
            }
            return new Rejection('value_type', `${name} must be a number, got ${describe(raw)}`);
          }
          if (!Number.isFinite(raw)) return new Rejection('value_not_finite', `${name} is not finite`);
          if ((def.min !== undefined && raw < def.min) || (def.max !== undefined && raw > def.max)) {
            return new Rejection(
              'value_out_of_range',
              `${name}=${raw} is outside the possible range [${def.min ?? '-∞'}, ${def.max ?? '∞'}]${def.unit ? ' ' + def.unit : ''}`,
            );
          }
          value = raw;
        }
      } else {
        if (DERIVED_FIELDS.has(name))
          return new Rejection('metric_reserved', `${name} is derived by the gateway`);
        const reserved = reservedFor(name, metrics);
        if (reserved !== null)
          return new Rejection('metric_reserved', `${name} holds ${reserved}'s values that are not good`);
        if (!FIELD_NAME_PATTERN.test(name)) {
          return new Rejection(
            'metric_name_invalid',
            `metric name "${name.slice(0, 64)}" must match [A-Za-z][A-Za-z0-9_]{0,63}`,
          );
        }
        let t: 'number' | 'boolean';
        if (typeof raw === 'boolean') {
          t = 'boolean';
          value = raw;
        } else if (typeof raw === 'number') {
          if (!Number.isFinite(raw)) return new Rejection('value_not_finite', `${name} is not finite`);
          if (Math.abs(raw) > EXTRA_FIELD_ABS_MAX)
            return new Rejection('value_out_of_range', `${name}=${raw} is absurdly large`);
          t = 'number';
          value = raw;
        } else {
          return new Rejection('value_type', `${name} must be a number or boolean, got ${describe(raw)}`);
        }
        const conflict = this.extraTypeConflict(info.kind, name, t);
        if (conflict) return conflict;
      }
      fields[name] = value;
      line.key(this.keyOf(name), n === 1);
      if (typeof value === 'boolean') line.bool(value);
      else line.text(String(value));
    }
    if (n === 0) return new Rejection('no_values', 'no metric values in the message');
    this.count = n;
    if (worst === undefined || worst === 'good')
      return { site: info.site, kind: info.kind, device: info.device, ts, fields };
    return { site: info.site, kind: info.kind, device: info.device, ts, fields, quality: worst, qualities };
  }

  /**
   * An extra field keeps the type it first had, per kind (InfluxDB refuses a field that switches
   * between number and boolean within a shard): the first type seen is remembered (up to 100,000
   * names), a later message with the other type is refused.
   */
  private extraTypeConflict(kind: string, name: string, t: 'number' | 'boolean'): Rejection | null {
    const typeKey = kind + '\u0000' + name;
    const known = this.extraTypes.get(typeKey);
    if (known === undefined) {
      if (this.extraTypes.size < 100_000) this.extraTypes.set(typeKey, t);
      return null;
    }
    return known === t
      ? null
      : new Rejection('field_type_conflict', `${name} was a ${known} before and is a ${t} now`);
  }

  /** A value that is not good: its type checked, written as `<name>_bad=v,<name>_quality="q"`. */
  private notGood(
    info: TopicInfo,
    name: string,
    raw: unknown,
    type: 'number' | 'boolean' | undefined,
    first: boolean,
    line: LineBuilder,
    q: Quality,
  ): MetricValue | Rejection {
    let value: MetricValue;
    if (type === 'boolean' && (raw === 0 || raw === 1)) value = raw === 1;
    else if (typeof raw === 'boolean' && type !== 'number') value = raw;
    else if (typeof raw === 'number' && type !== 'boolean') {
      if (!Number.isFinite(raw)) return new Rejection('value_not_finite', `${name} is not finite`);
      value = raw;
    } else {
      return new Rejection(
        'value_type',
        `${name} must be a ${type ?? 'number or boolean'}, got ${describe(raw)}`,
      );
    }
    if (type === undefined) {
      if (DERIVED_FIELDS.has(name))
        return new Rejection('metric_reserved', `${name} is derived by the gateway`);
      if (!FIELD_NAME_PATTERN.test(name) || name.length > 64 - QUALITY_SUFFIX.length) {
        return new Rejection(
          'metric_name_invalid',
          `metric name "${name.slice(0, 64)}" must match [A-Za-z][A-Za-z0-9_]{0,55} to carry a quality`,
        );
      }
      // An extra's type is kept per name whatever its quality: <name>_bad must not flip either.
      const t = typeof value === 'boolean' ? 'boolean' : 'number';
      const conflict = this.extraTypeConflict(info.kind, name, t);
      if (conflict) return conflict;
    }
    line.key(this.keyOf(name + BAD_SUFFIX), first);
    if (typeof value === 'boolean') line.bool(value);
    else line.text(String(value));
    line.key(this.keyOf(name + QUALITY_SUFFIX), false);
    line.text(q === 'bad' ? '"bad"' : '"uncertain"');
    return value;
  }
}

/** The catalogue metric whose not-good values an extra field's name would hold, or null. */
function reservedFor(name: string, metrics: KindDef['metrics']): string | null {
  let base: string | undefined;
  if (name.endsWith(BAD_SUFFIX)) base = name.slice(0, -BAD_SUFFIX.length);
  else if (name.endsWith(QUALITY_SUFFIX)) base = name.slice(0, -QUALITY_SUFFIX.length);
  return base !== undefined && Object.hasOwn(metrics, base) ? base : null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string "${v.slice(0, 32)}"`;
  return `a ${typeof v}`;
}
