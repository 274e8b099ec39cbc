import sparkplug from 'sparkplug-payload';
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';
import { NAMESPACE, qualityOfCode, type SpbMetric, type SpbPayload } from './tracker.js';

/**
 * Sparkplug B payloads through Eclipse Tahu's `sparkplug-payload` (protobufjs underneath).
 * 64-bit integers arrive as `Long` objects and are turned into numbers here, so the tracker
 * only sees plain values.
 */
const codec = sparkplug.get(NAMESPACE);
if (!codec) throw new Error(`sparkplug-payload does not know the ${NAMESPACE} namespace`);
const spb = codec;

export type { UMetric, UPayload };

interface LongLike {
  toNumber(): number;
}

function isLong(v: unknown): v is LongLike {
  return typeof v === 'object' && v !== null && typeof (v as LongLike).toNumber === 'function';
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (isLong(v)) return v.toNumber();
  return undefined;
}

/** Decodes a payload; throws on bytes that are not a Sparkplug B protobuf. */
export function decodePayload(buf: Uint8Array): SpbPayload {
  const p = spb.decodePayload(buf);
  const metrics: SpbMetric[] = (p.metrics ?? []).map((m) => {
    const value = isLong(m.value) ? m.value.toNumber() : m.value;
    const out: SpbMetric = { value, isNull: m.isNull === true || value === null || value === undefined };
    if (m.name) out.name = m.name;
    const alias = num(m.alias);
    if (alias !== undefined) out.alias = alias;
    const ts = num(m.timestamp);
    if (ts !== undefined) out.timestamp = ts;
    const q = num(m.properties?.Quality?.value);
    if (q !== undefined) out.quality = qualityOfCode(q);
    return out;
  });
  const out: SpbPayload = { metrics };
  const ts = num(p.timestamp);
  if (ts !== undefined) out.timestamp = ts;
  const seq = num(p.seq);
  if (seq !== undefined) out.seq = seq;
  return out;
}

export function encodePayload(p: UPayload): Buffer {
  return Buffer.from(spb.encodePayload(p));
}

/** The NCMD payload that asks an edge node to publish its births again. */
export function rebirthPayload(now: number): Buffer {
  return encodePayload({
    timestamp: now,
    metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true, timestamp: now }],
  });
}
