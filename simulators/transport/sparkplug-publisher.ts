import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { UMetric } from 'sparkplug-payload/lib/sparkplugbpayload.js';
import { decodePayload, encodePayload } from '../../adapters/mqtt/sparkplug/codec.js';
import type { SimMessage } from '../engine/engine.js';
import type { PublisherStats } from './mqtt-publisher.js';

export interface SparkplugPublisherOptions {
  /** mqtt:// or mqtts://; credentials may be given in the URL. */
  url: string;
  /** Sparkplug group id; default `facility` (the gateway's default group). */
  group?: string;
  /** MQTT client ids are `<prefix>-<edge node>`. */
  clientIdPrefix?: string;
  caFile?: string;
  reconnectPeriodMs?: number;
  /** Messages handed to mqtt.js and not yet written; beyond it the runner waits. */
  maxOutstanding?: number;
  logger: Logger;
}

type MetricType = 'Double' | 'Boolean';

interface SimDevice {
  kind: string;
  /** Metric name → type, as announced in the device's last DBIRTH. */
  metrics: Map<string, MetricType>;
  born: boolean;
  /** After deviceDeath(): publishes nothing until reviveDevice(). */
  dead: boolean;
  lastValues: Map<string, number | boolean>;
}

interface EdgeNode {
  id: string;
  client: MqttClient;
  bdSeq: number;
  seq: number;
  born: boolean;
  /** Until restart(): a crashed node does not come back by itself. */
  crashed: boolean;
  devices: Map<string, SimDevice>;
  /** Metric name → alias, per device; aliases are unique within the edge node. */
  aliases: Map<string, number>;
  nextAlias: number;
  loseNext: boolean;
}

const NS = 'spBv1.0';
const KIND_METRIC = 'Properties/Kind';

/**
 * The simulators as Sparkplug B edge nodes: one edge node (one MQTT connection, with its NDEATH
 * as the will) per site, one Sparkplug device per simulated device. A device's first report is
 * its DBIRTH (every metric with an alias, its kind as `Properties/Kind`); later ones are DDATA by
 * alias only, with `is_null` for a metric its faulted sensor cannot measure. Every message of a
 * node carries the next sequence number; a `Node Control/Rebirth` command is answered with a
 * fresh NBIRTH and the DBIRTHs of all live devices.
 *
 * The fault methods (`loseNextMessage`, `sendUnknownAlias`, `deviceDeath`, `sendAfterDeath`, `crash`) play what
 * goes wrong in the field, for tests and demonstrations of the gateway's handling.
 */
export class SparkplugPublisher {
  private readonly nodes = new Map<string, EdgeNode>();
  private readonly group: string;
  private stopped = true;
  private sent = 0;
  private completed = 0;
  private errors = 0;
  private reconnects = 0;
  private readonly max: number;
  private bdSeqNext = 0;
  /** Rebirth commands answered, per edge node. */
  readonly rebirths = new Map<string, number>();

  constructor(private readonly opts: SparkplugPublisherOptions) {
    this.group = opts.group ?? 'facility';
    this.max = opts.maxOutstanding ?? 5000;
    const proto = new URL(opts.url).protocol;
    if (!['mqtt:', 'mqtts:', 'tcp:', 'tls:'].includes(proto))
      throw new Error(`unsupported broker URL scheme ${proto} (use mqtt:// or mqtts://)`);
  }

  /** Edge nodes connect on their first message; nothing to wait for here. */
  async start(): Promise<void> {
    this.stopped = false;
  }

  capacity(): number {
    return Math.max(0, this.max - (this.sent - this.completed));
  }

  publish(messages: readonly SimMessage[]): void {
    if (this.stopped) throw new Error('publisher not started');
    for (const m of messages) {
      const node = this.node(m.site);
      if (node.crashed) continue;
      let d = node.devices.get(m.device);
      if (!d) {
        d = { kind: m.kind, metrics: new Map(), born: false, dead: false, lastValues: new Map() };
        node.devices.set(m.device, d);
      }
      for (const [k, v] of Object.entries(m.values)) d.lastValues.set(k, v);
      if (d.dead) continue;
      let grew = false;
      for (const [k, v] of Object.entries(m.values)) {
        if (!d.metrics.has(k)) {
          d.metrics.set(k, typeof v === 'boolean' ? 'Boolean' : 'Double');
          grew = true;
        }
      }
      for (const k of m.bad) {
        if (!d.metrics.has(k)) {
          d.metrics.set(k, 'Double');
          grew = true;
        }
      }
      // Not connected yet (or again): the values are kept; the births that follow the connection carry them.
      if (!node.born || !node.client.connected) continue;
      // A metric the device has not announced needs a new DBIRTH: an alias nobody knows would be refused.
      if (!d.born || grew) {
        this.deviceBirth(node, m.device, d, m.ts, m.values, m.bad);
        continue;
      }
      const metrics: UMetric[] = [];
      for (const [k, v] of Object.entries(m.values))
        metrics.push({ alias: alias(node, m.device, k), type: d.metrics.get(k)!, value: v, timestamp: m.ts });
      for (const k of m.bad)
        metrics.push({
          alias: alias(node, m.device, k),
          type: d.metrics.get(k)!,
          value: null,
          isNull: true,
          timestamp: m.ts,
        });
      this.send(node, `DDATA/${node.id}/${m.device}`, m.ts, metrics);
    }
  }

