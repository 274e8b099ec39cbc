import type { ComponentHealth } from '../../gateway/src/core/types.js';
import type { Source, SourceContext } from '../../gateway/src/core/source.js';
import type { MqttConfig } from '../../gateway/src/config/schema.js';
import type { RejectPublisher } from '../../gateway/src/ingest/pipeline.js';
import { MqttIngestClient, redact } from './client.js';
import { join } from 'node:path';
import { SqliteDeadLetterStore } from './dead-letter-store.js';
import { DeadLetterQueue, type DeadLetterStats } from './dead-letters.js';
import type { SparkplugIngest } from './sparkplug/ingest.js';

/** Where to connect and as whom, settled at start (the embedded broker's port is known only then). */
export interface MqttEndpoint {
  url: string;
  username?: string;
  password?: string;
}

/**
 * MQTT telemetry in: messages go through the ingest pipeline into the outbox, and each one is
 * acknowledged to the broker only after the outbox commit that made it durable.
 */
export class MqttSource implements Source, RejectPublisher {
  readonly name = 'mqtt';
  private client?: MqttIngestClient;
  private deadLetters?: DeadLetterQueue;
  private letterStore?: SqliteDeadLetterStore;
  private letterOpenFailed = false;
  private url?: string;

  constructor(
    private readonly cfg: MqttConfig,
    private readonly endpoint: () => MqttEndpoint,
    /** Sparkplug B on the same connection (`spBv1.0/<group>/#`), when enabled. */
    private readonly sparkplug?: SparkplugIngest,
  ) {}

  async start(ctx: SourceContext): Promise<void> {
    const ep = this.endpoint();
    this.url = ep.url;
    const spb = this.sparkplug;
    const base = { ...this.cfg, ...ep };
    const cfg = spb ? { ...base, topics: [...base.topics, ...spb.topics] } : base;
    // The context's functions are bound: taken once here, so each message costs the same calls
    // as when the pipeline was wired in directly.
    const handle = ctx.ingestMessage;
    const client = new MqttIngestClient(
      cfg,
      {
        onMessage: spb
          ? (topic, payload) =>
              spb.handles(topic)
                ? spb.handleMessage(topic, payload, Date.now())
                : handle(topic, payload, Date.now())
          : (topic, payload) => handle(topic, payload, Date.now()),
        afterDurable: ctx.afterDurable,
        isFull: ctx.isFull,
        onDrain: ctx.onDrain,
      },
      ctx.log,
      spb ? (now) => spb.will(now) : undefined,
    );
    this.client = client;
    // Rejected messages: their own QoS 1 path with its own bound, beside (not in) the receive path,
    // kept on disk in a file of their own until acknowledged (ADR 0090).
    const log = ctx.log;
    const store = this.openLetterStore(join(ctx.dataDir, 'dead-letters.db'), log);
    const letters = new DeadLetterQueue(
      {
        connected: () => client.isConnected,
        nextId: () => client.nextPacketId(),
        send: (topic, payload, id, dup) => client.publishQos1(topic, payload, id, dup),
      },
      this.cfg.rejectedQueue,
      store,
    );
    const restored = letters.stats().restored;
    if (restored > 0) log.info({ restored }, 'dead letters kept from before: sending them');
    this.deadLetters = letters;
    client.on('puback', (id: number) => letters.onPuback(id));
    client.on('connect', () => letters.onConnect());
    if (spb) {
      spb.attach(
        (topic, payload, retained) => client.publish(topic, payload, retained),
        () => client.reconnectNow('a newer Sparkplug STATE birth is needed (ADR 0181)'),
      );
      client.on('subscribed', () => spb.onSubscribed());
    }
    client.start();
  }

  /**
   * The dead letters' file. One that cannot be opened (unreadable, not a database) must not stop
   * the ingest: the letters then live in memory only, as before ADR 0090, and it shows as an error.
   */
  private openLetterStore(file: string, log: SourceContext['log']): SqliteDeadLetterStore | undefined {
    this.letterOpenFailed = false;
    try {
      this.letterStore = new SqliteDeadLetterStore(file, (err) =>
        log.error({ err }, 'dead letters not kept on disk (still sent from memory)'),
      );
      return this.letterStore;
    } catch (err) {
      this.letterOpenFailed = true;
      log.error({ err, file }, 'dead-letter file not usable: dead letters kept in memory only');
      return undefined;
    }
  }

  publishRejected(site: string, kind: string, device: string, payload: string): void {
    this.deadLetters?.enqueue(`${this.cfg.rejectedTopicPrefix}/${site}/${kind}/${device}`, payload);
  }

  /** Rejected messages acknowledged by the broker, dropped at the bound, and pending. */
  deadLetterStats(): (DeadLetterStats & { storeErrors: number }) | undefined {
    const s = this.deadLetters?.stats();
    const storeErrors = (this.letterStore?.errors ?? 0) + (this.letterOpenFailed ? 1 : 0);
    return s ? { ...s, storeErrors } : undefined;
  }

  /**
   * Resolves once subscribed (tests and start-up logs use it): at once when the subscriptions of
   * the connection that is up were already granted, which is the usual case with the embedded
   * broker (the SUBACK arrives while the gateway is still starting its HTTP server).
   */
  whenSubscribed(timeoutMs = 10_000): Promise<void> {
    const c = this.client;
    if (!c) return Promise.reject(new Error('mqtt source not started'));
    if (c.isSubscribed) return Promise.resolve();
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
    // Letters still unacknowledged stay on disk for the next start.
    this.letterStore?.close();
    this.letterStore = undefined;
  }

  health(): ComponentHealth {
    const c = this.client;
    if (!c) return { state: 'stopped' };
    const s = c.connectionState;
    return {
      state: s === 'connected' ? 'ok' : s === 'connecting' ? 'starting' : 'down',
      url: redact(this.url ?? ''),
      detail: c.error,
      ...c.stats,
      deadLetters: this.deadLetterStats(),
    };
  }
}
