import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { TicketEvent } from '../workorders/types.js';
import { retryDelayMs } from '../core/backoff.js';
import { EmailChannel, WebhookChannel, type Channel } from './channels.js';
import type { DeliveryFence } from './fence.js';
import { NotifyQueue, type AdoptedRow, type QueueRow, type RowState } from './queue.js';
import { inboundSecrets, notificationsSchema, type NotificationsConfig } from './schema.js';
import { contactOfRow, type DeliveryFailure } from './unreachable.js';

export interface NotificationServiceDeps {
  queue: NotifyQueue;
  config?: NotificationsConfig;
  log?: Logger;
  now?: () => number;
  /** Built from the config when absent; tests may hand their own. */
  channels?: Channel[];
  /**
   * Cluster mode (ADR 0179): the shared copy of the queue, asked at start and before each attempt
   * whether another member took a row over. Absent (a single gateway): every row here is sent.
   */
  fence?: DeliveryFence;
  /** The length of a claim, renewed while its attempt runs (default CLAIM_MS; tests shorten it). */
  claimMs?: number;
}

/** How long an attempt may take when the channel does not say (the claim in the shared copy outlasts it). */
const DEFAULT_ATTEMPT_MS = 30_000;
/** What a claim adds to the attempt's own time limit: the answer's processing, a slow commit. */
const CLAIM_MARGIN_MS = 5_000;
/**
 * The longest a claim runs unrenewed (ADR 0179 addendum): renewed every third of it while the
 * attempt runs, so a member killed mid-attempt blocks the takeover for this long at most, not for the
 * channel's whole time limit (90 s for e-mail).
 */
const CLAIM_MS = 6_000;

interface Worker {
  ch: Channel;
  /** The settings it was built from: a changed channel gets a new worker. */
  settings: string;
  /** Taken out by setChannels: its loop ends after the attempt in flight. */
  retired: boolean;
  busy: boolean;
  timer?: NodeJS.Timeout;
  abort: AbortController;
  inflight?: Promise<void>;
  attempts: number;
  failures: number;
  delivered: number;
  dead: number;
  lastError: string | null;
  /** The last status the receiver answered (HTTP or SMTP), null when it could not be reached or none yet. */
  lastStatus: number | null;
  /** The head of the line now failing, and since when: its line waits behind it. */
  failing: { seq: number; since: number; attempts: number } | null;
}

/**
 * What happens to the queue, for its copy in the cluster's shared view (ADR 0160 addendum 2): a
 * committed new row, or a row's new state (delivered, dead, back in line).
 */
export type QueueChange =
  | { kind: 'queued'; row: QueueRow }
  | { kind: 'state'; eventId: string; channel: string; state: RowState; at: number | null };

/** The longest a receiver's Retry-After may hold its channel back. */
const RETRY_AFTER_CAP_MS = 3_600_000;

/**
 * Delivers the ticket events queued in workorders.db: per channel, strictly in order and one at a
 * time; a failed attempt holds the channel's line and is retried with capped exponential backoff
 * and jitter, or after the receiver's Retry-After when longer (core/backoff.ts). A row is marked delivered only after success; a
 * refusal for good parks it as dead (an admin can put it back in line). Rows outlive restarts.
 */
export class NotificationService implements Component {
  readonly name = 'notifications';
  private cfg: NotificationsConfig;
  private readonly workers = new Map<string, Worker>();
  private readonly now: () => number;
  private started = false;
  private archiveTimer?: NodeJS.Timeout;
  private kickScheduled = false;
  /**
   * `takenOver`: rows dropped here because another member took them over (ADR 0179); `unfenced`:
   * attempts made without a claim because the shared store could not be reached in time.
   */
  private counts = { enqueued: 0, archived: 0, errors: 0, takenOver: 0, unfenced: 0 };
  /** The shared store was unreachable for a claim: logged once until a claim succeeds again. */
  private fenceDown = false;
  private readonly failureListeners = new Set<(f: DeliveryFailure) => void>();
  private readonly changeListeners = new Set<(c: QueueChange) => void>();
  /** Rows queued in ticket transactions not yet announced to the change listeners (after commit). */
  private queuedSeqs: number[] = [];
  /** Outcomes of `POST /api/webhooks/inbound`, counted by its route. */
  readonly inbound = { accepted: 0, badSignature: 0, stale: 0, replayed: 0, invalid: 0, refused: 0 };

  constructor(private readonly deps: NotificationServiceDeps) {
    this.cfg = deps.config ?? notificationsSchema.parse({});
    this.now = deps.now ?? Date.now;
    const channels = deps.channels?.map((ch) => ({ ch, settings: '' })) ?? channelsOf(this.cfg);
    for (const c of channels) this.workers.set(c.ch.channel, newWorker(c.ch, c.settings));
  }

