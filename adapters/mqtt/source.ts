import type { Logger } from '../../gateway/src/core/log.js';
import type { Component, ComponentHealth } from '../../gateway/src/core/types.js';
import type { MqttConfig } from '../../gateway/src/config/schema.js';
import type { IngestPipeline, RejectPublisher } from '../../gateway/src/ingest/pipeline.js';
import type { Outbox } from '../../gateway/src/storage/outbox.js';
import { MqttIngestClient, redact } from './client.js';
import { DeadLetterQueue, type DeadLetterStats } from './dead-letters.js';
import type { SparkplugIngest } from './sparkplug/ingest.js';

/**
 * MQTT telemetry in: messages go through the ingest pipeline into the outbox, and each one is
 * acknowledged to the broker only after the outbox commit that made it durable.
 */
export class MqttSource implements Component, RejectPublisher {
  readonly name = 'mqtt';
  private client?: MqttIngestClient;
  private deadLetters?: DeadLetterQueue;

  constructor(
    private readonly cfg: MqttConfig & { url: string },
    private readonly pipeline: () => IngestPipeline,
    private readonly outbox: Outbox,
    private readonly log: Logger,
    /** Sparkplug B on the same connection (`spBv1.0/<group>/#`), when enabled. */
    private readonly sparkplug?: SparkplugIngest,
  ) {}

  async start(): Promise<void> {
    const pipeline = this.pipeline();
    const outbox = this.outbox;
    const spb = this.sparkplug;
    const cfg = spb ? { ...this.cfg, topics: [...this.cfg.topics, ...spb.topics] } : this.cfg;
    const client = new MqttIngestClient(
      cfg,
      {
        onMessage: spb
          ? (topic, payload) =>
              spb.handles(topic)
                ? spb.handleMessage(topic, payload, Date.now())
                : pipeline.handleMessage(topic, payload, Date.now())
          : (topic, payload) => pipeline.handleMessage(topic, payload, Date.now()),
        afterDurable: (cb) => outbox.afterCommit(cb),
        isFull: () => outbox.isFull(),
        onDrain: (cb) => outbox.onDrain(cb),
      },
      this.log,
      spb ? (now) => spb.will(now) : undefined,
    );
    this.client = client;
    // Rejected messages: their own QoS 1 path with its own bound, beside (not in) the receive path.
    const letters = new DeadLetterQueue(
      {
        connected: () => client.isConnected,
        nextId: () => client.nextPacketId(),
        send: (topic, payload, id, dup) => client.publishQos1(topic, payload, id, dup),
      },
      this.cfg.rejectedQueue,
    );
    this.deadLetters = letters;
    client.on('puback', (id: number) => letters.onPuback(id));
    client.on('connect', () => letters.onConnect());
    if (spb) {
      spb.attach((topic, payload, retained) => client.publish(topic, payload, retained));
      client.on('subscribed', () => spb.onSubscribed());
    }
    client.start();
  }

  publishRejected(site: string, kind: string, device: string, payload: string): void {
    this.deadLetters?.enqueue(`${this.cfg.rejectedTopicPrefix}/${site}/${kind}/${device}`, payload);
  }

  /** Rejected messages acknowledged by the broker, dropped at the bound, and pending. */
  deadLetterStats(): DeadLetterStats | undefined {
    return this.deadLetters?.stats();
  }

  /** Resolves once subscribed (tests and start-up logs use it). */
  whenSubscribed(timeoutMs = 10_000): Promise<void> {
    const c = this.client;
    if (!c) return Promise.reject(new Error('mqtt source not started'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`not subscribed after ${timeoutMs} ms: ${c.error ?? ''}`)),
        timeoutMs,
      );
      c.once('subscribed', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    this.sparkplug?.beforeDisconnect(Date.now());
    await this.client?.stop();
    this.client = undefined;
  }

  health(): ComponentHealth {
    const c = this.client;
    if (!c) return { state: 'stopped' };
    const s = c.connectionState;
    return {
      state: s === 'connected' ? 'ok' : s === 'connecting' ? 'starting' : 'down',
      url: redact(this.cfg.url),
      detail: c.error,
      ...c.stats,
      deadLetters: this.deadLetters?.stats(),
    };
  }
}
