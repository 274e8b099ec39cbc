import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { planCommit } from './commit-plan.js';
import type { DeviceStateTracker } from './device-state.js';
import { DeviceStateStore } from './device-state-store.js';
import type { OwnershipGate } from './gate.js';
import type { LeaderDuties } from './leader.js';
import { clusterMetrics } from './metrics.js';
import { ClusterStore, type Claimed } from './store.js';
import type { DurableWatermark } from './watermark.js';

export interface ClusterSettings {
  instanceId: string;
  clientId: string;
  partitions: number;
  failoverMs: number;
  replaySlackMs: number;
}

export interface ClusterMemberDeps {
  settings: ClusterSettings;
  /** The shared state store's database (PostgreSQL), open before this member starts. */
  db: () => Kysely<object>;
  gate: OwnershipGate;
  watermark: DurableWatermark;
  duties: LeaderDuties;
  log: Logger;
  metrics: Registry;
  httpUrl: () => string | undefined;
  /** The per-device state that moves with a partition (ADR 0151). */
  state?: DeviceStateTracker;
  /** The alarms and tickets that move with a partition (ADR 0160). */
  records?: PartitionRecordsHook;
}

/**
 * Alarms and tickets live only on the owner of their device's partition (ADR 0160): taken over
 * when partitions are taken (before the state restore and the replay), dropped synchronously when
 * they stop being processed here, and their queued copies written before a graceful hand-over.
 */
export interface PartitionRecordsHook {
  adopt(db: Kysely<object>, parts: readonly number[]): Promise<void>;
  evict(parts: ReadonlySet<number>): void;
  flush(waitMs: number): Promise<void>;
}

interface MemberView {
  id: string;
  heartbeatAgeMs: number;
  /** Its durable lag as of its last heartbeat. */
  lagMs: number;
  partitions: number[];
  leader?: boolean;
}

/**
 * This instance as a cluster member (ADR 0150): a heartbeat row, leases on its fair share of the
 * device partitions (renewed every failoverMs / 5, claimed with `FOR UPDATE SKIP LOCKED`, replayed
 * from the previous owner's durable watermark on takeover), and the leader lease that runs the
 * cluster-wide singletons. A member that cannot renew in time stops processing on its own clock
 * before its leases can run out in PostgreSQL, so two members never process one partition at once.
 */
export class ClusterMember implements Component {
  readonly name = 'cluster';
  private store?: ClusterStore;
  private readonly session = randomUUID();
  private tickTimer?: NodeJS.Timeout;
  private fenceTimer?: NodeJS.Timeout;
  private sampleTimer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  /** Local time until which this member's leases surely still run in PostgreSQL. */
  private deadline = 0;
  /** PostgreSQL's clock minus this machine's, measured at each heartbeat. */
  private offset = 0;
  /** Local time a partition was taken: its watermark is recorded only once the watermark passed it. */
  private readonly acquiredAt: Float64Array;
  /**
   * Local time this member last stopped processing a partition (a fence, a loss, a hand-over): a
   * watermark recorded for it after is never later (ADR 0167).
   */
  private readonly stoppedAt: Float64Array;
  /** Set by stop(): a renewal still under way (hung past stop) claims and leads nothing (ADR 0168). */
  private stopped = false;
  /** The next sample's time is at least this: a sample after a take is tagged after the take. */
  private sampleFloor = 0;
  private leading = false;
  private lastError?: string;
  private lastTickAt = 0;
  private members: MemberView[] = [];
  private counters?: ReturnType<typeof clusterMetrics>;
  takeovers = 0;

  constructor(private readonly d: ClusterMemberDeps) {
    this.acquiredAt = new Float64Array(d.settings.partitions);
    this.stoppedAt = new Float64Array(d.settings.partitions);
  }

  private get ttl(): number {
    return this.d.settings.failoverMs;
  }
  private get renewMs(): number {
    return Math.max(200, Math.floor(this.ttl / 5));
  }

