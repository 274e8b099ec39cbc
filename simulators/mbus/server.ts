import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { DeviceInfo, SimMessage } from '../engine/engine.js';
import type { Values } from '../types.js';
import { encodeUserData, longFrame } from './encode.js';

export interface MbusServerOptions {
  /** 0: any free port (see `port`). */
  port: number;
  host?: string;
  /** Devices to answer for; kinds other than gas-meter and water-meter are ignored. */
  devices: readonly Pick<DeviceInfo, 'id' | 'site' | 'kind'>[];
  logger?: Logger;
}

export interface MbusMeterInfo {
  device: string;
  site: string;
  kind: 'gas-meter' | 'water-meter';
  primaryAddress: number;
  /** The identification number for secondary addressing. */
  secondaryAddress: string;
}

export interface MbusServerHandle {
  port: number;
  meters(): MbusMeterInfo[];
  /** Pushes one device report: the meter answers with it from now on. */
  update(msg: SimMessage): void;
  /** The next `count` answers of a meter go out with a wrong checksum (a disturbed bus). */
  corrupt(device: string, count?: number): void;
  /** A meter stops answering (as if disconnected) until `mute(device, false)`. */
  mute(device: string, muted?: boolean): void;
  /** Requests answered so far (RSP_UD frames sent). */
  answers(): number;
  stop(): Promise<void>;
}

interface Meter extends MbusMeterInfo {
  values: Values | null;
  ts: number;
  silent: boolean;
  muted: boolean;
  corrupt: number;
  accessNo: number;
}

const ACK = Buffer.from([0xe5]);

/**
 * Simulated meters behind a transparent serial-to-TCP converter: every connection is one bus
 * with all gas and water meters on it, primary addresses 1, 2, ... in scenario order and
 * identification numbers 10000001, 10000002, ... Answers SND_NKE with E5, REQ_UD2 with an RSP_UD
 * of the meter's latest report, and the secondary-addressing selection (SND_UD, CI 0x52, with
 * wildcards) with E5 from the one meter selected.
 */
export async function startMbusServer(opts: MbusServerOptions): Promise<MbusServerHandle> {
  const meters: Meter[] = [];
  for (const d of opts.devices) {
    if (d.kind !== 'gas-meter' && d.kind !== 'water-meter') continue;
    const n = meters.length + 1;
    if (n > 250) break; // primary addresses 1..250
    meters.push({
      device: d.id,
      site: d.site,
      kind: d.kind,
      primaryAddress: n,
      secondaryAddress: String(10_000_000 + n),
      values: null,
      ts: 0,
      silent: false,
      muted: false,
      corrupt: 0,
      accessNo: 0,
    });
  }
  const byDevice = new Map(meters.map((m) => [m.device, m]));
  let answered = 0;
  const sockets = new Set<Socket>();
  const log = opts.logger;

  const answerable = (m: Meter | undefined): m is Meter => !!m && !m.silent && !m.muted && m.values !== null;

  const rspUd = (m: Meter, address: number): Buffer => {
    m.accessNo = (m.accessNo + 1) & 0xff;
    const frame = longFrame(
      0x08,
      address,
      0x72,
      encodeUserData({ id: m.secondaryAddress, kind: m.kind, accessNo: m.accessNo }, m.ts, m.values!),
    );
    if (m.corrupt > 0) {
      m.corrupt--;
      frame[frame.length - 2] = (frame[frame.length - 2]! + 1) & 0xff;
    }
    answered++;
    return frame;
  };

  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    let selected: Meter | undefined;
    const reply = (b: Buffer): void => {
      if (!sock.destroyed) sock.write(b);
    };
    const handleShort = (c: number, a: number): void => {
      const target = a === 0xfd ? selected : meters.find((m) => m.primaryAddress === a);
      if ((c & 0xff) === 0x40) {
        if (a === 0xff) return; // broadcast: nobody answers
        if (answerable(target)) reply(ACK);
        if (a === 0xfd) selected = undefined; // SND_NKE to 253 ends the selection
        return;
      }
      if ((c & 0xcf) === 0x4b && answerable(target)) reply(rspUd(target, a));
    };
    const handleSelect = (d: Buffer): void => {
      const id = d.subarray(0, 4);
      const man = d.readUInt16LE(4);
      const matches = meters.filter((m) => {
        if (man !== 0xffff && man !== 0x18f7) return false; // FGW
        if (d[6] !== 0xff && d[6] !== 1) return false;
        if (d[7] !== 0xff && d[7] !== (m.kind === 'gas-meter' ? 0x03 : 0x07)) return false;
        const digits = m.secondaryAddress;
        for (let i = 0; i < 4; i++) {
          const hi = id[i]! >> 4;
          const lo = id[i]! & 0x0f;
          const want = digits.slice(6 - 2 * i, 8 - 2 * i);
          if (hi !== 0xf && hi !== Number(want[0])) return false;
          if (lo !== 0xf && lo !== Number(want[1])) return false;
        }
        return true;
      });
      selected = matches.length === 1 ? matches[0] : undefined;
      const live = matches.filter(answerable);
      // Several meters acknowledging at once collide on a real bus: garbage on the wire.
      if (live.length === 1) reply(ACK);
      else if (live.length > 1) reply(Buffer.from([0xe5 & 0x7f, 0xff]));
    };
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length > 0) {
        if (buf[0] === 0x10) {
          if (buf.length < 5) return;
          const [, c, a, cs, stop] = buf;
          if (cs === ((c! + a!) & 0xff) && stop === 0x16) handleShort(c!, a!);
          buf = buf.subarray(5);
        } else if (buf[0] === 0x68) {
          if (buf.length < 4) return;
          const len = buf[1]! + 6;
          if (buf.length < len) return;
          const frame = buf.subarray(0, len);
          buf = buf.subarray(len);
          let cs = 0;
          for (let i = 4; i < len - 2; i++) cs = (cs + frame[i]!) & 0xff;
          if (cs !== frame[len - 2] || frame[len - 1] !== 0x16) continue; // a damaged request gets no answer
          const c = frame[4]!;
          const a = frame[5]!;
          const ci = frame[6]!;
          if ((c & 0xcf) === 0x43 && a === 0xfd && ci === 0x52 && len - 9 === 8)
            handleSelect(frame.subarray(7, 15));
        } else buf = buf.subarray(1);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  log?.info({ port, meters: meters.length }, 'M-Bus meters listening (TCP, transparent)');
  return {
    port,
    meters: () =>
      meters.map(({ device, site, kind, primaryAddress, secondaryAddress }) => ({
        device,
        site,
        kind,
        primaryAddress,
        secondaryAddress,
      })),
    update(msg) {
      const m = byDevice.get(msg.device);
      if (!m) return;
      m.silent = msg.silent;
      if (msg.silent) return;
      m.values = msg.values;
      m.ts = msg.ts;
    },
    corrupt(device, count = 1) {
      const m = byDevice.get(device);
      if (!m) throw new Error(`no M-Bus meter ${device}`);
      m.corrupt += count;
    },
    mute(device, muted = true) {
      const m = byDevice.get(device);
      if (!m) throw new Error(`no M-Bus meter ${device}`);
      m.muted = muted;
    },
    answers: () => answered,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
