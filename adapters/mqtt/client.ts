import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import mqttPacket from 'mqtt-packet';
import type { IConnackPacket, IPublishPacket, ISubackPacket, Packet } from 'mqtt-packet';
import { backoffMs } from '../../gateway/src/core/backoff.js';
import type { Logger } from '../../gateway/src/core/log.js';
import { PacketStream } from './frame.js';
import type { MqttConfig } from '../../gateway/src/config/schema.js';

/**
 * What the client hands messages to. `onMessage` runs synchronously for every PUBLISH;
 * `afterDurable` is asked once per socket read to call back when everything handed over so far
 * is durable, and only then are those messages acknowledged.
 */
export interface DurableHandler {
  onMessage(topic: string, payload: Buffer): void;
  afterDurable(cb: () => void): void;
  /** True while the store cannot take more: the client stops reading the socket. */
  isFull(): boolean;
  onDrain(cb: () => void): void;
}

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'stopped';

/** A will for the next CONNECT, asked for on every connection attempt (its payload may carry the time). */
export type WillProvider = (now: number) => { topic: string; payload: Buffer } | undefined;

/**
 * A subscriber built for ingest on mqtt-packet (the parser mqtt.js itself uses).
 *
 * Why not mqtt.js: its packet pump handles one PUBLISH at a time and waits for the previous
 * acknowledgement callback before parsing the next, so holding acks until a group commit
 * (`customHandleAcks`, MQTT 5 only) caps ingest at one commit per message. Here the acks of
 * every message parsed from one socket read are held together and sent in order, in one write,
 * right after the outbox commit that made them durable.
 */
export class MqttIngestClient extends EventEmitter {
  private socket?: Socket;
  private parser?: ReturnType<typeof mqttPacket.parser>;
  private state: ConnectionState = 'stopped';
  private epoch = 0;
  private attempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  private lastRx = 0;
  private connected = false;
  /** The broker granted the subscriptions of the connection that is up now. */
  private subscribed = false;
  private pendingAcks: number[] = [];
  /** Packets split out of the socket stream (with the unfinished tail of the last read). */
  private readonly frames = new PacketStream();
  private pendingRecs: number[] = [];
  /** QoS 2 ids received and not yet released: a duplicate PUBLISH is not handed over twice. */
  private readonly qos2 = new Set<number>();
  private nextId = 1;
  private paused = false;
  private lastError?: string;
  readonly stats = { messages: 0, acks: 0, connects: 0, disconnects: 0, bytesIn: 0 };

  constructor(
    private readonly cfg: MqttConfig & { url: string },
    private readonly handler: DurableHandler,
    private readonly log: Logger,
    /** Sent with QoS 1 and retain set (the Sparkplug host application STATE). */
    private readonly will?: WillProvider,
  ) {
    super();
  }

  get connectionState(): ConnectionState {
    return this.state;
  }
  get error(): string | undefined {
    return this.lastError;
  }

  start(): void {
    this.state = 'connecting';
    this.handler.onDrain(() => this.resume());
    this.open();
  }

