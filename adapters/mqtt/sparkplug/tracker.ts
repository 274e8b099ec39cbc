import type { MetricValue, Quality, Reading } from '../../../gateway/src/core/types.js';
import type { SparkplugConfig, SparkplugDeviceConfig } from './schema.js';

/**
 * The Sparkplug B host-side state machine, free of MQTT and protobuf so it is tested as pure
 * logic: births define metrics and aliases, data carries values by alias, deaths mark nodes and
 * devices offline, every message of a node after its birth must carry the next sequence number.
 * Anything that cannot be understood (an unknown node, device or alias, a sequence gap) asks the
 * edge node for a rebirth and drops the message: values are never guessed.
 */

export const NAMESPACE = 'spBv1.0';

export const MESSAGE_TYPES = [
  'NBIRTH',
  'NDEATH',
  'DBIRTH',
  'DDEATH',
  'NDATA',
  'DDATA',
  'NCMD',
  'DCMD',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export interface SpbTopic {
  group: string;
  type: MessageType;
  node: string;
  device?: string;
}

/** One metric as decoded: 64-bit integers already converted, the `is_null` flag kept. */
export interface SpbMetric {
  name?: string;
  alias?: number;
  timestamp?: number;
  value: unknown;
  isNull: boolean;
  /** From a `Quality` property, when the edge node sends one. */
  quality?: Quality;
}

export interface SpbPayload {
  timestamp?: number;
  seq?: number;
  metrics: SpbMetric[];
}

/** Why a Sparkplug message was dropped. Stable codes: they label metrics. */
export const SPB_REJECT_REASONS = [
  'topic_invalid',
  'payload_invalid',
  'node_unknown',
  'device_unknown',
  'alias_unknown',
  'seq_gap',
  'awaiting_rebirth',
  'unmapped',
  'death_stale',
] as const;
export type SpbRejectReason = (typeof SPB_REJECT_REASONS)[number];

/** Where a Sparkplug device (or edge node) lands: our site, device id and kind. */
export interface DeviceRef {
  site: string;
  device: string;
  kind: string;
}

export interface Outcome {
  readings: Reading[];
  reject?: { reason: SpbRejectReason; detail: string };
  /** Publish `Node Control/Rebirth` = true to this edge node. */
  rebirth?: { group: string; node: string };
  online: DeviceRef[];
  offline: DeviceRef[];
  /** Metric values sent as null (`is_null`): not stored. */
  nulls: number;
  /** Metrics with nothing to store (strings, data sets, control and property metrics). */
  ignored: number;
}

interface Target extends DeviceRef {
  metrics: SparkplugDeviceConfig['metrics'];
}

interface DeviceState {
  aliases: Map<number, string>;
  /** Undefined: born but not mapped (no kind); its data is dropped as `unmapped`. */
  target: Target | undefined;
  online: boolean;
}

interface NodeState {
  group: string;
  node: string;
  online: boolean;
  /** Birth/death sequence of the current birth, matched against NDEATH. */
  bdSeq: number | undefined;
  seq: number;
  awaitingRebirth: boolean;
  lastRebirthAt: number;
  aliases: Map<number, string>;
  target: Target | undefined;
  devices: Map<string, DeviceState>;
}

export interface NodeView {
  group: string;
  node: string;
  online: boolean;
  awaitingRebirth: boolean;
  seq: number;
  bdSeq: number | null;
  devices: Array<{ device: string; online: boolean; mapped: boolean }>;
}

const FIELD = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const KIND_METRIC = 'Properties/Kind';

export function parseTopic(topic: string): SpbTopic | null {
  const parts = topic.split('/');
  if (parts.length < 4 || parts.length > 5 || parts[0] !== NAMESPACE) return null;
  const [, group, type, node, device] = parts as [string, string, string, string, string | undefined];
  if (!group || !node || !(MESSAGE_TYPES as readonly string[]).includes(type)) return null;
  const t = type as MessageType;
  const deviceLevel = t[0] === 'D';
  if (deviceLevel !== (device !== undefined) || device === '') return null;
  return device === undefined ? { group, type: t, node } : { group, type: t, node, device };
}

export function rebirthTopic(group: string, node: string): string {
  return `${NAMESPACE}/${group}/NCMD/${node}`;
}

export class SparkplugTracker {
  private readonly nodes = new Map<string, NodeState>();
  private readonly mapping = new Map<string, SparkplugDeviceConfig>();

  constructor(private readonly cfg: Pick<SparkplugConfig, 'rebirthMinIntervalMs' | 'devices'>) {
    for (const d of cfg.devices) this.mapping.set(mapKey(d.group, d.node, d.device), d);
  }

  handle(topic: SpbTopic, p: SpbPayload, now: number): Outcome {
    const out: Outcome = { readings: [], online: [], offline: [], nulls: 0, ignored: 0 };
    const key = `${topic.group}/${topic.node}`;
    let n = this.nodes.get(key);
    switch (topic.type) {
      case 'NCMD':
      case 'DCMD':
        return out; // commands are for edge nodes (our own rebirth requests come back here)
      case 'NBIRTH': {
        const bdSeq = metricNumber(p.metrics, 'bdSeq');
        if (n) for (const d of n.devices.values()) if (d.online && d.target) out.offline.push(ref(d.target));
        n = {
          group: topic.group,
          node: topic.node,
          online: true,
          bdSeq,
          seq: p.seq ?? 0,
          awaitingRebirth: false,
          lastRebirthAt: n?.lastRebirthAt ?? -Infinity,
          aliases: aliasesOf(p.metrics),
          target: this.target(topic.group, topic.node, undefined, p.metrics),
          devices: new Map(),
        };
        this.nodes.set(key, n);
        if (n.target) {
          out.online.push(ref(n.target));
          this.values(n.target, p, n.aliases, now, out);
        }
        return out;
      }
      case 'NDEATH': {
        if (!n || !n.online) return out;
        const bdSeq = metricNumber(p.metrics, 'bdSeq');
        if (bdSeq !== undefined && n.bdSeq !== undefined && bdSeq !== n.bdSeq) {
          // The will of an earlier connection, delivered after the node came back.
          return reject(out, 'death_stale', `NDEATH bdSeq ${bdSeq} does not match the birth's ${n.bdSeq}`);
        }
        n.online = false;
        if (n.target) out.offline.push(ref(n.target));
        for (const d of n.devices.values()) {
          if (d.online && d.target) out.offline.push(ref(d.target));
          d.online = false;
        }
        return out;
      }
    }
    // Everything else belongs to a born node and carries its next sequence number.
    if (!n || !n.online) {
      return this.rebirth(out, key, topic, now, 'node_unknown', `no NBIRTH seen from ${key} (${topic.type})`);
    }
    if (n.awaitingRebirth) {
      return this.rebirth(out, key, topic, now, 'awaiting_rebirth', `${key} was asked for a rebirth`);
    }
    const expected = (n.seq + 1) % 256;
    if (p.seq !== expected) {
      return this.rebirth(
        out,
        key,
        topic,
        now,
        'seq_gap',
        `${key}: seq ${p.seq ?? 'none'}, expected ${expected}`,
      );
    }
    n.seq = expected;
    if (topic.type === 'NDATA') {
      const bad = unknownAlias(p.metrics, n.aliases);
      if (bad !== undefined)
        return this.rebirth(out, key, topic, now, 'alias_unknown', `${key}: alias ${bad} not in its NBIRTH`);
      if (n.target) this.values(n.target, p, n.aliases, now, out);
      else out.ignored += p.metrics.length;
      return out;
    }
    const devId = topic.device!;
    if (topic.type === 'DBIRTH') {
      const target = this.target(topic.group, topic.node, devId, p.metrics);
      const d: DeviceState = { aliases: aliasesOf(p.metrics), target, online: true };
      n.devices.set(devId, d);
      if (!target)
        return reject(
          out,
          'unmapped',
          `${key}/${devId}: no kind (map it under sparkplug.devices or send a ${KIND_METRIC} metric)`,
        );
      out.online.push(ref(target));
      this.values(target, p, d.aliases, now, out);
      return out;
    }
    const d = n.devices.get(devId);
    if (!d || !d.online) {
      if (topic.type === 'DDEATH') return out;
      return this.rebirth(out, key, topic, now, 'device_unknown', `no DBIRTH seen from ${key}/${devId}`);
    }
    if (topic.type === 'DDEATH') {
      d.online = false;
      if (d.target) out.offline.push(ref(d.target));
      return out;
    }
    const bad = unknownAlias(p.metrics, d.aliases);
    if (bad !== undefined)
      return this.rebirth(
        out,
        key,
        topic,
        now,
        'alias_unknown',
        `${key}/${devId}: alias ${bad} not in its DBIRTH`,
      );
    if (!d.target) return reject(out, 'unmapped', `${key}/${devId}: no kind`);
    this.values(d.target, p, d.aliases, now, out);
    return out;
  }

  /** Every edge node seen, for health and the API. */
  view(): NodeView[] {
    return [...this.nodes.values()].map((n) => ({
      group: n.group,
      node: n.node,
      online: n.online,
      awaitingRebirth: n.awaitingRebirth,
      seq: n.seq,
      bdSeq: n.bdSeq ?? null,
      devices: [...n.devices].map(([device, d]) => ({ device, online: d.online, mapped: !!d.target })),
    }));
  }

  /** Drops the message and asks for a rebirth, at most once per `rebirthMinIntervalMs` per node. */
  private rebirth(
    out: Outcome,
    key: string,
    topic: SpbTopic,
    now: number,
    reason: SpbRejectReason,
    detail: string,
  ): Outcome {
    let n = this.nodes.get(key);
    if (!n) {
      n = {
        group: topic.group,
        node: topic.node,
        online: false,
        bdSeq: undefined,
        seq: 0,
        awaitingRebirth: true,
        lastRebirthAt: -Infinity,
        aliases: new Map(),
        target: undefined,
        devices: new Map(),
      };
      this.nodes.set(key, n);
    }
    n.awaitingRebirth = true;
    if (now - n.lastRebirthAt >= this.cfg.rebirthMinIntervalMs) {
      n.lastRebirthAt = now;
      out.rebirth = { group: topic.group, node: topic.node };
    }
    return reject(out, reason, detail);
  }

  private target(
    group: string,
    node: string,
    device: string | undefined,
    metrics: SpbMetric[],
  ): Target | undefined {
    const m = this.mapping.get(mapKey(group, node, device));
    const kindMetric = metrics.find((x) => x.name === KIND_METRIC)?.value;
    const kind = m?.kind ?? (typeof kindMetric === 'string' && ID.test(kindMetric) ? kindMetric : undefined);
    const site = m?.site ?? node;
    const id = m?.id ?? device ?? node;
    // Node metrics are stored only when the node is mapped: they are usually the gateway box's own.
    if (!kind || (device === undefined && !m) || !ID.test(site) || !ID.test(id)) return undefined;
    return { site, device: id, kind, metrics: m?.metrics ?? {} };
  }

  private values(t: Target, p: SpbPayload, aliases: Map<number, string>, now: number, out: Outcome): void {
    const byKey = new Map<string, Reading>();
    for (const m of p.metrics) {
      const name = m.name ?? (m.alias !== undefined ? aliases.get(m.alias) : undefined);
      if (name === undefined || isControl(name)) {
        out.ignored++;
        continue;
      }
      const map = t.metrics[name];
      const metric = map?.metric ?? name.slice(name.lastIndexOf('/') + 1);
      if (!FIELD.test(metric)) {
        out.ignored++;
        continue;
      }
      if (m.isNull || m.value === null || m.value === undefined) {
        out.nulls++;
        continue;
      }
      const value = valueOf(m.value, map?.scale ?? 1, map?.offset ?? 0);
      if (value === undefined) {
        out.ignored++;
        continue;
      }
      const ts = m.timestamp ?? p.timestamp ?? now;
      const quality = m.quality ?? 'good';
      const k = `${ts}\u0000${quality}`;
      let r = byKey.get(k);
      if (!r) {
        r = { site: t.site, kind: t.kind, device: t.device, ts, fields: {} };
        if (quality !== 'good') r.quality = quality;
        byKey.set(k, r);
      }
      r.fields[metric] = value;
    }
    for (const r of byKey.values()) out.readings.push(r);
  }
}

/** OPC DA quality codes, as Ignition and most Sparkplug edge nodes send them: 192 good, 64 uncertain. */
export function qualityOfCode(code: number): Quality {
  if (code >= 192) return 'good';
  if (code >= 64) return 'uncertain';
  return 'bad';
}

function valueOf(v: unknown, scale: number, offset: number): MetricValue | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  if (scale === 1 && offset === 0) return v;
  // Keep float noise of scale/offset out of stored values.
  return Math.round((v * scale + offset) * 1e9) / 1e9;
}

function isControl(name: string): boolean {
  return (
    name === 'bdSeq' ||
    name.startsWith('Node Control/') ||
    name.startsWith('Device Control/') ||
    name.startsWith('Properties/') ||
    name.startsWith('Node Info/')
  );
}

function aliasesOf(metrics: SpbMetric[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const x of metrics) if (x.alias !== undefined && x.name !== undefined) m.set(x.alias, x.name);
  return m;
}

function unknownAlias(metrics: SpbMetric[], aliases: Map<number, string>): number | undefined {
  for (const m of metrics)
    if (m.name === undefined && m.alias !== undefined && !aliases.has(m.alias)) return m.alias;
  return undefined;
}

function metricNumber(metrics: SpbMetric[], name: string): number | undefined {
  const v = metrics.find((m) => m.name === name)?.value;
  return typeof v === 'number' ? v : undefined;
}

function reject(out: Outcome, reason: SpbRejectReason, detail: string): Outcome {
  out.reject = { reason, detail };
  return out;
}

function ref(t: Target): DeviceRef {
  return { site: t.site, device: t.device, kind: t.kind };
}

function mapKey(group: string, node: string, device: string | undefined): string {
  return `${group}\u0000${node}\u0000${device ?? ''}`;
}