  /**
   * Applies changed webhooks and email settings while running (an operator's change, a reload):
   * a channel whose settings changed gets a new worker once its attempt in flight ends; its queued
   * events stay in line and go out through the new settings. A removed channel's queued events wait
   * in the queue until a channel of that name is back.
   */
  setChannels(next: Pick<NotificationsConfig, 'webhooks' | 'email'>): string[] {
    this.cfg = { ...this.cfg, webhooks: next.webhooks, email: next.email };
    const want = new Map(channelsOf(this.cfg).map((c) => [c.ch.channel, c]));
    const changed: string[] = [];
    // The attempt in flight of a replaced worker: its successor waits for it, so one event is never
    // sent by both at once.
    const leaving = new Map<string, Promise<void>>();
    for (const [name, w] of this.workers) {
      if (want.get(name)?.settings === w.settings) {
        want.delete(name);
        continue;
      }
      this.workers.delete(name);
      changed.push(name);
      w.retired = true;
      clearTimeout(w.timer);
      w.abort.abort();
      const done = (w.inflight ?? Promise.resolve()).catch(() => undefined).then(() => w.ch.stop());
      leaving.set(name, done);
      void done;
    }
    for (const [name, c] of want) {
      const w = newWorker(c.ch, c.settings);
      this.workers.set(name, w);
      if (!changed.includes(name)) changed.push(name);
      if (this.started) {
        c.ch.start();
        w.busy = true;
        void (leaving.get(name) ?? Promise.resolve()).then(() => {
          w.busy = false;
          this.pump(w);
        });
      }
    }
    if (changed.length) this.deps.log?.info({ channels: changed }, 'notification channels changed');
    return changed;
  }

  get config(): NotificationsConfig {
    return this.cfg;
  }

  get queue(): NotifyQueue {
    return this.deps.queue;
  }

  /** The inbound webhook's secrets in force (read from the environment at call time). */
  inboundSecrets(): string[] {
    return inboundSecrets(this.cfg.inbound);
  }

