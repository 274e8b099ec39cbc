import modbusSerial from 'modbus-serial';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';
import { slotDelay, slotOf } from '../../gateway/src/core/clock-slots.js';
import type { Logger } from '../../gateway/src/core/log.js';
import type { Source, SourceContext, SourceRejection } from '../../gateway/src/core/source.js';
import type { ComponentHealth, Reading } from '../../gateway/src/core/types.js';
import { modbusMetrics, type ModbusMetrics } from './metrics.js';
import type { ReadBlock } from './plan.js';
import { DevicePoller, type BlockResult } from './poller.js';
import type { ModbusConnectionConfig } from './schema.js';

// A CommonJS module: its class is the default export's `default` (module.exports.default = module.exports).
const ModbusRTU = modbusSerial.default;

type ConnState = 'stopped' | 'connecting' | 'connected' | 'waiting';

/** A refused reading is reported (warn, republished) at most this often per device and reason. */
const REPORT_EVERY_MS = 60_000;

/** Timeouts in a row, with no answer in between, after which a TCP link counts as dead. */
const DEAD_LINK_TIMEOUTS = 3;

/** The fields of modbus-serial's errors we read (plain objects with these properties). */
interface ModbusError {
  message?: string;
  name?: string;
  errno?: string;
  modbusCode?: number;
}

export interface PollGroup {
  name: string;
  intervalMs: number;
  devices: DevicePoller[];
}

/**
 * One Modbus connection (a TCP socket, an RS-485 bus, or RTU framed over TCP) and the devices on
 * it. start() returns at once: the connection is opened and reopened (with backoff) in the
 * background, and an unreachable device shows in health() and the metrics. Requests go through a
 * queue: at most `maxInFlight` at once on Modbus TCP (answers are matched by transaction id), one
 * on RTU, whose bus carries one conversation at a time.
 */
export class ModbusSource implements Source {
  readonly name: string;
  private ctx?: SourceContext;
  private log?: Logger;
  private m?: ModbusMetrics;
  private client?: ModbusClient;
  private state: ConnState = 'stopped';
  private lastError: string | null = null;
  private delayMs: number;
  private reconnectTimer?: NodeJS.Timeout;
  private timers: NodeJS.Timeout[] = [];
  private readonly queue: Array<() => void> = [];
  private inFlight = 0;
  private readonly maxInFlight: number;
  private timeoutsInRow = 0;
  private rounds = new Set<Promise<void>>();
  /** When each (device, reason) was last reported at warn and republished. */
  private readonly reported = new Map<string, number>();

  constructor(
    readonly cfg: ModbusConnectionConfig,
    readonly groups: readonly PollGroup[],
    /**
     * Cluster mode (ADR 0177): each group polls at the wall clock's multiples of its interval and
     * stamps its readings with that slot's time, the same on every member; a survivor's replayed
     * poll then overwrites the dead owner's point of the same slot instead of adding one beside it.
     */
    readonly clockAligned = false,
  ) {
    this.name = `modbus:${cfg.name}`;
    this.maxInFlight = cfg.transport === 'tcp' ? cfg.maxInFlight : 1;
    this.delayMs = cfg.reconnect.initialDelayMs;
  }

  get devices(): DevicePoller[] {
    return this.groups.flatMap((g) => g.devices);
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.log = ctx.log;
    this.m = modbusMetrics(ctx.metrics);
    this.m.connected.set({ connection: this.cfg.name }, 0);
    this.state = 'connecting';
    void this.connect();
    for (const g of this.groups) {
      if (g.devices.length === 0) continue;
      if (this.clockAligned) {
        this.alignedTicks(g, this.timers.length);
        continue;
      }
      const tick = (): void => this.tick(g, Date.now());
      this.timers.push(setTimeout(tick, 0), setInterval(tick, g.intervalMs));
    }
  }

