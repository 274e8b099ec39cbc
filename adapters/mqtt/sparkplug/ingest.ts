import { RateLimitedLog } from '../../../gateway/src/core/log.js';
import type { Source, SourceContext } from '../../../gateway/src/core/source.js';
import type { ComponentHealth } from '../../../gateway/src/core/types.js';
import { decodePayload, rebirthPayload } from './codec.js';
import { HostState, type HostMessage } from './host-state.js';
import { registerSparkplugMetrics, type SparkplugCounters as BaseCounters } from './metrics.js';
import type { SparkplugConfig } from './schema.js';
import {
  MESSAGE_TYPES,
  NAMESPACE,
  SPB_REJECT_REASONS,
  SparkplugTracker,
  parseTopic,
  rebirthTopic,
  type DeviceRef,
  type MessageType,
  type SpbRejectReason,
} from './tracker.js';

/** Publishes on the gateway's MQTT connection; `retained` messages go out at QoS 1 with retain set. */
export type CommandPublisher = (topic: string, payload: Buffer, retained?: boolean) => void;

/** The counters, with the message types and reasons this ingest uses as keys. */
export interface SparkplugCounters extends BaseCounters {
  messages: Record<MessageType, number>;
  rejected: Record<SpbRejectReason, number>;
}

/**
 * Sparkplug B on the gateway's MQTT connection: the MQTT source hands over every message under
 * `spBv1.0/`, this decodes it, runs the tracker and acts on its outcome (readings into the
 * pipeline, presence into the registry, rebirth commands back to the edge node).
 */
export class SparkplugIngest implements Source {
  readonly name = 'sparkplug';
  readonly counters: SparkplugCounters;
  private tracker: SparkplugTracker;
  /** Set by start(): where readings, presence and log lines go. */
  private ctx?: SourceContext;
  private rlog?: RateLimitedLog;
  private metricsRegistered = false;
  private publish: CommandPublisher | undefined;
  private reconnect: (() => void) | undefined;
  private running = false;
  /** The host application STATE, when `hostId` is configured. */
  readonly host: HostState | undefined;

  /**
   * `clustered`: several gateways share the host id (cluster mode, ADR 0181); each re-asserts its
   * birth over an older member's, so that a member's will is older than the birth edge nodes saw.
   */
  constructor(
    private readonly cfg: SparkplugConfig,
    clustered = false,
  ) {
    this.tracker = new SparkplugTracker(cfg);
    this.host = cfg.hostId !== undefined ? new HostState(cfg.hostId, clustered) : undefined;
    this.counters = {
      messages: Object.fromEntries(MESSAGE_TYPES.map((t) => [t, 0])) as Record<MessageType, number>,
      rejected: Object.fromEntries(SPB_REJECT_REASONS.map((r) => [r, 0])) as Record<SpbRejectReason, number>,
      readings: 0,
      readingsRejected: 0,
      nullValues: 0,
      ignoredMetrics: 0,
      rebirthRequests: 0,
      rebirthsLeftToOwner: 0,
    };
  }

  /** The MQTT filters to subscribe to: one per configured group, and our own STATE topic. */
  get topics(): string[] {
    const groups = this.cfg.groups.map((g) => `${NAMESPACE}/${g}/#`);
    return this.host ? [...groups, this.host.topic] : groups;
  }

  /** The will of the next MQTT CONNECT: STATE offline (host application only). */
  will(now: number): HostMessage | undefined {
    return this.host?.will(now);
  }

  /** The subscriptions were granted: STATE online. */
  onSubscribed(): void {
    if (this.host) this.send(this.host.birth());
  }

  /** About to disconnect cleanly (which discards the will): STATE offline first. */
  beforeDisconnect(now: number): void {
    // Cluster mode: not while a newer member's birth is in force (ADR 0181).
    if (this.host?.isOnline && !this.host.outranked) this.send(this.host.death(now));
  }

  /**
   * Set by the MQTT source once it can publish (rebirth commands); `reconnect` makes the MQTT
   * connection again at once (cluster mode: a newer STATE birth, ADR 0181).
   */
  attach(publish: CommandPublisher, reconnect?: () => void): void {
    this.publish = publish;
    this.reconnect = reconnect;
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.rlog = new RateLimitedLog(ctx.log);
    // Once per registry: a restart after a failure must not register the same names again.
    if (!this.metricsRegistered) {
      registerSparkplugMetrics(ctx.metrics, () => this);
      this.metricsRegistered = true;
    }
    this.tracker = new SparkplugTracker(this.cfg);
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.publish = undefined;
    this.reconnect = undefined;
  }

