/**
 * One M-Bus bus as a Source: polls its meters one after another, decodes each answer into a
 * reading and hands it to ingest. A meter that misses `offlineAfter` polls in a row is offline
 * in health; a damaged answer is counted by reason, published as a rejection and retried,
 * never thrown.
 */
import { slotDelay, slotOf } from '../../gateway/src/core/clock-slots.js';
import type { Source, SourceContext } from '../../gateway/src/core/source.js';
import type { ComponentHealth } from '../../gateway/src/core/types.js';
import { GAS_MEDIA, WATER_MEDIA } from './medium.js';
import { createLink, type MbusLink } from './link.js';
import { mapRecords } from './map.js';
import { ExchangeError, MbusMaster } from './master.js';
import { attachMbusMetrics, type MbusCounters } from './metrics.js';
import { parseVariableData, RecordError, type FixedHeader } from './records.js';
import type { MbusConnectionConfig, MbusMeterConfig } from './schema.js';

/** One meter as `health().meters["<site>/<id>"]` shows it. */
export interface MbusMeterHealth {
  /** null until the first poll has an answer or misses. */
  online: boolean | null;
  missedPolls: number;
  lastReadAt: string | null;
  lastError: string | null;
  address: number | string | undefined;
  /** From the meter's fixed header, once it answered. */
  identification?: string;
  manufacturer?: string;
  version?: number;
  medium?: string;
  status?: number;
  meterClock?: string;
}

interface MeterState {
  cfg: MbusMeterConfig;
  /** SND_NKE due (first poll, after the meter was offline). */
  needsInit: boolean;
  missed: number;
  online: boolean | null;
  lastReadAt?: number;
  lastError?: string;
  header?: FixedHeader;
  meterTime?: number;
  mediumWarned: boolean;
}

export class MbusSource implements Source {
  readonly name: string;
  private ctx?: SourceContext;
  private link?: MbusLink;
  private master?: MbusMaster;
  private meters: MeterState[] = [];
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = true;
  private rounds = 0;
  private detach?: () => void;
  private readonly counters: MbusCounters;
  /** Clock-aligned: the slot of the last round started. */
  private lastSlot?: number;

  constructor(
    private readonly cfg: MbusConnectionConfig,
    /**
     * Cluster mode (ADR 0177): rounds start on the wall clock's multiples of `pollIntervalMs` and
     * a round's readings are stamped with its slot's time, the same on every member, so that a
     * survivor's replayed read of a meter overwrites the dead owner's read of that round.
     */
    private readonly clockAligned = false,
  ) {
    this.name = `mbus:${cfg.name}`;
    const meters = (): MeterState[] => this.meters;
    this.counters = {
      connection: cfg.name,
      reads: 0,
      errors: {},
      offline: () => meters().filter((m) => m.online === false).length,
    };
  }

  async start(ctx: SourceContext): Promise<void> {
    this.ctx = ctx;
    this.stopped = false;
    this.meters = this.cfg.meters.map((m) => ({
      cfg: m,
      needsInit: true,
      missed: 0,
      online: null,
      mediumWarned: false,
    }));
    this.link = createLink(this.cfg);
    this.master = new MbusMaster(this.link, {
      timeoutMs: this.cfg.timeoutMs,
      retries: this.cfg.retries,
      onAttemptError: (e) => this.countError(e.reason),
    });
    this.detach = attachMbusMetrics(ctx.metrics, this.counters);
    ctx.log.info({ bus: this.link.description, meters: this.meters.length }, 'M-Bus polling started');
    // The first round starts now but is not awaited: an unreachable bus shows in health.
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.master?.abort();
    await this.round;
    await this.link?.close();
    this.detach?.();
    const ctx = this.ctx;
    if (ctx) await new Promise<void>((resolve) => ctx.afterDurable(resolve));
  }

  health(): ComponentHealth {
    if (this.stopped) return { state: 'stopped' };
    const meters: Record<string, MbusMeterHealth> = {};
    for (const m of this.meters) {
      meters[`${m.cfg.site}/${m.cfg.id}`] = {
        online: m.online,
        missedPolls: m.missed,
        lastReadAt: m.lastReadAt !== undefined ? new Date(m.lastReadAt).toISOString() : null,
        lastError: m.lastError ?? null,
        address: m.cfg.primaryAddress ?? m.cfg.secondaryAddress,
        ...(m.header && {
          identification: m.header.id,
          manufacturer: m.header.manufacturer,
          version: m.header.version,
          medium: m.header.mediumName,
          status: m.header.status,
        }),
        ...(m.meterTime !== undefined && { meterClock: new Date(m.meterTime).toISOString().slice(0, 19) }),
      };
    }
    const offline = this.counters.offline();
    const state = this.rounds === 0 ? 'starting' : offline > 0 ? 'degraded' : 'ok';
    return {
      state,
      ...(offline > 0 && { detail: `${offline} of ${this.meters.length} meters offline` }),
      bus: this.link?.description,
      reads: this.counters.reads,
      errors: { ...this.counters.errors },
      meters,
    };
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    const iv = this.cfg.pollIntervalMs;
    const last = this.lastSlot;
    // Aligned: the round after the first starts at the next slot (at once when one overran it).
    // A wall clock set back is followed at once (core/clock-slots.ts), never waited out.
    const delay = this.clockAligned && last !== undefined ? slotDelay(last, Date.now(), iv) : delayMs;
    this.timer = setTimeout(() => {
      const started = Date.now();
      // The slot the round runs in, never one already stamped (a timer a millisecond early).
      const slot = this.clockAligned ? slotOf(started, iv, last) : undefined;
      this.lastSlot = slot;
      this.round = this.pollAll(slot).finally(() => {
        this.rounds++;
        this.schedule(Math.max(0, iv - (Date.now() - started)));
      });
    }, delay);
  }