  /** The next message of this edge node gets a sequence number but is never sent (a lost message). */
  loseNextMessage(site: string): void {
    this.node(site).loseNext = true;
  }

  /** A DDATA carrying an alias that no birth announced (a device that changed without rebirth). */
  sendUnknownAlias(site: string, device: string): void {
    const node = this.node(site);
    const now = Date.now();
    this.send(node, `DDATA/${node.id}/${device}`, now, [
      { alias: 65_000 + node.nextAlias, type: 'Double', value: 1, timestamp: now },
    ]);
  }

  /** DDEATH for one device; it stays silent until reviveDevice(). */
  deviceDeath(site: string, device: string): void {
    const node = this.node(site);
    const d = node.devices.get(device);
    if (!d) throw new Error(`no device ${device} at edge node ${site}`);
    d.dead = true;
    d.born = false;
    this.send(node, `DDEATH/${node.id}/${device}`, Date.now(), []);
  }

  /**
   * A DDATA for a device after its DDEATH, by the aliases of its last DBIRTH: an edge node that
   * keeps sending for a device it declared dead (a host must not take it as live data).
   */
  sendAfterDeath(site: string, device: string, values: Record<string, number | boolean>): void {
    const node = this.node(site);
    const d = node.devices.get(device);
    if (!d?.dead) throw new Error(`device ${device} at edge node ${site} is not dead`);
    const now = Date.now();
    this.send(
      node,
      `DDATA/${node.id}/${device}`,
      now,
      Object.entries(values).map(([k, v]) => ({
        alias: alias(node, device, k),
        type: d.metrics.get(k) ?? (typeof v === 'boolean' ? 'Boolean' : 'Double'),
        value: v,
        timestamp: now,
      })),
    );
  }

  /** Brings a dead device back: its next report is a DBIRTH. */
  reviveDevice(site: string, device: string): void {
    const d = this.node(site).devices.get(device);
    if (d) d.dead = false;
  }

  /** Drops the edge node's connection without DISCONNECT: the broker publishes its NDEATH will. */
  crash(site: string): void {
    const node = this.node(site);
    node.crashed = true;
    node.born = false;
    node.client.end(true);
  }

  /** A crashed edge node starts again: new connection, new bdSeq, births. */
  restart(site: string): void {
    const old = this.node(site);
    if (!old.crashed) return;
    this.nodes.delete(site);
    const node = this.node(site);
    for (const [id, d] of old.devices) node.devices.set(id, { ...d, born: false });
  }

