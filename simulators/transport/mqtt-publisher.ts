import { readFileSync } from 'node:fs';
import { PacketStream } from '../../adapters/mqtt/frame.js';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import mqttPacket from 'mqtt-packet';
import type { Logger } from 'pino';
import { payloadOf, type SimMessage } from '../engine/engine.js';

export interface MqttPublisherOptions {
  /** mqtt://, mqtts://, tcp:// or tls://; credentials may be given in the URL. */
  url: string;
  clientId?: string;
  username?: string;
  password?: string;
  /** Most messages handed over and not yet acknowledged (QoS ≥ 1) or written (QoS 0); at most 65,535. */
  maxOutstanding?: number;
  /** CA certificate (PEM file) for mqtts://, when the broker's is not signed by a public CA. */
  caFile?: string;
  /** mqtts:// only; default true. */
  rejectUnauthorized?: boolean;
  keepaliveSec?: number;
  connectTimeoutMs?: number;
  reconnectPeriodMs?: number;
  logger: Logger;
}

export interface PublisherStats {
  sent: number;
  completed: number;
  errors: number;
  outstanding: number;
  connected: boolean;
  /** QoS ≥ 1 messages sent again (DUP) after a reconnect because the broker had not acknowledged them. */
  retransmitted: number;
  reconnects: number;
}

/** Where a QoS ≥ 1 message stands, by packet id. */
const FREE = 0;
/** Encoded, not yet on the wire (published while disconnected). */
const QUEUED = 1;
/** Written; waiting for PUBACK (QoS 1) or PUBREC (QoS 2). */
const SENT = 2;
/** QoS 2: PUBREL written; waiting for PUBCOMP. */
const RELEASED = 3;

const MAX_IDS = 65_535;
const PINGREQ = Buffer.from([0xc0, 0x00]);
const DISCONNECT = Buffer.from([0xe0, 0x00]);

/**
 * One MQTT 3.1.1 connection for the whole fleet: a device is a topic, not a connection, which is
 * what lets one process publish for 10,000 devices. Flow control is a cap on outstanding
 * messages: the runner asks for `capacity()` and leaves the rest due in the engine.
 *
 * Why not mqtt.js: at 10,000 msg/s its per-publish work (a packet object, an outgoing-store entry
 * and a callback per message, a debug call, one stream write per packet) was a third of the
 * process's CPU and made a QoS 1 run fall behind on two cores. Here each `publish()` call (one
 * runner tick) encodes all its PUBLISH packets into one Buffer written once; QoS ≥ 1 ids are
 * tracked in flat arrays. mqtt-packet (the codec mqtt.js uses) only builds the CONNECT.
 *
 * Delivery: QoS ≥ 1 messages not acknowledged when the connection drops, and those published
 * while it is down, are (re)sent once it is back (DUP set on the ones already sent), as mqtt.js
 * did. QoS 0 messages published while disconnected are dropped and counted as errors, as a real
 * device's would be lost.
 */
export class MqttPublisher {
  private socket: Socket | null = null;
  private epoch = 0;
  private connected = false;
  private stopped = true;
  private sent = 0;
  private completed = 0;
  private errors = 0;
  private retransmitted = 0;
  private reconnects = 0;
  private everConnected = false;
  private readonly maxOutstanding: number;
  /** QoS ≥ 1 messages by packet id (index 0 unused): state, and where the encoded packet is. */
  private readonly state = new Uint8Array(MAX_IDS + 1);
  private readonly bufOf: (Buffer | undefined)[] = new Array<Buffer | undefined>(MAX_IDS + 1);
  private readonly offOf = new Uint32Array(MAX_IDS + 1);
  private readonly lenOf = new Uint32Array(MAX_IDS + 1);
  private inflight = 0;
  private nextId = 1;
  /** Topic → its UTF-8 bytes with the 2-byte length prefix; a device's topic never changes. */
  private readonly topics = new Map<string, Buffer>();
  private readonly frames = new PacketStream();
  private lastRx = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly clientId: string;

  constructor(private readonly opts: MqttPublisherOptions) {
    this.maxOutstanding = Math.min(MAX_IDS, opts.maxOutstanding ?? 20_000);
    this.clientId = opts.clientId ?? `facility-sim-${process.pid}-${Date.now().toString(36)}`;
    const proto = new URL(opts.url).protocol;
    if (!['mqtt:', 'mqtts:', 'tcp:', 'tls:'].includes(proto))
      throw new Error(`unsupported broker URL scheme ${proto} (use mqtt:// or mqtts://)`);
  }

  /** Resolves on the first CONNACK; rejects if that first connection fails (later ones are retried). */
  start(): Promise<void> {
    this.stopped = false;
    return new Promise<void>((resolve, reject) => this.open({ resolve, reject }));
  }

  capacity(): number {
    return Math.max(0, this.maxOutstanding - (this.sent - this.completed));
  }