  handles(topic: string): boolean {
    return topic.startsWith(NAMESPACE + '/');
  }

  /** One MQTT message under `spBv1.0/`. Never throws. */
  handleMessage(topic: string, payload: Buffer, now: number): void {
    const ctx = this.ctx;
    if (!this.running || !ctx) return;
    if (this.host && topic === this.host.topic) {
      const again = this.host.onMessage(payload);
      if (this.host.takeReconnect()) {
        this.rlog?.warn(
          'spb:state-reconnect',
          { topic },
          'a newer cluster member sharing our Sparkplug host id died: connecting again for a newer STATE birth',
        );
        this.reconnect?.();
        return;
      }
      if (again) {
        this.rlog?.warn(
          'spb:state',
          { topic },
          'our Sparkplug STATE said offline while connected: birth published again',
        );
        this.send(again);
      }
      return;
    }
    const t = parseTopic(topic);
    if (!t) return this.rejected('topic_invalid', `not a Sparkplug B topic: ${topic.slice(0, 200)}`, topic);
    this.counters.messages[t.type]++;
    if (t.type === 'NCMD' || t.type === 'DCMD') return;
    let p;
    try {
      p = decodePayload(payload);
    } catch (err) {
      return this.rejected('payload_invalid', (err as Error).message.slice(0, 200), topic);
    }
    const out = this.tracker.handle(t, p, now);
    this.counters.nullValues += out.nulls;
    this.counters.ignoredMetrics += out.ignored;
    for (const d of out.offline) ctx.presence?.setPresence(d.site, d.device, false);
    for (const d of out.online) this.online(d);
    if (out.rebirth) this.requestRebirth(out.rebirth.group, out.rebirth.node, now);
    if (out.reject) this.rejected(out.reject.reason, out.reject.detail, topic);
    for (const r of out.readings) {
      const bad = ctx.ingest(r, now);
      if (bad) this.counters.readingsRejected++;
      else this.counters.readings++;
    }
  }

  health(): ComponentHealth {
    const nodes = this.tracker.view();
    const devices = nodes.flatMap((n) => n.devices);
    const rejected = Object.values(this.counters.rejected).reduce((a, b) => a + b, 0);
    return {
      state: this.running ? 'ok' : 'stopped',
      groups: this.cfg.groups,
      nodes: nodes.length,
      nodesOnline: nodes.filter((n) => n.online).length,
      devices: devices.length,
      devicesOnline: devices.filter((d) => d.online).length,
      readings: this.counters.readings,
      rejected,
      rebirthRequests: this.counters.rebirthRequests,
      ...(this.ctx?.owns ? { rebirthsLeftToOwner: this.counters.rebirthsLeftToOwner } : {}),
      ...(this.host
        ? { hostId: this.host.hostId, hostState: this.host.isOnline ? 'online' : 'offline' }
        : {}),
    };
  }

  private send(m: HostMessage): void {
    this.publish?.(m.topic, m.payload, true);
  }

  /** Edge nodes and devices as the tracker sees them. */
  view(): ReturnType<SparkplugTracker['view']> {
    return this.tracker.view();
  }

  private online(d: DeviceRef): void {
    const presence = this.ctx?.presence;
    presence?.ensure(d.site, d.kind, d.device);
    presence?.setPresence(d.site, d.device, true);
  }

  private requestRebirth(group: string, node: string, now: number): void {
    if (!this.publish) return;
    // Cluster mode: every member sees the same gap; the member owning the partition of
    // (group, node) asks, so the edge node gets one request (ADR 0181). Until a dead owner's
    // partition is taken over nobody asks; the new owner does at the next message after
    // `rebirthMinIntervalMs`, as the tracker keeps the node awaiting a rebirth on every member.
    const owns = this.ctx?.owns;
    if (owns && !owns(group, node)) {
      this.counters.rebirthsLeftToOwner++;
      return;
    }
    this.counters.rebirthRequests++;
    this.rlog?.warn(
      `rebirth:${group}/${node}`,
      { group, node },
      'asking a Sparkplug edge node for a rebirth',
    );
    this.publish(rebirthTopic(group, node), rebirthPayload(now));
  }

  private rejected(reason: SpbRejectReason, detail: string, topic: string): void {
    this.counters.rejected[reason]++;
    this.rlog?.warn(
      `spb:${reason}:${topic.slice(0, 120)}`,
      { reason, detail, topic: topic.slice(0, 200) },
      'Sparkplug message dropped',
    );
  }
}