  async drain(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.sent > this.completed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  stats(): PublisherStats {
    return {
      sent: this.sent,
      completed: this.completed,
      errors: this.errors,
      outstanding: this.sent - this.completed,
      connected: [...this.nodes.values()].some((n) => n.client.connected),
      retransmitted: 0,
      reconnects: this.reconnects,
    };
  }

  /** Publishes each live node's NDEATH (the spec's clean shutdown), then disconnects. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      [...this.nodes.values()].map(async (n) => {
        if (n.client.connected && !n.crashed) {
          await n.client
            .publishAsync(this.topic('NDEATH', n.id), encodePayload(this.deathPayload(n.bdSeq)), { qos: 1 })
            .catch(() => undefined);
        }
        await n.client.endAsync().catch(() => undefined);
      }),
    );
    this.nodes.clear();
  }

  private node(site: string): EdgeNode {
    const existing = this.nodes.get(site);
    if (existing) return existing;
    const bdSeq = this.bdSeqNext++ % 256;
    const u = new URL(this.opts.url);
    const options: IClientOptions = {
      clientId: `${this.opts.clientIdPrefix ?? `facility-sim-spb-${process.pid}`}-${site}`,
      clean: true,
      reconnectPeriod: this.opts.reconnectPeriodMs ?? 1000,
      queueQoSZero: false,
      will: {
        topic: this.topic('NDEATH', site),
        payload: encodePayload(this.deathPayload(bdSeq)),
        qos: 1,
        retain: false,
      },
      ca: this.opts.caFile ? readFileSync(this.opts.caFile) : undefined,
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
    };
    const client = connect(`${u.protocol}//${u.host}`, options);
    const node: EdgeNode = {
      id: site,
      client,
      bdSeq,
      seq: 0,
      born: false,
      crashed: false,
      devices: new Map(),
      aliases: new Map(),
      nextAlias: 1,
      loseNext: false,
    };
    this.nodes.set(site, node);
    const log = this.opts.logger;
    client.on('connect', () => {
      if (node.crashed) return;
      client.subscribe(this.topic('NCMD', site), { qos: 0 });
      this.births(node);
    });
    client.on('reconnect', () => this.reconnects++);
    client.on('close', () => {
      node.born = false;
      // A new connection is a new session: its will and birth carry the next bdSeq.
      node.bdSeq = this.bdSeqNext++ % 256;
      if (client.options.will) client.options.will.payload = encodePayload(this.deathPayload(node.bdSeq));
    });
    client.on('error', (err) =>
      log.warn({ node: site, err: err.message }, 'Sparkplug edge node connection error'),
    );
    client.on('message', (_topic, payload) => {
      let rebirth = false;
      try {
        rebirth = decodePayload(payload).metrics.some(
          (m) => m.name === 'Node Control/Rebirth' && m.value === true,
        );
      } catch (err) {
        log.warn({ node: site, err: (err as Error).message }, 'undecodable NCMD');
      }
      if (rebirth && node.born) {
        this.rebirths.set(site, (this.rebirths.get(site) ?? 0) + 1);
        log.info({ node: site }, 'rebirth requested: publishing births again');
        this.births(node);
      }
    });
    return node;
  }

  /** NBIRTH (seq 0) and the DBIRTH of every live device with its last values. */
  private births(node: EdgeNode): void {
    const now = Date.now();
    node.seq = 0;
    node.born = true;
    node.loseNext = false;
    const metrics: UMetric[] = [
      { name: 'bdSeq', type: 'UInt64', value: node.bdSeq, timestamp: now },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false, timestamp: now },
    ];
    this.write(node, `NBIRTH/${node.id}`, encodePayload({ timestamp: now, seq: 0, metrics }));
    for (const [id, d] of node.devices) {
      d.born = false;
      if (!d.dead && d.lastValues.size > 0)
        this.deviceBirth(node, id, d, now, Object.fromEntries(d.lastValues), []);
    }
  }

  private deviceBirth(
    node: EdgeNode,
    device: string,
    d: SimDevice,
    ts: number,
    values: Record<string, number | boolean>,
    bad: readonly string[],
  ): void {
    const metrics: UMetric[] = [{ name: KIND_METRIC, type: 'String', value: d.kind, timestamp: ts }];
    for (const [k, type] of d.metrics) {
      const v = bad.includes(k) ? undefined : values[k];
      metrics.push(
        v === undefined
          ? { name: k, alias: alias(node, device, k), type, value: null, isNull: true, timestamp: ts }
          : { name: k, alias: alias(node, device, k), type, value: v, timestamp: ts },
      );
    }
    d.born = true;
    this.send(node, `DBIRTH/${node.id}/${device}`, ts, metrics);
  }

  private send(node: EdgeNode, rest: string, ts: number, metrics: UMetric[]): void {
    node.seq = (node.seq + 1) % 256;
    if (node.loseNext) {
      node.loseNext = false;
      return;
    }
    this.write(node, rest, encodePayload({ timestamp: ts, seq: node.seq, metrics }));
  }

  private write(node: EdgeNode, rest: string, payload: Buffer): void {
    this.sent++;
    node.client.publish(`${NS}/${this.group}/${rest}`, payload, { qos: 0 }, (err) => {
      this.completed++;
      if (err) this.errors++;
    });
  }

  private topic(type: 'NDEATH' | 'NCMD', node: string): string {
    return `${NS}/${this.group}/${type}/${node}`;
  }

  private deathPayload(bdSeq: number): { timestamp: number; metrics: UMetric[] } {
    return { timestamp: Date.now(), metrics: [{ name: 'bdSeq', type: 'UInt64', value: bdSeq }] };
  }
}

function alias(node: EdgeNode, device: string, metric: string): number {
  const key = `${device}\u0000${metric}`;
  let a = node.aliases.get(key);
  if (a === undefined) {
    a = node.nextAlias++;
    node.aliases.set(key, a);
  }
  return a;
}