  publish(messages: readonly SimMessage[]): void {
    if (this.stopped) throw new Error('publisher not started');
    const n = messages.length;
    if (n === 0) return;
    // First pass: payloads and sizes, so the batch is one allocation and one write.
    const payloads = new Array<string>(n);
    const topics = new Array<Buffer>(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const m = messages[i] as SimMessage;
      // Payloads are ASCII by construction (see payloadOf), so their length is their byte length.
      const p = payloadOf(m);
      const t = this.topicBytes(m.topic);
      payloads[i] = p;
      topics[i] = t;
      const rl = t.length + (m.qos > 0 ? 2 : 0) + p.length;
      total += 1 + varintSize(rl) + rl;
    }
    const buf = Buffer.allocUnsafe(total);
    let o = 0;
    let qos0 = 0;
    let queued = false;
    for (let i = 0; i < n; i++) {
      const m = messages[i] as SimMessage;
      const t = topics[i] as Buffer;
      const p = payloads[i] as string;
      const start = o;
      const qos = m.qos;
      const rl = t.length + (qos > 0 ? 2 : 0) + p.length;
      buf[o++] = 0x30 | (qos << 1);
      o = writeVarint(buf, o, rl);
      o += t.copy(buf, o);
      this.sent++;
      if (qos === 0) {
        o += buf.write(p, o, 'latin1');
        if (this.connected) qos0++;
        else {
          this.completed++;
          this.errors++;
        }
        continue;
      }
      const id = this.allocId();
      if (id === 0) {
        // Every id is in flight (a caller ignored capacity()): the message cannot be sent.
        o = start;
        this.completed++;
        this.errors++;
        continue;
      }
      buf[o++] = id >> 8;
      buf[o++] = id & 0xff;
      o += buf.write(p, o, 'latin1');
      this.state[id] = this.connected ? SENT : QUEUED;
      this.bufOf[id] = buf;
      this.offOf[id] = start;
      this.lenOf[id] = o - start;
      this.inflight++;
      if (!this.connected) queued = true;
    }
    if (!this.connected || !this.socket) {
      if (queued) this.opts.logger.debug('mqtt down: QoS ≥ 1 messages queued until it reconnects');
      return;
    }
    const sock = this.socket;
    const out = o === total ? buf : buf.subarray(0, o);
    if (qos0 === 0) sock.write(out);
    else
      sock.write(out, (err) => {
        this.completed += qos0;
        if (err) this.errors += qos0;
      });
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
      connected: this.connected,
      retransmitted: this.retransmitted,
      reconnects: this.reconnects,
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    const sock = this.socket;
    this.socket = null;
    this.connected = false;
    this.epoch++;
    if (!sock || sock.destroyed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        sock.destroy();
        resolve();
      }, 2000);
      sock.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      sock.end(DISCONNECT);
    });
  }

  private topicBytes(topic: string): Buffer {
    let t = this.topics.get(topic);
    if (t === undefined) {
      const len = Buffer.byteLength(topic);
      t = Buffer.alloc(2 + len);
      t.writeUInt16BE(len, 0);
      t.write(topic, 2);
      this.topics.set(topic, t);
    }
    return t;
  }

  /** The next free packet id after the last one used (so ids go out in order), 0 if none is free. */
  private allocId(): number {
    if (this.inflight >= MAX_IDS) return 0;
    let id = this.nextId;
    while (this.state[id] !== FREE) id = id >= MAX_IDS ? 1 : id + 1;
    this.nextId = id >= MAX_IDS ? 1 : id + 1;
    return id;
  }

  private release(id: number): void {
    if (this.state[id] === FREE) return; // an ack for an id we no longer track (e.g. a duplicate)
    this.state[id] = FREE;
    this.bufOf[id] = undefined;
    this.inflight--;
    this.completed++;
  }

  private open(first?: { resolve: () => void; reject: (err: Error) => void }): void {
    const u = new URL(this.opts.url);
    const secure = u.protocol === 'mqtts:' || u.protocol === 'tls:';
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || (secure ? 8883 : 1883));
    const epoch = ++this.epoch;
    const sock = secure
      ? tlsConnect({
          host,
          port,
          servername: /^[\d.:]+$/.test(host) ? undefined : host,
          ca: this.opts.caFile ? readFileSync(this.opts.caFile) : undefined,
          rejectUnauthorized: this.opts.rejectUnauthorized ?? true,
        })
      : netConnect({ host, port });
    sock.setNoDelay(true);
    this.socket = sock;
    this.frames.reset();
    let settled = false;
    const fail = (reason: string): void => {
      if (epoch !== this.epoch) return;
      clearTimeout(connectTimer);
      if (first && !settled) {
        settled = true;
        this.epoch++;
        sock.destroy();
        this.socket = null;
        this.stopped = true;
        first.reject(new Error(`mqtt ${redact(this.opts.url)}: ${reason}`));
        return;
      }
      this.lost(reason);
    };
    const connectTimer = setTimeout(() => fail('connect timed out'), this.opts.connectTimeoutMs ?? 10_000);
    sock.once(secure ? 'secureConnect' : 'connect', () => {
      const username = u.username ? decodeURIComponent(u.username) : this.opts.username;
      const password = u.password ? decodeURIComponent(u.password) : this.opts.password;
      sock.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clientId: this.clientId,
          clean: true,
          keepalive: this.opts.keepaliveSec ?? 60,
          username,
          password: password !== undefined ? Buffer.from(password) : undefined,
        }),
      );
    });
    sock.on('data', (chunk: Buffer) => {
      if (epoch !== this.epoch) return;
      this.lastRx = Date.now();
      const err = this.onData(chunk, epoch, () => {
        clearTimeout(connectTimer);
        if (first && !settled) {
          settled = true;
          first.resolve();
        }
      });
      if (err) fail(err);
    });
    sock.on('error', (err) => {
      if (epoch === this.epoch) this.opts.logger.warn({ err: err.message }, 'mqtt error');
      fail(err.message);
    });
    sock.on('close', () => fail('connection closed'));
  }

  /** Packets from the broker: CONNACK, PUBACK, PUBREC, PUBCOMP, PINGRESP. Returns an error, if any. */
  private onData(chunk: Buffer, epoch: number, onConnack: () => void): string | undefined {
    let error: string | undefined;
    const framing = this.frames.push(chunk, (buf, b0, _off, i, end) => {
      const rl = end - i;
      const id = rl >= 2 ? ((buf[i] as number) << 8) | (buf[i + 1] as number) : 0;
      switch (b0 >> 4) {
        case 2: {
          // CONNACK: session-present flags, return code.
          const code = buf[i + 1] as number;
          if (code !== 0) {
            error = `broker refused the connection (code ${code})`;
            return false;
          }
          this.onConnected(epoch);
          onConnack();
          break;
        }
        case 4: // PUBACK
        case 7: // PUBCOMP
          this.release(id);
          break;
        case 5: // PUBREC: release the id at the broker, then wait for PUBCOMP.
          if (this.state[id] === SENT) {
            this.state[id] = RELEASED;
            this.bufOf[id] = undefined;
          }
          this.socket?.write(Buffer.from([0x62, 2, id >> 8, id & 0xff]));
          break;
        default: // PINGRESP and anything else a publisher has no use for
          break;
      }
      return epoch === this.epoch;
    });
    return error ?? framing;
  }

  private onConnected(epoch: number): void {
    this.connected = true;
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.opts.logger.info({ url: redact(this.opts.url) }, 'mqtt connected');
    this.resendInflight();
    const keepMs = (this.opts.keepaliveSec ?? 60) * 1000;
    clearInterval(this.pingTimer);
    if (keepMs > 0) {
      this.pingTimer = setInterval(() => {
        if (epoch !== this.epoch) return;
        // A broker answers PINGREQ; two periods of silence mean the connection is dead.
        if (Date.now() - this.lastRx > 2 * keepMs) return this.lost('no answer from the broker');
        this.socket?.write(PINGREQ);
      }, keepMs);
      this.pingTimer.unref();
    }
  }

  /**
   * After (re)connecting: every QoS ≥ 1 message still unacknowledged, oldest first (ids are
   * allocated in order, so cyclic id order from `nextId` is send order), DUP set on those the
   * broker may already have; PUBREL again for QoS 2 ones it had received.
   */
  private resendInflight(): void {
    if (this.inflight === 0 || !this.socket) return;
    const parts: Buffer[] = [];
    let id = this.nextId;
    for (let k = 0; k < MAX_IDS; k++, id = id >= MAX_IDS ? 1 : id + 1) {
      const st = this.state[id];
      if (st === FREE) continue;
      if (st === RELEASED) {
        parts.push(Buffer.from([0x62, 2, id >> 8, id & 0xff]));
        continue;
      }
      const src = this.bufOf[id] as Buffer;
      const off = this.offOf[id] as number;
      const pkt = Buffer.from(src.subarray(off, off + (this.lenOf[id] as number)));
      if (st === SENT) {
        pkt[0] = (pkt[0] as number) | 0x08; // DUP
        this.retransmitted++;
      }
      this.state[id] = SENT;
      // Keep the copy (not the whole batch) in case this connection drops too.
      this.bufOf[id] = pkt;
      this.offOf[id] = 0;
      parts.push(pkt);
    }
    this.socket.write(Buffer.concat(parts));
  }

  private lost(reason: string): void {
    this.epoch++;
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    const was = this.connected;
    this.connected = false;
    this.frames.reset();
    this.socket?.destroy();
    this.socket = null;
    if (this.stopped) return;
    if (was) this.opts.logger.warn({ reason }, 'mqtt offline; reconnecting');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.stopped) this.open();
    }, this.opts.reconnectPeriodMs ?? 1000);
  }
}

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** MQTT's remaining length (2.2.3): 7 bits a byte, high bit = more. */
function writeVarint(buf: Buffer, o: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[o++] = b;
  } while (n > 0);
  return o;
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