  async start(): Promise<void> {
    const { settings, log } = this.d;
    const store = new ClusterStore(this.d.db());
    this.store = store;
    this.stopped = false;
    const n = await store.ensurePartitions(settings.partitions);
    if (n !== settings.partitions)
      throw new GatewayError(
        'GW_ERR_CONFIG',
        `cluster.partitions is ${settings.partitions} but this cluster was created with ${n} partitions ` +
          `(recorded in PostgreSQL); start every member with cluster.partitions: ${n}`,
      );
    await this.checkUnique(store);
    this.counters ??= clusterMetrics(this.d.metrics, () => this.gauges());
    this.sample(Date.now());
    await this.tick();
    this.tickTimer = setInterval(() => {
      if (!this.ticking) this.ticking = this.guardedTick();
    }, this.renewMs);
    this.fenceTimer = setInterval(() => this.fence(), Math.min(500, this.renewMs));
    this.sampleTimer = setInterval(() => this.sample(Date.now()), 1000);
    for (const t of [this.tickTimer, this.fenceTimer, this.sampleTimer]) t.unref();
    log.info({ instanceId: settings.instanceId, partitions: n, failoverMs: this.ttl }, 'joined the cluster');
  }

  /**
   * Two live instances with one instance id or one MQTT client id would take each other's leases
   * and broker session. A row whose heartbeat is fresh may be a member that just died: it is read
   * again after two renewal periods, and only a heartbeat that advanced refuses the start.
   */
  private async checkUnique(store: ClusterStore): Promise<void> {
    const { instanceId, clientId } = this.d.settings;
    const first = await store.holders(instanceId, clientId, this.session, this.ttl);
    if (first.length === 0) return;
    this.d.log.warn(
      { holders: first.map((h) => h.instance_id) },
      'a member with this instance id or client id was seen recently; checking whether it is alive',
    );
    await new Promise((r) => setTimeout(r, this.renewMs * 2 + 200));
    const again = await store.holders(instanceId, clientId, this.session, this.ttl);
    const alive = again.find((h) => {
      const before = first.find((f) => f.session === h.session);
      return before === undefined || Number(h.heartbeat_at) > Number(before.heartbeat_at);
    });
    if (alive)
      throw new GatewayError(
        'GW_ERR_CONFIG',
        alive.instance_id === instanceId
          ? `another running instance already uses cluster.instanceId "${instanceId}": give each instance its own GATEWAY_INSTANCE_ID`
          : `cluster member "${alive.instance_id}" already uses MQTT client id "${clientId}": give each instance its own mqtt.clientId (or leave it unset to derive it from the instance id)`,
      );
  }