  /** One round; `slot`: the time its readings are stamped with (clock-aligned), else each read's. */
  private async pollAll(slot?: number): Promise<void> {
    const ctx = this.ctx!;
    for (const m of this.meters) {
      if (this.stopped) return;
      // A full outbox: the meters keep their values, the next round reads them.
      if (ctx.isFull()) {
        this.countError('outbox_full');
        return;
      }
      await this.pollMeter(ctx, m, slot);
    }
  }

  private async pollMeter(ctx: SourceContext, m: MeterState, slot?: number): Promise<void> {
    const master = this.master!;
    const { cfg } = m;
    let frame;
    try {
      if (cfg.primaryAddress !== undefined) {
        if (m.needsInit) await master.initialize(cfg.primaryAddress);
        m.needsInit = false;
        frame = await master.readPrimary(cfg.primaryAddress);
      } else {
        frame = await master.readSecondary({
          id: cfg.secondaryAddress!,
          manufacturer: cfg.manufacturer,
          version: cfg.version,
          medium: cfg.medium,
        });
      }
    } catch (err) {
      if (this.stopped) return;
      const e = err instanceof ExchangeError ? err : new ExchangeError('link_down', (err as Error).message);
      this.missed(ctx, m, e.message, e.reason === 'timeout' || e.reason === 'link_down' ? undefined : e);
      return;
    }
    const data = parseVariableData(frame.ci, frame.data);
    if (data instanceof RecordError) {
      this.countError(data.reason);
      this.missed(ctx, m, data.message, data, frame.data.toString('hex'));
      return;
    }
    if (cfg.secondaryAddress !== undefined && data.header && data.header.id !== cfg.secondaryAddress) {
      // Two meters answered the selection, or the wrong one did: the answer is not this meter's.
      this.countError('wrong_meter');
      this.missed(ctx, m, `selected ${cfg.secondaryAddress}, answer from ${data.header.id}`);
      return;
    }
    if (data.header) {
      m.header = data.header;
      const media = cfg.kind === 'gas-meter' ? GAS_MEDIA : WATER_MEDIA;
      if (!media.has(data.header.medium) && !m.mediumWarned) {
        m.mediumWarned = true;
        ctx.log.warn(
          { meter: cfg.id, medium: data.header.mediumName },
          `M-Bus meter reports medium ${data.header.mediumName}, configured as ${cfg.kind}`,
        );
      }
    }
    const mapped = mapRecords(cfg.kind, data, cfg);
    m.meterTime = mapped.meterTime;
    const now = Date.now();
    const rejected = ctx.ingest(
      { site: cfg.site, kind: cfg.kind, device: cfg.id, ts: slot ?? now, fields: mapped.fields },
      now,
    );
    if (rejected) {
      // Counted and logged by the pipeline; here it is one more missed read of this meter.
      this.countError(`ingest_${rejected.reason}`);
      m.lastError = `${rejected.reason}: ${rejected.detail}`;
      return;
    }
    this.counters.reads++;
    m.lastReadAt = now;
    m.lastError = undefined;
    m.missed = 0;
    if (m.online !== true) {
      if (m.online === false) ctx.log.info({ meter: cfg.id }, 'M-Bus meter answers again: online');
      m.online = true;
    }
  }

  private missed(
    ctx: SourceContext,
    m: MeterState,
    why: string,
    refused?: { reason: string; message: string },
    bytes?: string,
  ): void {
    m.missed++;
    m.lastError = why;
    m.needsInit = true;
    if (refused) {
      const received = bytes ?? (refused instanceof ExchangeError ? refused.received : '');
      ctx.publishRejected(
        m.cfg.site,
        m.cfg.kind,
        m.cfg.id,
        JSON.stringify({
          reason: refused.reason,
          detail: refused.message,
          source: this.name,
          receivedAt: new Date().toISOString(),
          bytes: received.slice(0, 1024),
        }),
      );
    }
    if (m.missed >= this.cfg.offlineAfter && m.online !== false) {
      m.online = false;
      ctx.log.warn({ meter: m.cfg.id, missedPolls: m.missed, lastError: why }, 'M-Bus meter offline');
    }
  }

  private countError(reason: string): void {
    this.counters.errors[reason] = (this.counters.errors[reason] ?? 0) + 1;
  }
}