  private open(): void {
    const u = new URL(this.cfg.url);
    const secure = u.protocol === 'mqtts:' || u.protocol === 'tls:';
    const port = Number(u.port || (secure ? 8883 : 1883));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const epoch = ++this.epoch;
    let sock: Socket;
    if (secure) {
      const tls = this.cfg.tls;
      sock = tlsConnect({
        host,
        port,
        servername: /^[\d.:]+$/.test(host) ? undefined : host,
        ca: tls?.ca ? readFileSync(tls.ca) : undefined,
        cert: tls?.cert ? readFileSync(tls.cert) : undefined,
        key: tls?.key ? readFileSync(tls.key) : undefined,
        rejectUnauthorized: tls?.rejectUnauthorized ?? true,
      });
    } else {
      sock = netConnect({ host, port });
    }
    sock.setNoDelay(true);
    this.socket = sock;
    const parser = mqttPacket.parser({ protocolVersion: this.cfg.protocolVersion });
    this.parser = parser;
    parser.on('packet', (p: Packet) => this.onPacket(p, epoch));
    parser.on('error', (err: Error) => this.fail(epoch, `protocol error: ${err.message}`));
    const connectTimer = setTimeout(() => this.fail(epoch, 'connect timed out'), this.cfg.connectTimeoutMs);
    sock.once(secure ? 'secureConnect' : 'connect', () => {
      const username = u.username ? decodeURIComponent(u.username) : this.cfg.username;
      const password = u.password ? decodeURIComponent(u.password) : this.cfg.password;
      const will = this.will?.(Date.now());
      this.write({
        will: will ? { topic: will.topic, payload: will.payload, qos: 1, retain: true } : undefined,
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: this.cfg.protocolVersion,
        clientId: this.cfg.clientId,
        clean: this.cfg.cleanSession,
        keepalive: this.cfg.keepaliveSec,
        username,
        password: password !== undefined ? Buffer.from(password) : undefined,
        properties:
          this.cfg.protocolVersion === 5
            ? { sessionExpiryInterval: this.cfg.sessionExpirySec, receiveMaximum: this.cfg.receiveMaximum }
            : undefined,
      });
    });
    sock.on('data', (chunk: Buffer) => {
      if (epoch !== this.epoch) return;
      this.lastRx = Date.now();
      this.stats.bytesIn += chunk.length;
      this.onData(chunk, parser, epoch);
      this.flushAcks(epoch);
    });
    sock.on('error', (err) => this.fail(epoch, err.message));
    sock.on('close', () => {
      clearTimeout(connectTimer);
      this.fail(epoch, 'connection closed');
    });
    this.once(`connack:${epoch}`, () => clearTimeout(connectTimer));
  }

  private onPacket(p: Packet, epoch: number): void {
    switch (p.cmd) {
      case 'publish':
        return this.onPublish(p, epoch);
      case 'pubrel':
        // QoS 2, second half: the broker released the id; complete it.
        this.qos2.delete(p.messageId!);
        this.write({ cmd: 'pubcomp', messageId: p.messageId! });
        return;
      case 'connack':
        return this.onConnack(p, epoch);
      case 'suback':
        return this.onSuback(p);
      case 'puback':
        // Only our own QoS 1 publishes are acknowledged to us (dead letters): not the receive path.
        this.emit('puback', p.messageId);
        return;
      case 'pingresp':
        return;
      case 'disconnect':
        this.fail(epoch, `broker disconnected us (reason ${(p as { reasonCode?: number }).reasonCode ?? 0})`);
        return;
      default:
        return;
    }
  }

  private onPublish(p: IPublishPacket, _epoch: number): void {
    const payload = typeof p.payload === 'string' ? Buffer.from(p.payload) : p.payload;
    this.deliver(p.topic, payload, p.qos, p.messageId ?? 0);
  }

  private deliver(topic: string, payload: Buffer, qos: number, id: number): void {
    this.stats.messages++;
    if (qos === 2) {
      if (!this.qos2.has(id)) {
        this.qos2.add(id);
        this.handler.onMessage(topic, payload);
      }
      this.pendingRecs.push(id);
      return;
    }
    this.handler.onMessage(topic, payload);
    if (qos === 1) this.pendingAcks.push(id);
  }

  /**
   * Splits the stream into packets. PUBLISH, nearly all of the traffic, is decoded here with the
   * payload as a view into the socket's buffer; every other packet goes to mqtt-packet. This
   * halves the per-message parsing cost (mqtt-packet copies each packet through a BufferList and
   * builds a packet object), which is a third of the gateway's CPU during a backlog drain.
   */
  private onData(chunk: Buffer, parser: ReturnType<typeof mqttPacket.parser>, epoch: number): void {
    const err = this.frames.push(chunk, (buf, b0, off, start, end) => {
      if (b0 >> 4 === 3) this.fastPublish(buf, b0, start, end, epoch);
      else parser.parse(buf.subarray(off, end));
      return epoch === this.epoch;
    });
    if (err) this.fail(epoch, err);
  }