  /**
   * A tick whose queries hang (PostgreSQL cut off without a reset: the socket waits for TCP to give
   * up) stops holding the next ones back after failoverMs; the fence has already stopped processing.
   */
  private guardedTick(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (this.lastError === undefined) this.d.log.error('cluster heartbeat hangs; trying again');
        this.lastError = 'heartbeat hangs';
        resolve();
      }, this.ttl);
      timer.unref();
    });
    return Promise.race([this.tick(), late]).finally(() => {
      clearTimeout(timer);
      this.ticking = undefined;
    });
  }

  private async tick(): Promise<void> {
    const store = this.store;
    if (!store) return;
    const { settings, gate, watermark, duties, log } = this.d;
    const me = settings.instanceId;
    try {
      const t0 = Date.now();
      const dbNow = await store.heartbeat({
        instanceId: me,
        clientId: settings.clientId,
        session: this.session,
        httpUrl: this.d.httpUrl() ?? null,
        lagMs: Math.max(0, Math.round(t0 - watermark.value)),
      });
      this.offset = dbNow - (t0 + Date.now()) / 2;
      const live = await store.liveMembers(this.ttl);
      const mark = watermark.value;
      const mine = gate.ownedList();
      const held = await this.commit(store, mark, []);
      this.deadline = t0 + this.ttl - this.renewMs / 2;
      const heldSet = new Set(held);
      const lost = mine.filter((p) => !heldSet.has(p));
      if (lost.length > 0) {
        this.halt(lost);
        // Another member may hold them and newer state already: nothing pending of them is written.
        this.d.state?.purge(new Set(lost));
        log.warn(
          { partitions: lost },
          'partition leases lost (expired in PostgreSQL): stopped processing them',
        );
      }
      // Held in PostgreSQL but not processed here (after a fence): give back, to be claimed with a replay.
      const stray = held.filter((p) => gate.owned[p] === 0);
      const kept = held.filter((p) => gate.owned[p] === 1);
      const share = Math.ceil(settings.partitions / Math.max(1, live.length));
      const extra = kept.length > share ? kept.slice(share) : [];
      if (stray.length + extra.length > 0)
        await this.handOver(store, [...stray, ...extra], Math.min(this.ttl / 3, 5000));
      const want = share - (kept.length - extra.length);
      // A renewal that hung past stop() claims nothing and takes no leadership (ADR 0168).
      if (this.stopped) return;
      if (want > 0) await this.take(store, me, want);
      if (this.stopped) return;
      const leading = await store.lead(me, this.ttl);
      if (this.stopped) {
        if (leading) await store.resign(me);
        return;
      }
      this.leading = leading;
      void duties.set(this.leading);
      await this.look(store, live);
      if (this.lastError !== undefined) log.info('cluster store reachable again');
      this.lastError = undefined;
      this.lastTickAt = Date.now();
    } catch (err) {
      if (this.lastError === undefined)
        log.error(
          { err: (err as Error).message },
          'cluster heartbeat failed; partitions stop at the lease deadline',
        );
      this.lastError = (err as Error).message;
    }
  }

  /** A watermark sample, with the capture of the device state it is the watermark of (ADR 0151). */
  private sample(now: number): void {
    const t = Math.max(now, this.sampleFloor);
    this.d.state?.capture(t);
    this.d.watermark.sample(t);
  }

  /** stopProcessing, noting when: the watermark recorded for them later is capped there (ADR 0167). */
  private halt(parts: readonly number[]): void {
    const now = Date.now();
    for (const p of parts) if (this.d.gate.owned[p] === 1) this.stoppedAt[p] = now;
    this.stopProcessing(parts);
  }

  /**
   * Whether this member's leases surely run at least one more renewal period from `now` (ADR 0173):
   * false only after renewals have failed for a while, shortly before the fence stops the
   * partitions. People's changes are refused (503, retryable) then rather than made on records
   * about to move.
   */
  leaseFresh(now = Date.now()): boolean {
    return this.deadline - now >= this.renewMs;
  }

  /**
   * Local time until which this member processed partition `p` since it last took it: Infinity
   * while it does; the stop's time once stopped; 0 if it stopped without a recorded time (nothing
   * is recorded then).
   */
  private processedUntil = (p: number): number => {
    if (this.d.gate.owned[p] === 1) return Infinity;
    return this.stoppedAt[p]! >= this.acquiredAt[p]! ? this.stoppedAt[p]! : 0;
  };

  /** Stops processing partitions here (the gate drops them, their devices' time-based rules stop). */
  private stopProcessing(parts: readonly number[]): void {
    if (parts.length === 0) return;
    this.d.gate.release(parts);
    this.d.state?.released(new Set(parts));
    this.d.records?.evict(new Set(parts));
  }

  /**
   * One transaction: renews this member's leases, records the durable watermark for the partitions
   * it has held since before it (processed here or stopped, as after a fence or in a hand-over: the
   * renewal only touches rows this member holds; a stopped one records at most the time it stopped,
   * ADR 0167), writes the device state captured up to `mark` of
   * those, and gives `releasing` back. The state and the watermark it belongs to thus reach
   * PostgreSQL together, or neither does (ADR 0151; the watermark may be earlier than `mark`, see
   * planCommit).
   */
  private async commit(store: ClusterStore, mark: number, releasing: readonly number[]): Promise<number[]> {
    const me = this.d.settings.instanceId;
    const state = this.d.state;
    const { settled, durable, earlier, rules, meters } = planCommit(
      mark,
      this.acquiredAt,
      this.offset,
      state,
      this.processedUntil,
    );
    // Nothing to write or give back (most renewals when idle): the single statement, as before.
    if (rules.length + meters.length === 0 && releasing.length === 0) {
      const held = await store.renew(me, this.ttl, settled, durable, earlier);
      state?.written(mark, 0);
      return held;
    }
    let upserted = 0;
    const held = await store.transaction(async (tx, db) => {
      const held = await tx.renew(me, this.ttl, settled, durable, earlier);
      // Only partitions this transaction still holds (their rows are now locked by the renewal).
      const kept = new Set(held);
      const r = rules.filter((x) => kept.has(x.partition));
      const m = meters.filter((x) => kept.has(x.partition));
      // Each row is as of its partition's watermark (an earlier one for a partition stopped here).
      const asOf = (p: number) => earlier.get(p) ?? durable;
      for (const at of new Set([...r, ...m].map((x) => asOf(x.partition))))
        await new DeviceStateStore(db).upsert(
          r.filter((x) => asOf(x.partition) === at),
          m.filter((x) => asOf(x.partition) === at),
          at,
        );
      upserted = r.length + m.length;
      await tx.release(me, releasing);
      return held;
    });
    state?.written(mark, upserted);
    return held;
  }

  /**
   * Gives partitions back cleanly (a rebalance, a stop): processing stops, then this member waits
   * (at most `waitMs`) until what it processed of them is in InfluxDB, and writes their state with
   * that watermark before the leases go. If InfluxDB does not confirm in time, the state and
   * watermark of the last confirmed point go instead: the next owner replays from there.
   */
  private async handOver(store: ClusterStore, parts: readonly number[], waitMs: number): Promise<void> {
    this.halt(parts.filter((p) => this.d.gate.owned[p] === 1));
    const tag = Date.now();
    this.sample(tag);
    const until = tag + waitMs;
    // The records' last changes into the shared view before the leases go: the next owner
    // adopts them from there (ADR 0160).
    await this.d.records?.flush(waitMs);
    while (this.d.watermark.value < tag && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      this.sample(Date.now());
    }
    await this.commit(store, this.d.watermark.value, parts);
    this.d.state?.purge(new Set(parts));
  }

  /**
   * Claims up to `want` partitions while this member's row is in PostgreSQL; a claim that returns
   * after stop() (its renewal hung past it) gives them back at once (ADR 0168).
   */
  private async claim(store: ClusterStore, me: string, want: number): Promise<Claimed[]> {
    if (this.stopped) return [];
    const claimed = await store.claim(me, this.ttl, want, this.session);
    if (!this.stopped || claimed.length === 0) return claimed;
    await store.release(
      me,
      claimed.map((c) => c.partition),
    );
    return [];
  }

  private async take(store: ClusterStore, me: string, want: number): Promise<void> {
    // The claimed leases run at least this long by this machine's clock (taken before the claim),
    // with the fence's margin: no renewal runs while this take waits for the adoption and restore.
    const until = Date.now() + this.ttl - this.renewMs / 2;
    const claimed = await this.claim(store, me, want);
    if (claimed.length === 0) return;
    const parts = claimed.map((c) => c.partition);
    // The previous holder's alarms and tickets, then its device state (whose restore makes the
    // rules' raised severities agree with the active alarms), then the replay from its watermark
    // (ADR 0160, 0151).
    try {
      await this.d.records?.adopt(this.d.db(), parts);
      await this.d.state?.restore(this.d.db(), parts);
    } catch (err) {
      this.d.records?.evict(new Set(parts));
      await store.release(me, parts).catch(() => undefined);
      throw err;
    }
    // stop() came while the state was read (a renewal hung past it): nothing is processed after stop.
    if (this.stopped) {
      await store.release(me, parts).catch(() => undefined);
      return;
    }
    // The adoption or the restore took so long that the leases may have run out in PostgreSQL and
    // another member may have claimed the partitions: not processed here (the next renewal claims
    // again, with a fresh adoption).
    if (Date.now() > until) {
      const set = new Set(parts);
      // The restore set their devices' rules running: parked again, as on any stop.
      this.d.state?.released(set);
      this.d.state?.purge(set);
      this.d.records?.evict(set);
      await store.release(me, parts).catch(() => undefined);
      this.d.log.warn(
        { partitions: parts, ttlMs: this.ttl },
        'taking partitions took longer than their lease: given back, not processed',
      );
      return;
    }
    const slack = this.d.settings.replaySlackMs;
    const from = new Map<number, number>();
    for (const c of claimed) from.set(c.partition, c.durableUntil - this.offset - slack);
    const now = Date.now();
    for (const c of claimed) this.acquiredAt[c.partition] = now;
    const replayed = this.d.gate.acquire(from);
    // The replay's state changes are captured by a later sample even within this millisecond: the
    // partitions' watermark is recorded only once a sample strictly after `now` has passed.
    this.sampleFloor = now + 1;
    const taken = claimed.filter((c) => c.prevOwner !== null && c.prevOwner !== me);
    this.takeovers += taken.length;
    this.counters?.takeovers.inc(taken.length);
    this.counters?.replayed.inc(replayed);
    this.d.log.info(
      {
        partitions: claimed.map((c) => c.partition),
        from: [...new Set(taken.map((c) => c.prevOwner))],
        replayed,
      },
      'partitions taken',
    );
  }

  private async look(
    store: ClusterStore,
    live: Awaited<ReturnType<ClusterStore['liveMembers']>>,
  ): Promise<void> {
    const owners = await store.owners();
    const by = new Map<string, number[]>();
    for (const o of owners)
      if (o.owner !== null) (by.get(o.owner) ?? by.set(o.owner, []).get(o.owner)!).push(o.partition);
    this.members = live.map((m) => ({
      id: m.instance_id,
      heartbeatAgeMs: Math.max(0, Number(m.age)),
      lagMs: Number(m.lag_ms),
      partitions: by.get(m.instance_id) ?? [],
      ...(m.instance_id === this.d.settings.instanceId ? { leader: this.leading } : {}),
    }));
  }

  /** Stops processing when the leases may have run out: this member could not renew in time. */
  private fence(): void {
    if (Date.now() <= this.deadline) return;
    const owned = this.d.gate.ownedList();
    if (owned.length === 0 && !this.leading) return;
    this.halt(owned);
    // Shown in health at once: the store did not answer in time (the failing tick may still hang).
    this.lastError ??= 'leases not renewed in time';
    this.leading = false;
    void this.d.duties.set(false);
    this.d.log.error(
      { partitions: owned.length },
      'could not renew the cluster leases in time: stopped processing until PostgreSQL answers again',
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [this.tickTimer, this.fenceTimer, this.sampleTimer]) clearInterval(t);
    await this.ticking;
    const store = this.store;
    this.store = undefined;
    if (!store) return;
    const { gate, settings } = this.d;
    const me = settings.instanceId;
    this.halt(gate.ownedList());
    this.leading = false;
    await this.d.duties.set(false);
    try {
      // Their state goes to PostgreSQL as of what reached InfluxDB, then the leases: every lease
      // PostgreSQL still records as this member's, also those no longer processed here after a
      // fence (the gate no longer lists them; left leased, the others would wait a whole TTL).
      const all = Array.from({ length: settings.partitions }, (_, p) => p);
      await this.handOver(store, all, this.ttl / 2);
      await store.resign(me);
      await store.leave(me, this.session);
    } catch (err) {
      this.d.log.warn(
        { err: (err as Error).message },
        'could not leave the cluster cleanly; leases run out by themselves',
      );
    }
  }

  health(): ComponentHealth {
    const gate = this.d.gate;
    const owned = gate.ownedList();
    const lagMs = Math.max(0, Date.now() - this.d.watermark.value);
    const base = {
      instanceId: this.d.settings.instanceId,
      leader: this.leading,
      partitions: { total: gate.partitions, owned },
      members: this.members,
      lagMs,
      lastHeartbeatAgeMs: this.lastTickAt ? Date.now() - this.lastTickAt : null,
      takeovers: this.takeovers,
      replay: {
        ...gate.ringStats(),
        replayed: gate.replayed,
        skippedPolledReadings: gate.skippedReadings,
        filledSlots: gate.filledSlots,
      },
      ...(this.d.state
        ? {
            deviceState: {
              pendingCaptures: this.d.state.pending,
              rowsWritten: this.d.state.rowsWritten,
              devicesRestored: this.d.state.devicesRestored,
            },
          }
        : {}),
    };
    if (this.lastError !== undefined)
      return { state: 'degraded', detail: `cluster store: ${this.lastError}`, ...base };
    return { state: 'ok', ...base };
  }

  private gauges() {
    const s = this.d.gate.ringStats();
    return {
      owned: this.d.gate.ownedList().length,
      members: this.members.length,
      leader: this.leading,
      lagMs: Math.max(0, Date.now() - this.d.watermark.value),
      ringEntries: s.entries,
      overruns: s.overruns,
    };
  }
}
