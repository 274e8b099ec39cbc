/**
 * The byte pipe to one M-Bus: a TCP connection to a transparent serial server, or a serial port
 * (through a level converter). Opened on first use and again after it dropped, so a converter
 * that restarts costs a few missed reads, never the source.
 */
import { Socket } from 'node:net';
import type { MbusConnectionConfig } from './schema.js';

export interface MbusLink {
  readonly description: string;
  readonly isOpen: boolean;
  open(timeoutMs: number): Promise<void>;
  write(b: Buffer): void;
  /** Bytes in; one listener. */
  onData(fn: (b: Buffer) => void): void;
  close(): Promise<void>;
}

export function createLink(cfg: MbusConnectionConfig): MbusLink {
  if (cfg.tcp) return new TcpLink(cfg.tcp.host, cfg.tcp.port);
  if (cfg.serial) return new SerialLink(cfg.serial.path, cfg.serial.baudRate, cfg.serial.parity);
  throw new Error('an M-Bus connection needs tcp or serial');
}

class TcpLink implements MbusLink {
  readonly description: string;
  private socket?: Socket;
  private listener: (b: Buffer) => void = () => {};

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.description = `tcp://${host}:${port}`;
  }

  get isOpen(): boolean {
    return this.socket !== undefined && !this.socket.destroyed && !this.socket.connecting;
  }

  open(timeoutMs: number): Promise<void> {
    if (this.isOpen) return Promise.resolve();
    this.socket?.destroy();
    return new Promise((resolve, reject) => {
      const s = new Socket();
      this.socket = s;
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no TCP connection to ${this.description} within ${timeoutMs} ms`));
      }, timeoutMs);
      s.setNoDelay(true);
      s.on('data', (b: Buffer) => this.listener(b));
      s.once('error', (err) => {
        clearTimeout(timer);
        s.destroy();
        reject(err);
      });
      // A closed socket is opened again by the next request.
      s.on('close', () => clearTimeout(timer));
      s.connect(this.port, this.host, () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.on('error', () => s.destroy());
        resolve();
      });
    });
  }

  write(b: Buffer): void {
    this.socket?.write(b);
  }

  onData(fn: (b: Buffer) => void): void {
    this.listener = fn;
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }
}

/** The part of serialport's SerialPort this link uses. */
interface SerialPortLike {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  write(b: Buffer): boolean;
  on(ev: 'data', fn: (b: Buffer) => void): void;
  on(ev: 'error', fn: (err: Error) => void): void;
  close(cb: (err: Error | null) => void): void;
}

class SerialLink implements MbusLink {
  readonly description: string;
  private port?: SerialPortLike;
  private listener: (b: Buffer) => void = () => {};

  constructor(
    private readonly path: string,
    private readonly baudRate: number,
    private readonly parity: 'even' | 'none' | 'odd',
  ) {
    this.description = `serial:${path}@${baudRate}`;
  }

  get isOpen(): boolean {
    return this.port?.isOpen === true;
  }

  async open(): Promise<void> {
    if (this.isOpen) return;
    // Loaded only for serial buses: serialport carries a native binding (with prebuilt binaries)
    // that a TCP-only installation should not need to load.
    let mod: typeof import('serialport');
    try {
      mod = await import('serialport');
    } catch (err) {
      throw new Error(`serial M-Bus needs the serialport package: ${(err as Error).message}`, { cause: err });
    }
    const port: SerialPortLike = new mod.SerialPort({
      path: this.path,
      baudRate: this.baudRate,
      parity: this.parity,
      dataBits: 8,
      stopBits: 1,
      autoOpen: false,
    });
    port.on('data', (b) => this.listener(b));
    port.on('error', () => undefined);
    this.port = port;
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  }

  write(b: Buffer): void {
    this.port?.write(b);
  }

  onData(fn: (b: Buffer) => void): void {
    this.listener = fn;
  }

  async close(): Promise<void> {
    const p = this.port;
    this.port = undefined;
    if (!p?.isOpen) return;
    await new Promise<void>((resolve) => p.close(() => resolve()));
  }
}