  private fastPublish(buf: Buffer, b0: number, start: number, end: number, epoch: number): void {
    const qos = (b0 >> 1) & 3;
    let p = start;
    const tlen = (buf[p]! << 8) | buf[p + 1]!;
    p += 2;
    const topic = buf.toString('utf8', p, p + tlen);
    p += tlen;
    let id = 0;
    if (qos > 0) {
      id = (buf[p]! << 8) | buf[p + 1]!;
      p += 2;
    }
    if (this.cfg.protocolVersion === 5) {
      // Properties (payload format, expiry, user properties...) are not used for ingest; skip them.
      let plen = 0;
      let mult = 1;
      for (let n = 0; n < 4; n++) {
        const b = buf[p++]!;
        plen += (b & 0x7f) * mult;
        if ((b & 0x80) === 0) break;
        mult *= 128;
      }
      p += plen;
    }
    if (qos === 3 || p > end || tlen === 0) return this.fail(epoch, 'protocol error: malformed PUBLISH');
    this.deliver(topic, buf.subarray(p, end), qos, id);
  }

  /** Hands the acks of everything parsed so far to the durable store's next commit. */
  private flushAcks(epoch: number): void {
    if (this.pendingAcks.length || this.pendingRecs.length) {
      const acks = this.pendingAcks;
      const recs = this.pendingRecs;
      this.pendingAcks = [];
      this.pendingRecs = [];
      this.handler.afterDurable(() => this.sendAcks(acks, recs, epoch));
    }
    if (this.handler.isFull() && !this.paused && this.socket) {
      this.paused = true;
      this.socket.pause();
      this.log.warn('outbox full: stopped reading from the broker until it drains');
    }
  }

  private sendAcks(acks: number[], recs: number[], epoch: number): void {
    // After a reconnect the broker redelivers whatever we did not ack on the old connection;
    // acking old ids on the new one would confirm the wrong messages.
    if (epoch !== this.epoch || !this.connected || !this.socket) return;
    const n = acks.length + recs.length;
    const buf = Buffer.allocUnsafe(n * 4);
    let o = 0;
    for (let i = 0; i < acks.length; i++) {
      const id = acks[i]!;
      buf[o] = 0x40; // PUBACK, remaining length 2: reason code 0 and no properties may be omitted (MQTT 5 3.4.2.1)
      buf[o + 1] = 2;
      buf[o + 2] = id >> 8;
      buf[o + 3] = id & 0xff;
      o += 4;
    }
    for (let i = 0; i < recs.length; i++) {
      const id = recs[i]!;
      buf[o] = 0x50; // PUBREC
      buf[o + 1] = 2;
      buf[o + 2] = id >> 8;
      buf[o + 3] = id & 0xff;
      o += 4;
    }
    this.socket.write(buf);
    this.stats.acks += n;
  }

  private onConnack(p: IConnackPacket, epoch: number): void {
    this.emit(`connack:${epoch}`);
    const code = p.reasonCode ?? p.returnCode ?? 0;
    if (code !== 0) {
      this.fail(epoch, `broker refused the connection (code ${code})`);
      return;
    }
    this.connected = true;
    this.attempt = 0;
    this.lastError = undefined;
    this.state = 'connected';
    this.stats.connects++;
    this.log.info(
      { url: redact(this.cfg.url), sessionPresent: p.sessionPresent },
      'connected to MQTT broker',
    );
    this.write({
      cmd: 'subscribe',
      messageId: this.allocId(),
      subscriptions: this.cfg.topics.map((topic) => ({ topic, qos: this.cfg.qos })),
    });
    const keepMs = this.cfg.keepaliveSec * 1000;
    if (keepMs > 0) {
      this.lastRx = Date.now();
      this.pingTimer = setInterval(() => {
        if (Date.now() - this.lastRx > keepMs * 2) {
          this.fail(epoch, 'no answer from the broker within two keepalive periods');
          return;
        }
        this.write({ cmd: 'pingreq' });
      }, keepMs);
      this.pingTimer.unref();
    }
    this.emit('connect');
  }

  private onSuback(p: ISubackPacket): void {
    const refused = p.granted.filter((g) => (typeof g === 'number' ? g >= 0x80 : true));
    if (refused.length) {
      this.lastError = 'broker refused a subscription';
      this.log.error({ granted: p.granted, topics: this.cfg.topics }, 'broker refused a subscription');
    } else {
      this.subscribed = true;
      this.emit('subscribed');
    }
  }