  channels(): string[] {
    return [...this.workers.keys()];
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const w of this.workers.values()) {
      w.abort = new AbortController();
      w.ch.start();
    }
    this.archive();
    this.archiveTimer = setInterval(() => this.archive(), 3_600_000);
    this.archiveTimer.unref();
    await this.dropTakenOver();
    const pending = [...this.deps.queue.stats().values()].reduce((a, s) => a + s.pending, 0);
    this.deps.log?.info({ channels: this.channels(), pending }, 'notifications started');
    this.kick();
  }

  /**
   * Cluster mode, at start (ADR 0179): the rows left pending here before a stop or crash that another
   * member took over meanwhile (it found this member dead) are dropped, not sent a second time.
   * Logged once with the count. When the shared store cannot be asked, each row is still checked
   * before its attempt (`claim`).
   */
  private async dropTakenOver(): Promise<void> {
    const fence = this.deps.fence;
    if (!fence) return;
    const rows = this.deps.queue.list('pending', undefined, 100_000);
    if (rows.length === 0) return;
    try {
      const taken = await fence.taken(rows);
      if (taken.size === 0) return;
      const n = this.deps.queue.markTaken([...taken]);
      this.counts.takenOver += n;
      this.deps.log?.info(
        { notifications: n },
        'pending notifications another member took over while this one was down dropped here, not sent again',
      );
    } catch (err) {
      this.counts.errors++;
      this.deps.log?.warn(
        { err: (err as Error).message, pending: rows.length },
        'could not check pending notifications against the shared copy at start; each is checked before its attempt',
      );
    }
  }

  /**
   * Cluster mode: asks the shared copy before an attempt. `taken` when the row is another member's
   * now (dropped here, counted); `claimed` or `unfenced` to go ahead, the latter when the shared
   * store could not be reached in time (no claim to release after the attempt).
   */
  /** A claim's length for this channel: its attempt's limit and a margin, at most `claimMs`. */
  private claimMs(w: Worker): number {
    return Math.min(this.deps.claimMs ?? CLAIM_MS, (w.ch.timeoutMs ?? DEFAULT_ATTEMPT_MS) + CLAIM_MARGIN_MS);
  }

  /**
   * Renews the claim of `row` every third of its length until the returned function is called (the
   * attempt ended). A renewal that fails is not retried sooner: the claim then runs out as after a crash.
   */
  private keepClaimed(w: Worker, row: QueueRow): () => void {
    const ms = this.claimMs(w);
    const fence = this.deps.fence!;
    const timer = setInterval(() => void fence.claim(row, ms).catch(() => undefined), Math.max(1, ms / 3));
    timer.unref();
    return () => clearInterval(timer);
  }

  private async mayDeliver(w: Worker, row: QueueRow): Promise<'claimed' | 'unfenced' | 'taken'> {
    const fence = this.deps.fence;
    if (!fence) return 'unfenced';
    const verdict = await fence.claim(row, this.claimMs(w));
    if (verdict === 'unfenced') {
      this.counts.unfenced++;
      if (!this.fenceDown)
        this.deps.log?.warn(
          { channel: row.channel, event: row.eventId },
          "shared store unreachable: delivering this member's notifications without a claim (ADR 0179)",
        );
      this.fenceDown = true;
      return 'unfenced';
    }
    if (this.fenceDown)
      this.deps.log?.info('shared store reachable again: notifications claimed before delivery');
    this.fenceDown = false;
    if (verdict === 'go') return 'claimed';
    const n = this.deps.queue.markTaken([row.seq]);
    this.counts.takenOver += n;
    this.deps.log?.info(
      { channel: row.channel, event: row.eventId, ticket: row.ticketId },
      'notification taken over by another member: dropped here, not sent again',
    );
    return 'taken';
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    clearInterval(this.archiveTimer);
    for (const w of this.workers.values()) {
      clearTimeout(w.timer);
      w.timer = undefined;
      // An attempt cut short stays pending: it is sent again, with the same id, after the restart.
      w.abort.abort();
    }
    await Promise.all([...this.workers.values()].map((w) => w.inflight?.catch(() => undefined)));
    for (const w of this.workers.values()) w.ch.stop();
  }

  /**
   * Queues the events for every channel that wants them. Called by the work-order service inside
   * the transaction of the ticket change; the workers are woken once it has committed.
   */
  enqueue = (events: readonly TicketEvent[]): void => {
    if (this.workers.size === 0) return;
    const n = this.deps.queue.enqueue(
      events,
      [...this.workers.values()].map((w) => w.ch),
      this.now(),
      this.changeListeners.size > 0 ? this.queuedSeqs : undefined,
    );
    this.counts.enqueued += n;
    if (n > 0 && !this.kickScheduled) {
      this.kickScheduled = true;
      setImmediate(() => {
        this.kickScheduled = false;
        this.announceQueued();
        this.kick();
      });
    }
  };

  /**
   * Told of every committed new row and every change of a row's state (cluster mode copies them to
   * the shared view). Returns an unsubscribe function.
   */
  onQueueChange(fn: (c: QueueChange) => void): () => void {
    this.changeListeners.add(fn);
    return () => this.changeListeners.delete(fn);
  }

  /**
   * Cluster mode (ADR 0160 addendum 2): rows a dead instance queued for the tickets taken over here
   * and never delivered join this queue, with their event ids, and go out from here. A row already
   * here is left as it is. Returns how many were added.
   */
  adopt(rows: readonly AdoptedRow[]): number {
    if (rows.length === 0) return 0;
    const n = this.deps.queue.adopt(rows, this.now());
    if (n > 0) {
      this.deps.log?.info({ notifications: n }, 'undelivered notifications of a dead instance taken over');
      this.kick();
    }
    return n;
  }

  /**
   * The rows queued since the last call, read back after their transaction ended: only committed
   * ones exist, with their state now (a row delivered meanwhile is announced delivered).
   */
  private announceQueued(): void {
    if (this.queuedSeqs.length === 0) return;
    const seqs = this.queuedSeqs;
    this.queuedSeqs = [];
    try {
      for (const row of this.deps.queue.bySeq(seqs)) this.changed({ kind: 'queued', row });
    } catch (err) {
      this.counts.errors++;
      this.deps.log?.error({ err }, 'queued notifications not copied');
    }
  }

  private changed(c: QueueChange): void {
    for (const fn of this.changeListeners) {
      try {
        fn(c);
      } catch (err) {
        this.counts.errors++;
        this.deps.log?.error({ err }, 'notification queue listener failed');
      }
    }
  }

  /**
   * Told of every failed attempt (after it is recorded): the work orders skip a contact who cannot be
   * reached. Returns an unsubscribe function.
   */
  onFailure(fn: (f: DeliveryFailure) => void): () => void {
    this.failureListeners.add(fn);
    return () => this.failureListeners.delete(fn);
  }

  private failed(row: QueueRow, attempts: number, dead: boolean, error: string): void {
    if (this.failureListeners.size === 0) return;
    const c = contactOfRow(row);
    const f: DeliveryFailure = {
      ticketId: row.ticketId,
      channel: row.channel,
      attempts,
      dead,
      error,
      level: c?.level,
      contact: c?.contact,
    };
    for (const fn of this.failureListeners) {
      try {
        fn(f);
      } catch (err) {
        this.counts.errors++;
        this.deps.log?.error({ err, ticket: row.ticketId }, 'delivery failure listener failed');
      }
    }
  }

  /** Puts a dead row back in line (admin). */
  retryDead(seq: number): QueueRow | undefined {
    const r = this.deps.queue.retry(seq, this.now());
    if (r) {
      this.changed({ kind: 'state', eventId: r.eventId, channel: r.channel, state: 'pending', at: null });
      this.deps.log?.info(
        { seq, channel: r.channel, event: r.eventId },
        'dead notification put back in line',
      );
      this.kick();
    }
    return r;
  }

  /** Wakes every idle worker. */
  kick(): void {
    for (const w of this.workers.values()) this.pump(w);
  }

  health(): ComponentHealth {
    const stats = this.deps.queue.stats();
    const now = this.now();
    const channels: Record<string, unknown> = {};
    let state: ComponentHealth['state'] = this.started ? 'ok' : 'stopped';
    for (const [name, w] of this.workers) {
      const s = stats.get(name) ?? { pending: 0, dead: 0, delivered: 0, taken: 0, oldestPendingAt: null };
      const oldestPendingAgeSec =
        s.oldestPendingAt === null ? 0 : Math.max(0, Math.round((now - s.oldestPendingAt) / 1000));
      channels[name] = {
        pending: s.pending,
        dead: s.dead,
        delivered: s.delivered,
        oldestPendingAgeSec,
        attempts: w.attempts,
        failures: w.failures,
        lastError: w.lastError,
        lastStatus: w.lastStatus,
        // The line waits behind a failing event: how long, how often tried, when next.
        blockedSince: w.failing ? new Date(w.failing.since).toISOString() : null,
        headAttempts: w.failing?.attempts ?? 0,
      };
      // Parked events or a line that has not moved for a while need a person.
      if (state === 'ok' && (s.dead > 0 || (w.lastError !== null && s.pending > 0))) state = 'degraded';
    }
    return { state, channels, ...this.counts, inbound: { ...this.inbound } };
  }

  /** Per channel: queue stats and counters, for /metrics. */
  metrics(): Array<{
    channel: string;
    pending: number;
    dead: number;
    oldestPendingAgeSec: number;
    attempts: number;
    failures: number;
    delivered: number;
    blockedSec: number;
    headAttempts: number;
    lastStatus: number;
  }> {
    const stats = this.deps.queue.stats();
    const now = this.now();
    return [...this.workers].map(([channel, w]) => {
      const s = stats.get(channel);
      return {
        channel,
        pending: s?.pending ?? 0,
        dead: s?.dead ?? 0,
        oldestPendingAgeSec: s?.oldestPendingAt ? Math.max(0, (now - s.oldestPendingAt) / 1000) : 0,
        attempts: w.attempts,
        failures: w.failures,
        delivered: w.delivered,
        blockedSec: w.failing ? Math.max(0, (now - w.failing.since) / 1000) : 0,
        headAttempts: w.failing?.attempts ?? 0,
        lastStatus: w.lastStatus ?? 0,
      };
    });
  }

  /** Moves what is done with out of the queue into the archive (nothing is deleted). */
  private archive(): void {
    try {
      const now = this.now();
      const before = now - this.cfg.retentionDays * 86_400_000;
      this.counts.archived += this.deps.queue.archiveDelivered(before, now);
      // Rows another member took over (ADR 0179) leave after the same time, not never.
      this.deps.queue.dropTaken(before);
      this.deps.queue.archiveInbound(now - this.cfg.inbound.keepKeysHours * 3_600_000, now);
    } catch (err) {
      this.counts.errors++;
      this.deps.log?.error({ err }, 'notification archiving failed');
    }
  }

  private pump(w: Worker): void {
    if (!this.started || w.busy || w.retired) return;
    clearTimeout(w.timer);
    w.timer = undefined;
    w.busy = true;
    w.inflight = this.drain(w)
      .catch((err: unknown) => {
        this.counts.errors++;
        this.deps.log?.error({ err, channel: w.ch.channel }, 'notification worker failed');
      })
      .finally(() => {
        w.busy = false;
        w.inflight = undefined;
        if (this.started && !w.retired && w.timer === undefined) this.sleep(w, this.cfg.pollMs);
      });
  }

  private sleep(w: Worker, ms: number): void {
    w.timer = setTimeout(() => {
      w.timer = undefined;
      this.pump(w);
    }, ms);
    w.timer.unref();
  }

  /** Sends the channel's due rows in order until the line is empty or its head must wait. */
  private async drain(w: Worker): Promise<void> {
    const { ch } = w;
    while (this.started && !w.retired) {
      const row = this.deps.queue.head(ch.channel);
      if (!row) return;
      const now = this.now();
      if (row.nextAt > now) {
        this.sleep(w, Math.min(row.nextAt - now, this.cfg.pollMs));
        return;
      }
      const fenced = await this.mayDeliver(w, row);
      if (fenced === 'taken') {
        // Not this line's to hold any more.
        if (w.failing?.seq === row.seq) w.failing = null;
        continue;
      }
      if (!this.started || w.retired) {
        if (fenced === 'claimed') await this.deps.fence?.release(row, null);
        return;
      }
      w.attempts++;
      const renewing = fenced === 'claimed' ? this.keepClaimed(w, row) : undefined;
      let out: Awaited<ReturnType<Channel['deliver']>>;
      try {
        out = await ch.deliver(row, now, w.abort.signal);
      } finally {
        renewing?.();
      }
      // The claim ends with the attempt: a member that dies later leaves nothing claimed for long.
      if (fenced === 'claimed')
        await this.deps.fence?.release(row, out.kind === 'delivered' ? this.now() : null);
      // Cut short by stop() or setChannels(): stays pending as it was.
      if ((!this.started || w.retired) && out.kind !== 'delivered') return;
      const after = this.now();
      w.lastStatus = out.status;
      if (out.kind === 'delivered') {
        this.deps.queue.markDelivered(row.seq, out.status, after);
        this.changed({
          kind: 'state',
          eventId: row.eventId,
          channel: row.channel,
          state: 'delivered',
          at: after,
        });
        w.delivered++;
        w.lastError = null;
        w.failing = null;
        continue;
      }
      w.failures++;
      w.lastError = out.error;
      if (w.failing?.seq !== row.seq) w.failing = { seq: row.seq, since: now, attempts: 0 };
      w.failing.attempts++;
      const attempts = row.attempts + 1;
      const tooOld = after - row.queuedAt > ch.maxAgeHours * 3_600_000;
      const tooMany = ch.maxAttempts !== undefined && attempts >= ch.maxAttempts;
      if (out.kind === 'dead' || tooOld || tooMany) {
        const why = out.kind === 'dead' ? out.error : `gave up after ${attempts} attempts: ${out.error}`;
        this.deps.queue.markDead(row.seq, out.status, why);
        this.changed({ kind: 'state', eventId: row.eventId, channel: row.channel, state: 'dead', at: null });
        w.dead++;
        w.failing = null;
        this.deps.log?.error(
          { channel: ch.channel, event: row.eventId, ticket: row.ticketId, attempts, error: why },
          'notification parked as dead',
        );
        this.failed(row, attempts, true, why);
        continue;
      }
      // Backoff, or the receiver's Retry-After when longer; a receiver may ask for more than maxMs
      // (its line waits for it anyway, in order), up to an hour.
      const delay = retryDelayMs(attempts, ch.retry, {
        retryAfterMs: out.afterMs,
        retryAfterCapMs: RETRY_AFTER_CAP_MS,
      });
      this.deps.queue.markRetry(row.seq, out.status, out.error, after + delay);
      this.deps.log?.warn(
        {
          channel: ch.channel,
          event: row.eventId,
          ticket: row.ticketId,
          attempts,
          retryInMs: delay,
          error: out.error,
        },
        'notification not delivered, will retry',
      );
      this.failed(row, attempts, false, out.error);
    }
  }
}

function newWorker(ch: Channel, settings: string): Worker {
  return {
    ch,
    settings,
    retired: false,
    busy: false,
    abort: new AbortController(),
    attempts: 0,
    failures: 0,
    delivered: 0,
    dead: 0,
    lastError: null,
    lastStatus: null,
    failing: null,
  };
}

/** The channels a config gives, each with its settings as JSON (secrets included: a new one is a change). */
function channelsOf(cfg: NotificationsConfig): Array<{ ch: Channel; settings: string }> {
  return [
    ...cfg.webhooks.map((w) => ({ ch: new WebhookChannel(w) as Channel, settings: JSON.stringify(w) })),
    ...(cfg.email.enabled ? [{ ch: new EmailChannel(cfg.email), settings: JSON.stringify(cfg.email) }] : []),
  ];
}