  /**
   * Ticks of group `g` on the wall clock's slots (multiples of its interval), re-armed for the next
   * slot after each one, so that timer drift never accumulates; the timer lives at `timers[at]`. A
   * tick is stamped with the slot it runs in: one that runs late (a busy event loop) is the later
   * slot's poll, and the slot it was armed for is skipped, so that a slot's time is never earlier
   * than its poll by more than a slot, on any member.
   */
  private alignedTicks(g: PollGroup, at: number): void {
    const iv = g.intervalMs;
    // `last`: the slot of the last tick (at start, the current slot: the first tick is the next one).
    // A wall clock set back is followed at once (core/clock-slots.ts), never waited out.
    const arm = (last: number): void => {
      if (this.state === 'stopped') return;
      this.timers[at] = setTimeout(
        () => {
          const slot = slotOf(Date.now(), iv, last);
          this.tick(g, slot);
          arm(slot);
        },
        slotDelay(last, Date.now(), iv),
      );
    };
    arm(slotOf(Date.now(), iv));
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    clearTimeout(this.reconnectTimer);
    await Promise.allSettled([...this.rounds]);
    await this.closeClient();
    const ctx = this.ctx;
    if (ctx) await new Promise<void>((resolve) => ctx.afterDurable(resolve));
    this.m?.connected.set({ connection: this.cfg.name }, 0);
  }

  health(): ComponentHealth {
    const devices: Record<string, unknown> = {};
    let offline = 0;
    for (const d of this.devices) {
      if (d.state === 'offline') offline++;
      devices[d.key] = {
        state: d.state,
        unitId: d.cfg.unitId,
        missedPolls: d.missed,
        lastOkAt: d.lastOkAt === null ? null : new Date(d.lastOkAt).toISOString(),
        lastError: d.lastError,
      };
    }
    const state =
      this.state === 'stopped'
        ? 'stopped'
        : this.state === 'connected'
          ? offline === 0
            ? 'ok'
            : 'degraded'
          : this.state === 'connecting' && this.lastError === null
            ? 'starting'
            : 'down';
    return {
      state,
      connection: this.state,
      transport: this.cfg.transport,
      address: this.cfg.transport === 'rtu' ? this.cfg.path : `${this.cfg.host}:${this.cfg.port}`,
      detail:
        this.state !== 'connected'
          ? (this.lastError ?? undefined)
          : offline > 0
            ? `${offline} of ${this.devices.length} devices offline`
            : undefined,
      devices,
    };
  }

  // -- polling ---------------------------------------------------------------------------------

  /** One round of group `g`; its readings are stamped `ts`. */
  private tick(g: PollGroup, ts: number): void {
    const ctx = this.ctx;
    if (!ctx || this.state === 'stopped') return;
    const conn = this.cfg.name;
    // A full outbox: polling waits, the devices keep their values; nothing is lost by skipping.
    if (ctx.isFull()) {
      this.m?.polls.inc({ connection: conn, outcome: 'skipped' }, g.devices.length);
      return;
    }
    for (const d of g.devices) {
      if (d.busy) {
        this.m?.polls.inc({ connection: conn, outcome: 'skipped' });
        continue;
      }
      d.busy = true;
      const round = this.poll(d, ts).finally(() => {
        d.busy = false;
        this.rounds.delete(round);
      });
      this.rounds.add(round);
    }
  }

  private async poll(d: DevicePoller, ts: number): Promise<void> {
    const results = await Promise.all(d.blocks.map((b) => this.readBlock(d, b)));
    const out = d.finish(results, ts);
    const conn = this.cfg.name;
    const m = this.m!;
    m.polls.inc({ connection: conn, outcome: out.missed ? 'missed' : out.complete ? 'ok' : 'partial' });
    if (out.transition === 'offline' || out.transition === 'online') {
      m.online.set(
        { connection: conn, site: d.cfg.site, device: d.cfg.id },
        out.transition === 'online' ? 1 : 0,
      );
      if (out.transition === 'offline')
        this.log?.warn(
          { device: d.key, unitId: d.cfg.unitId, missedPolls: d.missed, lastError: d.lastError },
          'Modbus device offline',
        );
      else this.log?.info({ device: d.key, unitId: d.cfg.unitId }, 'Modbus device online');
    }
    if (out.reading && this.ctx) {
      const rejected = this.ctx.ingest(out.reading, Date.now());
      if (rejected) this.rejected(d, out.reading, rejected);
      else m.values.inc({ connection: conn }, Object.keys(out.reading.fields).length);
    }
  }