  /**
   * Publishes at QoS 0 (rebirth commands), or at QoS 1 with retain set
   * (`retained`: state that must outlive the message, re-sent on every connection by its owner,
   * so the PUBACK is not waited for).
   */
  publish(topic: string, payload: string | Buffer, retained = false): void {
    if (!this.connected) return;
    if (retained)
      this.write({
        cmd: 'publish',
        topic,
        payload,
        qos: 1,
        retain: true,
        dup: false,
        messageId: this.allocId(),
      });
    else this.write({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false });
  }

  /** True while a connection is up and accepted (CONNACK). */
  get isConnected(): boolean {
    return this.connected;
  }

  /** True while the connection that is up has its subscriptions granted (SUBACK). */
  get isSubscribed(): boolean {
    return this.subscribed;
  }

  /**
   * One QoS 1 publish with a packet id the caller holds until the `puback` event names it (the
   * dead-letter queue). `dup` on a resend after a reconnect.
   */
  publishQos1(topic: string, payload: Buffer, id: number, dup: boolean): void {
    if (!this.connected) return;
    this.write({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup, messageId: id });
  }

  /** A packet id for an outgoing publish or subscribe. */
  nextPacketId(): number {
    return this.allocId();
  }

  private write(packet: Packet): void {
    if (!this.socket || this.socket.destroyed) return;
    mqttPacket.writeToStream(packet, this.socket, { protocolVersion: this.cfg.protocolVersion });
  }

  private allocId(): number {
    const id = this.nextId;
    this.nextId = id >= 65535 ? 1 : id + 1;
    return id;
  }

  private resume(): void {
    if (this.paused && this.socket) {
      this.paused = false;
      this.socket.resume();
      this.log.info('outbox has room again: reading from the broker');
    }
  }

  private fail(epoch: number, reason: string): void {
    if (epoch !== this.epoch) return;
    this.epoch++; // invalidates held acks and late events of this connection
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    const wasConnected = this.connected;
    this.connected = false;
    this.subscribed = false;
    this.pendingAcks = [];
    this.pendingRecs = [];
    this.frames.reset();
    this.qos2.clear();
    this.paused = false;
    this.socket?.destroy();
    this.socket = undefined;
    if (this.state === 'stopped') return;
    this.lastError = reason;
    if (wasConnected) {
      this.stats.disconnects++;
      this.emit('disconnect', reason);
    }
    this.state = 'reconnecting';
    // Jittered, so many gateways do not reconnect in lockstep; `attempt` counts from 0 here.
    const delay = backoffMs(this.attempt + 1, this.cfg.reconnect);
    this.attempt++;
    this.log.warn({ reason, retryInMs: delay, attempt: this.attempt }, 'MQTT connection lost; reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state !== 'stopped') this.open();
    }, delay);
  }

  /**
   * Ends the connection with a DISCONNECT (the broker discards its will) and connects again at
   * once: a new CONNECT, hence a new will and a newer Sparkplug STATE birth (ADR 0181). What was
   * received and not acknowledged yet is redelivered on the new connection, as after any reconnect.
   */
  reconnectNow(reason: string): void {
    if (!this.connected || this.state === 'stopped') return;
    this.write({ cmd: 'disconnect' });
    this.socket?.end();
    this.fail(this.epoch, reason);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.open();
  }

  /** Drops the connection at once without acknowledging anything held (what a crash does). */
  abort(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.state = 'stopped';
    this.fail(this.epoch, 'aborted');
  }

  /**
   * Stops reading, waits until what was handed over is durable and acknowledged, then
   * disconnects (the session stays on the broker for the next start).
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.socket?.pause();
    if (this.connected) {
      await new Promise<void>((resolve) => this.handler.afterDurable(resolve));
    }
    this.state = 'stopped';
    const sock = this.socket;
    if (sock && this.connected) {
      this.write({ cmd: 'disconnect' });
      await new Promise<void>((resolve) => {
        sock.end(() => resolve());
        setTimeout(resolve, 1000).unref();
      });
    }
    this.fail(this.epoch, 'stopped');
  }
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
