import { connectAsync, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { payloadOf, type SimMessage } from '../engine/engine.js';

export interface MqttPublisherOptions {
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** Most messages handed to the client and not yet acknowledged (QoS ≥ 1) or written (QoS 0). */
  maxOutstanding?: number;
  logger: Logger;
}

export interface PublisherStats {
  sent: number;
  completed: number;
  errors: number;
  outstanding: number;
  connected: boolean;
}

/**
 * One MQTT connection for the whole fleet: a device is a topic, not a connection, which is
 * what lets one process publish for 10,000 devices. Flow control is a cap on outstanding
 * messages: the runner asks for `capacity()` and leaves the rest due in the engine.
 */
export class MqttPublisher {
  private client: MqttClient | null = null;
  private sent = 0;
  private completed = 0;
  private errors = 0;
  private readonly maxOutstanding: number;

  constructor(private readonly opts: MqttPublisherOptions) {
    this.maxOutstanding = opts.maxOutstanding ?? 20_000;
  }

  async start(): Promise<void> {
    this.client = await connectAsync(this.opts.url, {
      clientId: this.opts.clientId ?? `facility-sim-${process.pid}-${Date.now().toString(36)}`,
      username: this.opts.username,
      password: this.opts.password,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // QoS 0 reports while disconnected are dropped, as a real device's would be.
      queueQoSZero: false,
    });
    this.client.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'mqtt error'));
    this.client.on('offline', () => this.opts.logger.warn('mqtt offline; reconnecting'));
    this.client.on('connect', () => this.opts.logger.info({ url: this.opts.url }, 'mqtt connected'));
  }

  capacity(): number {
    return Math.max(0, this.maxOutstanding - (this.sent - this.completed));
  }

  publish(messages: readonly SimMessage[]): void {
    const c = this.client;
    if (!c) throw new Error('publisher not started');
    for (const m of messages) {
      this.sent++;
      c.publish(m.topic, payloadOf(m), { qos: m.qos }, (err) => {
        this.completed++;
        if (err) this.errors++;
      });
    }
  }

  /** Resolves once everything handed over is acknowledged or timeoutMs passes. */
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
      connected: this.client?.connected ?? false,
    };
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) await c.endAsync(false).catch(() => c.end(true));
  }
}