  /**
   * A reading the pipeline refused: usually a mapping mistake (a value outside the kind's range
   * from a wrong word order or scale, an unknown kind). The pipeline counts every one; here it is
   * logged at warn and republished to `facility/_rejected/...` once a minute per device and
   * reason (a poll every second would otherwise flood both), and at debug in between.
   */
  private rejected(d: DevicePoller, reading: Reading, r: SourceRejection): void {
    const key = `${d.key}\u0000${r.reason}`;
    const now = Date.now();
    const last = this.reported.get(key);
    if (last !== undefined && now - last < REPORT_EVERY_MS) {
      this.log?.debug({ device: d.key, reason: r.reason, detail: r.detail }, 'Modbus reading rejected');
      return;
    }
    this.reported.set(key, now);
    this.log?.warn({ device: d.key, reason: r.reason, detail: r.detail }, 'Modbus reading rejected');
    this.ctx?.publishRejected(
      reading.site,
      reading.kind,
      reading.device,
      JSON.stringify({
        reason: r.reason,
        detail: r.detail,
        source: this.name,
        unitId: d.cfg.unitId,
        receivedAt: new Date(now).toISOString(),
        reading: { ts: reading.ts, quality: reading.quality ?? 'good', values: reading.fields },
      }),
    );
  }

  /** One block with the device's retries; exceptions are final (the device did answer). */
  private async readBlock(d: DevicePoller, b: ReadBlock): Promise<BlockResult> {
    let res: BlockResult = { ok: false, error: 'error', detail: 'not read' };
    for (let attempt = 0; attempt <= d.cfg.retries; attempt++) {
      if (this.state === 'stopped') break;
      res = await this.enqueue(() => this.request(d, b));
      this.m?.requests.inc({ connection: this.cfg.name, result: res.ok ? 'ok' : res.error });
      if (res.ok || res.error === 'exception') break;
    }
    return res;
  }

  private enqueue(fn: () => Promise<BlockResult>): Promise<BlockResult> {
    return new Promise((resolve) => {
      const run = (): void => {
        this.inFlight++;
        void fn().then((r) => {
          this.inFlight--;
          resolve(r);
          this.queue.shift()?.();
        });
      };
      if (this.inFlight < this.maxInFlight) run();
      else this.queue.push(run);
    });
  }

