/**
 * The M-Bus master of one bus (EN 13757-2 link layer procedures): SND_NKE, REQ_UD2 with the
 * frame count bit, secondary addressing by selection, timeouts and repeats. One request at a
 * time: M-Bus is half duplex, two masters' requests on one bus collide.
 */
import {
  ADDR_SELECTED,
  CI_SELECT,
  C_REQ_UD2,
  C_SND_NKE,
  C_SND_UD,
  FCB,
  FrameError,
  frameSize,
  longFrame,
  parseFrame,
  shortFrame,
  type Frame,
} from './frame.js';
import type { MbusLink } from './link.js';

/** Why an exchange failed; frame errors keep their own codes (frame.ts). */
export type ExchangeErrorReason = 'timeout' | 'link_down' | 'unexpected_frame' | FrameError['reason'];

export class ExchangeError extends Error {
  constructor(
    readonly reason: ExchangeErrorReason,
    detail: string,
    /** The bytes received, hex, for the rejected-message payload. */
    readonly received = '',
  ) {
    super(`${reason}: ${detail}`);
  }
}

export interface SecondaryAddress {
  /** 8 decimal digits. */
  id: string;
  manufacturer?: string;
  version?: number;
  medium?: number;
}

export interface MasterOptions {
  timeoutMs: number;
  retries: number;
  /** Called for every failed attempt (also those a repeat then fixed), to count them. */
  onAttemptError?: (err: ExchangeError) => void;
}

interface Waiter {
  expect: 'ack' | 'long';
  resolve(f: Frame): void;
  reject(e: ExchangeError): void;
  timer: NodeJS.Timeout;
}

export class MbusMaster {
  private buf: Buffer = Buffer.alloc(0);
  private waiter?: Waiter;
  private tail: Promise<unknown> = Promise.resolve();
  /** The next FCB per primary address; after SND_NKE the first REQ_UD2 carries FCB = 1. */
  private readonly fcb = new Map<number, boolean>();

  constructor(
    private readonly link: MbusLink,
    private readonly opts: MasterOptions,
  ) {
    link.onData((b) => this.onData(b));
  }

  /** SND_NKE: resets the meter's link layer (and its FCB); a selected meter answers at 253. */
  initialize(address: number): Promise<void> {
    return this.serial(async () => {
      await this.exchange(shortFrame(C_SND_NKE, address), 'ack');
      this.fcb.set(address, true);
    });
  }

  /** REQ_UD2 to a primary address: the meter's RSP_UD. */
  readPrimary(address: number): Promise<Extract<Frame, { type: 'long' }>> {
    return this.serial(() => this.requestData(address));
  }

  /**
   * Secondary addressing: SND_UD with CI 0x52 and the 8-byte selection to address 253 (the meter
   * whose identification matches acknowledges and is selected, all others deselect), then
   * REQ_UD2 to 253. Wildcards are 0xF per BCD digit, 0xFFFF for the manufacturer, 0xFF for
   * version and medium.
   */
  readSecondary(sec: SecondaryAddress): Promise<Extract<Frame, { type: 'long' }>> {
    return this.serial(async () => {
      await this.exchange(longFrame(C_SND_UD, ADDR_SELECTED, CI_SELECT, selection(sec)), 'ack');
      this.fcb.set(ADDR_SELECTED, true);
      return this.requestData(ADDR_SELECTED);
    });
  }

  /** Ends an exchange in progress (the source is stopping). */
  abort(): void {
    const w = this.waiter;
    if (!w) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.reject(new ExchangeError('link_down', 'stopped'));
  }

  private async requestData(address: number): Promise<Extract<Frame, { type: 'long' }>> {
    const fcb = this.fcb.get(address) ?? true;
    // FCV set: the meter repeats its last answer when the FCB did not toggle (our repeat after a
    // lost answer) and moves on when it did.
    const f = await this.exchange(shortFrame(C_REQ_UD2 | (fcb ? FCB : 0), address), 'long');
    this.fcb.set(address, !fcb);
    if (f.type !== 'long') throw new ExchangeError('unexpected_frame', `a ${f.type} frame instead of RSP_UD`);
    return f;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** One request with up to `retries` repeats after a timeout or a damaged answer. */
  private async exchange(req: Buffer, expect: 'ack' | 'long'): Promise<Frame> {
    let last: ExchangeError | undefined;
    for (let attempt = 0; attempt <= this.opts.retries; attempt++) {
      try {
        return await this.once(req, expect);
      } catch (err) {
        if (!(err instanceof ExchangeError)) throw err;
        last = err;
        this.opts.onAttemptError?.(err);
      }
    }
    throw last!;
  }

  private async once(req: Buffer, expect: 'ack' | 'long'): Promise<Frame> {
    if (!this.link.isOpen) {
      try {
        await this.link.open(this.opts.timeoutMs);
      } catch (err) {
        throw new ExchangeError('link_down', (err as Error).message);
      }
    }
    // Bytes left from an answer that came too late belong to no request.
    this.buf = Buffer.alloc(0);
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(
          new ExchangeError(
            'timeout',
            `no complete answer within ${this.opts.timeoutMs} ms`,
            this.buf.toString('hex'),
          ),
        );
      }, this.opts.timeoutMs);
      this.waiter = { expect, resolve, reject, timer };
      this.link.write(req);
    });
  }

  private onData(b: Buffer): void {
    const w = this.waiter;
    if (!w) return;
    this.buf = this.buf.length === 0 ? b : Buffer.concat([this.buf, b]);
    const size = frameSize(this.buf);
    if (size === 0 || (typeof size === 'number' && this.buf.length < size)) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    const bytes = typeof size === 'number' ? this.buf.subarray(0, size) : this.buf;
    const f = size instanceof FrameError ? size : parseFrame(bytes);
    if (f instanceof FrameError) {
      w.reject(new ExchangeError(f.reason, f.message, bytes.toString('hex')));
      return;
    }
    if (w.expect === 'ack' && f.type !== 'ack') {
      w.reject(
        new ExchangeError('unexpected_frame', `a ${f.type} frame instead of E5`, bytes.toString('hex')),
      );
      return;
    }
    w.resolve(f);
  }
}

/** The 8 bytes of a selection: identification BCD, manufacturer, version, medium (little endian). */
export function selection(sec: SecondaryAddress): Buffer {
  const out = Buffer.alloc(8, 0xff);
  const digits = sec.id;
  for (let i = 0; i < 4; i++) {
    const pair = digits.slice(6 - 2 * i, 8 - 2 * i);
    out[i] = parseInt(pair, 16);
  }
  if (sec.manufacturer !== undefined) {
    const m = sec.manufacturer;
    const code = ((m.charCodeAt(0) - 64) << 10) | ((m.charCodeAt(1) - 64) << 5) | (m.charCodeAt(2) - 64);
    out.writeUInt16LE(code, 4);
  }
  if (sec.version !== undefined) out[6] = sec.version;
  if (sec.medium !== undefined) out[7] = sec.medium;
  return out;
}