  private async request(d: DevicePoller, b: ReadBlock): Promise<BlockResult> {
    const c = this.client;
    if (!c || this.state !== 'connected' || !c.isOpen) {
      if (this.state === 'connected') this.lost('connection closed');
      return {
        ok: false,
        error: 'error',
        detail: `not connected${this.lastError ? ': ' + this.lastError : ''}`,
      };
    }
    try {
      // Unit id and timeout are read when the request is written, synchronously in the call below,
      // so concurrent requests for other devices cannot change them in between.
      c.setID(d.cfg.unitId);
      c.setTimeout(d.cfg.timeoutMs);
      const pending =
        b.table === 'holding'
          ? c.readHoldingRegisters(b.start, b.count)
          : b.table === 'input'
            ? c.readInputRegisters(b.start, b.count)
            : b.table === 'coil'
              ? c.readCoils(b.start, b.count)
              : c.readDiscreteInputs(b.start, b.count);
      // The library times requests out itself; this guard only keeps a request it forgot (a port
      // closed under it) from holding the queue, and with it the whole connection, forever.
      let guard: NodeJS.Timeout | undefined;
      const r = await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          guard = setTimeout(
            () => reject(Object.assign(new Error('no answer'), { errno: 'ETIMEDOUT' })),
            d.cfg.timeoutMs + 1000,
          );
        }),
      ]).finally(() => clearTimeout(guard));
      this.timeoutsInRow = 0;
      return { ok: true, data: r.data };
    } catch (e) {
      const err = e as ModbusError;
      if (typeof err.modbusCode === 'number') {
        this.timeoutsInRow = 0;
        return {
          ok: false,
          error: 'exception',
          detail: `exception ${err.modbusCode} (${err.message ?? ''})`,
        };
      }
      if (err.name === 'TransactionTimedOutError' || err.errno === 'ETIMEDOUT') {
        // A TCP peer that stopped answering without closing (a dead serial server, a NAT that
        // forgot us): after a few timeouts in a row with no answer in between, connect afresh.
        if (++this.timeoutsInRow >= DEAD_LINK_TIMEOUTS && this.cfg.transport !== 'rtu')
          this.lost(`${this.timeoutsInRow} timeouts in a row`);
        return { ok: false, error: 'timeout', detail: `timeout after ${d.cfg.timeoutMs} ms` };
      }
      if (!c.isOpen) this.lost(err.message ?? 'connection closed');
      return { ok: false, error: 'error', detail: err.message ?? String(e) };
    }
  }

  // -- connection ------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'connecting';
    const c = new ModbusRTU();
    this.client = c;
    const cfg = this.cfg;
    try {
      const opening =
        cfg.transport === 'tcp'
          ? c.connectTCP(cfg.host, { port: cfg.port })
          : cfg.transport === 'rtu-over-tcp'
            ? c.connectTelnet(cfg.host, { port: cfg.port })
            : c.connectRTUBuffered(cfg.path, {
                baudRate: cfg.baudRate,
                parity: cfg.parity,
                dataBits: cfg.dataBits,
                stopBits: cfg.stopBits,
              });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        opening,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`connect timed out after ${cfg.connectTimeoutMs} ms`)),
            cfg.connectTimeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (e) {
      const msg = (e as ModbusError).message ?? String(e);
      c.on('error', () => undefined);
      this.closeQuietly(c);
      if (this.client === c) this.client = undefined;
      this.retryLater(msg);
      return;
    }
    // stop() may have run while the port opened.
    if ((this.state as ConnState) === 'stopped' || this.client !== c) {
      this.closeQuietly(c);
      return;
    }
    // Socket errors also surface as failed requests; the listener keeps them from being unhandled.
    c.on('error', (err: unknown) => {
      this.lastError = (err as ModbusError).message ?? 'port error';
    });
    c.on('close', () => {
      if (this.client === c) this.lost('connection closed by the peer');
    });
    this.state = 'connected';
    this.lastError = null;
    this.timeoutsInRow = 0;
    this.delayMs = cfg.reconnect.initialDelayMs;
    this.m?.connected.set({ connection: cfg.name }, 1);
    this.log?.info({ connection: cfg.name, transport: cfg.transport }, 'Modbus connection open');
  }

  /** The link is gone: drop the client and reconnect after the backoff. */
  private lost(reason: string): void {
    if (this.state !== 'connected') return;
    const c = this.client;
    this.client = undefined;
    if (c) this.closeQuietly(c);
    this.m?.connected.set({ connection: this.cfg.name }, 0);
    this.log?.warn({ connection: this.cfg.name, reason }, 'Modbus connection lost, reconnecting');
    this.retryLater(reason);
  }

  private retryLater(reason: string): void {
    if (this.state === 'stopped') return;
    this.state = 'waiting';
    this.lastError = reason;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.cfg.reconnect.maxDelayMs, this.delayMs * 2);
    this.log?.debug({ connection: this.cfg.name, reason, retryInMs: delay }, 'Modbus connect failed');
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  private closeQuietly(c: ModbusClient): void {
    try {
      c.destroy(() => undefined);
    } catch {
      // Already closed: nothing left to release.
    }
  }

  private closeClient(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        c.destroy(() => resolve());
      } catch {
        resolve();
      }
      // destroy() of a port that never opened may not call back.
      setTimeout(resolve, 200).unref();
    });
  }
}
