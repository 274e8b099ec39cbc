import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { InfluxConfig } from '../../config/schema.js';
import { RateLimitedLog, type Logger } from '../../core/log.js';
import type { Component, ComponentHealth } from '../../core/types.js';
import type { Outbox, OutboxBatch } from '../../storage/outbox.js';
import { InfluxMetrics, type RequestOutcome } from './metrics.js';
import { halve, pieceBytes, type Piece } from './split.js';
import type { LineTransport } from './transport.js';
import { V1Transport } from './transport-v1.js';
import { V2Transport } from './transport-v2.js';
import { retryDelayMs } from '../../core/backoff.js';
import { classify, type Verdict } from './verdict.js';

/** How often an idle writer looks at the outbox even without a data event (belt and braces). */
const IDLE_POLL_MS = 5_000;

type Rejected = Piece & { reason: string };

/**
 * Drains the durable outbox into InfluxDB, oldest first, one request at a time so the database
 * sees readings in the order they were stored.
 *
 * - A request carries about `batchLines` lines (whole outbox chunks), or every line waiting, up to
 *   `backlogBatchLines`, when more wait (InfluxDB writes large requests more cheaply per line). It
 *   goes out as soon as `batchLines` are waiting, otherwise `flushIntervalMs` after the first of
 *   them was seen.
 * - Lines leave the outbox only once the server confirmed them (2xx) or refused them for good
 *   (400/422, then they are parked with the server's reason and the drain goes on). A 413 sends
 *   the batch in halves. Everything else is retried with capped, jittered backoff honouring
 *   `Retry-After`; bad credentials or a missing bucket keep retrying at the longest backoff and
 *   show the component as down. Nothing is ever dropped here.
 * - v1: a database that does not exist is created (`CREATE DATABASE`) once, then the write is
 *   retried, so a fresh InfluxDB 1.x works without manual setup.
 * - Stopping mid-batch leaves the batch in the outbox; it is sent again on the next start.
 *   Rewriting the same points is harmless: InfluxDB keeps one value per series, field and time.
 */
export class InfluxWriter implements Component {
  readonly name = 'influx';
  private readonly log: Logger;
  private readonly noisy: RateLimitedLog;
  private transport?: LineTransport;
  private metrics?: InfluxMetrics;
  private running = false;
  private unsubscribe?: () => void;
  private readonly waiters = new Set<{ want: 'any' | 'full'; resolve: () => void }>();
  private readonly sleepers = new Set<() => void>();
  private loops: Promise<void>[] = [];
  /** Highest outbox row handed to a request in flight; the next batch starts after it. */
  private claimedUpTo = 0;
  /** Lines in requests in flight (claimed, not yet removed from the outbox). */
  private inFlightLines = 0;
  /** When the writer first saw the lines of a batch that is not full yet. */
  private partialSince?: number;
  private state: 'ok' | 'degraded' | 'down' = 'ok';
  private lastError?: string;
  private failingSince?: number;
  private attempts = 0;
  private triedCreateDb = false;
  private linesWritten = 0;
  private parkedBatches = 0;
  private lastWriteAt?: number;

  constructor(
    private readonly cfg: InfluxConfig,
    private readonly outbox: Outbox,
    log: Logger,
    private readonly registry?: Registry,
  ) {
    this.log = log.child({ module: 'influx' });
    this.noisy = new RateLimitedLog(this.log, 30_000);
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (!this.cfg.enabled) {
      this.log.info('InfluxDB output disabled; readings stay in the outbox');
      return;
    }
    this.transport = this.cfg.api === 'v1' ? new V1Transport(this.cfg) : new V2Transport(this.cfg);
    if (this.registry)
      this.metrics = new InfluxMetrics(this.registry, () => this.outbox.stats().pendingLines);
    this.running = true;
    this.unsubscribe = this.outbox.onData(() => this.onData());
    this.claimedUpTo = 0;
    this.inFlightLines = 0;
    // Requests in flight at once: InfluxDB spreads concurrent writes over its cores (1.6.7 here:
    // 31k lines/s with one request at a time, 50k with two). Rows leave the outbox per batch
    // range, so batches may complete out of order without losing or repeating a line.
    this.loops = Array.from({ length: this.cfg.concurrency }, () => this.run());
    this.log.info(
      { api: this.cfg.api, url: redact(this.cfg.url), batchLines: this.cfg.batchLines },
      'writing to InfluxDB',
    );
  }

  /** Lets the request in flight finish (bounded by timeoutMs), then stops. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.unsubscribe?.();
    for (const w of [...this.waiters]) w.resolve();
    for (const wake of [...this.sleepers]) wake();
    await Promise.all(this.loops);
    this.loops = [];
    this.transport?.close();
    this.metrics?.unregister();
    this.transport = undefined;
    this.metrics = undefined;
  }

  health(): ComponentHealth {
    const extra = {
      api: this.cfg.api,
      pendingLines: this.outbox.stats().pendingLines,
      linesWritten: this.linesWritten,
      parkedBatches: this.parkedBatches,
      lastWriteAt: this.lastWriteAt,
    };
    if (!this.running)
      return { state: 'stopped', ...(this.cfg.enabled ? {} : { detail: 'disabled' }), ...extra };
    if (this.state === 'ok') return { state: 'ok', ...extra };
    return {
      state: this.state,
      detail: this.state === 'down' ? `not writing: ${this.lastError}` : `retrying: ${this.lastError}`,
      failingSince: this.failingSince,
      attempts: this.attempts,
      ...extra,
    };
  }

  private onData(): void {
    if (this.waiters.size === 0) return;
    const full = this.unclaimedLines() >= this.cfg.batchLines;
    for (const w of [...this.waiters]) if (w.want === 'any' || full) w.resolve();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const pending = this.unclaimedLines();
        if (pending === 0) {
          this.partialSince = undefined;
          await this.wait('any', IDLE_POLL_MS);
          continue;
        }
        if (pending < this.cfg.batchLines) {
          const now = Date.now();
          this.partialSince ??= now;
          const left = this.partialSince + this.cfg.flushIntervalMs - now;
          if (left > 0) {
            await this.wait('full', left);
            continue;
          }
        }
        const batch = this.collect();
        if (!batch) {
          await this.wait('any', IDLE_POLL_MS);
          continue;
        }
        // The lines the partial-batch clock was running for are taken. Not reset after the
        // request instead: the clock is shared, and another lane may be timing newer lines by then.
        this.partialSince = undefined;
        this.inFlightLines += batch.lines;
        try {
          await this.deliver(batch);
        } finally {
          this.inFlightLines -= batch.lines;
        }
      } catch (err) {
        // The outbox itself failed (disk, closed database). Say so and try again later.
        this.fail('down', `outbox: ${(err as Error).message}`);
        this.log.error({ err }, 'influx writer: outbox access failed');
        await this.sleep(this.cfg.retry.maxMs);
      }
    }
  }

  /**
   * Committed lines no request has claimed yet. Lines still in the group-commit buffer are not
   * counted: they cannot be read yet, and counting them sent a request of the few that were
   * (a thousand lines of ten thousand waiting) when a commit was slow. onData announces each commit.
   */
  private unclaimedLines(): number {
    return Math.max(0, this.outbox.storedLines() - this.inFlightLines);
  }

  /**
   * The oldest committed rows no request has claimed, up to about batchLines lines (whole chunks,
   * so it may go over). Claiming is synchronous, so two lanes never take the same rows.
   */
  private collect(): OutboxBatch | null {
    // Nothing in flight: nothing is claimed (and ids are only compared while rows are claimed).
    if (this.inFlightLines === 0) this.claimedUpTo = 0;
    // Whatever waits goes out together, up to backlogBatchLines: lines pile up only while InfluxDB
    // is the slower side, and it writes a large request much more cheaply per line.
    const { batchLines, backlogBatchLines } = this.cfg;
    const max = Math.max(batchLines, Math.min(backlogBatchLines, this.unclaimedLines()));
    const first = this.outbox.read(max, this.claimedUpTo);
    if (!first) return null;
    let { lines, bytes, lastId } = first;
    const parts = [...first.parts];
    while (lines < max) {
      const next = this.outbox.read(max - lines, lastId, true);
      if (!next) break;
      for (const p of next.parts) parts.push(p);
      lines += next.lines;
      bytes += next.bytes;
      lastId = next.lastId;
    }
    this.claimedUpTo = lastId;
    return { firstId: first.firstId, lastId, lines, bytes, parts };
  }

  private async deliver(batch: OutboxBatch): Promise<void> {
    const queue: Piece[] = [{ parts: batch.parts, lines: batch.lines }];
    const rejected: Rejected[] = [];
    let written = 0;
    while (queue.length) {
      const piece = queue[0]!;
      const verdict = await this.send(piece);
      // Stopped while retrying: the rows stay in the outbox for the next start.
      if (!verdict) return;
      queue.shift();
      if (verdict.kind === 'ok') {
        written += piece.lines;
      } else if (verdict.kind === 'split') {
        const halves = halve(piece);
        if (halves) {
          this.log.info(
            { lines: piece.lines, bytes: pieceBytes(piece) },
            'request too large; sending it in halves',
          );
          queue.unshift(...halves);
        } else {
          rejected.push({ ...piece, reason: verdict.reason });
        }
      } else if (verdict.kind === 'park') {
        rejected.push({ ...piece, reason: verdict.reason });
      }
    }
    if (rejected.length === 0) {
      this.outbox.remove(batch);
      this.observeLag(batch.parts);
    } else {
      // Every piece of the batch has been answered, so removing its rows (which park does) loses
      // nothing: the accepted pieces are in InfluxDB, the refused ones go to the parked table.
      for (const r of rejected) {
        this.outbox.park(
          { firstId: batch.firstId, lastId: batch.lastId, lines: r.lines, parts: r.parts },
          r.reason,
        );
        this.parkedBatches++;
        this.metrics?.parked.inc();
        this.metrics?.parkedLines.inc(r.lines);
        this.log.warn({ lines: r.lines, reason: r.reason }, 'InfluxDB refused a batch for good; parked it');
      }
      this.fail('degraded', `batch parked: ${rejected[rejected.length - 1]!.reason}`, false);
    }
    if (written) {
      this.linesWritten += written;
      this.metrics?.linesWritten.inc(written);
    }
  }

  /** Records the delivery lag of the first and last line (their timestamps end each line). */
  private observeLag(parts: Buffer[]): void {
    const m = this.metrics;
    const head = parts[0];
    const tail = parts[parts.length - 1];
    if (!m || !head || !tail || tail.length < 2) return;
    const now = Date.now();
    const nl = head.indexOf(0x0a);
    const first = Number(head.toString('latin1', head.lastIndexOf(0x20, nl) + 1, nl));
    const last = Number(
      tail.toString('latin1', tail.lastIndexOf(0x20, tail.length - 2) + 1, tail.length - 1),
    );
    if (Number.isFinite(first)) m.deliveryLag.observe(Math.max(0, now - first) / 1000);
    if (Number.isFinite(last) && (parts.length > 1 || nl !== head.length - 1))
      m.deliveryLag.observe(Math.max(0, now - last) / 1000);
  }

  /** Sends one piece until the server gives a final answer; undefined if stopped meanwhile. */
  private async send(piece: Piece): Promise<Verdict | undefined> {
    const transport = this.transport!;
    while (this.running) {
      const t0 = performance.now();
      let verdict: Verdict;
      let outcome: RequestOutcome;
      try {
        const res = await transport.write(piece.parts);
        verdict = classify(res.status, res.body, res.retryAfter);
        outcome = verdict.kind;
      } catch (err) {
        verdict = { kind: 'retry', reason: networkReason(err) };
        outcome = 'network';
      }
      this.metrics?.latency.observe((performance.now() - t0) / 1000);
      this.metrics?.requests.inc({ outcome });
      switch (verdict.kind) {
        case 'ok':
          this.recovered();
          return verdict;
        case 'split':
        case 'park':
          return verdict;
        case 'retry': {
          this.attempts++;
          const delay = retryDelayMs(this.attempts, this.cfg.retry, { retryAfterMs: verdict.retryAfterMs });
          this.fail('degraded', verdict.reason);
          this.noisy.warn(
            'retry',
            { reason: verdict.reason, attempt: this.attempts, delayMs: delay, lines: piece.lines },
            'InfluxDB write failed; retrying',
          );
          await this.sleep(delay);
          break;
        }
        case 'alarm': {
          if (verdict.missingDatabase && transport.createDatabase && !this.triedCreateDb) {
            this.triedCreateDb = true;
            if (await this.createDatabase(transport)) continue;
          }
          this.attempts++;
          this.fail('down', verdict.reason);
          this.noisy.warn(
            'alarm',
            { reason: verdict.reason, attempt: this.attempts, delayMs: this.cfg.retry.maxMs },
            'InfluxDB refuses writes (credentials, database or bucket?); retrying at the longest backoff',
          );
          await this.sleep(this.cfg.retry.maxMs);
          break;
        }
      }
    }
    return undefined;
  }

  private async createDatabase(transport: LineTransport): Promise<boolean> {
    try {
      const res = await transport.createDatabase!();
      if (res.status >= 200 && res.status < 300) {
        this.log.info({ db: this.cfg.db }, 'database did not exist; created it');
        return true;
      }
      this.log.warn(
        { db: this.cfg.db, status: res.status, body: res.body.slice(0, 500) },
        'could not create database',
      );
    } catch (err) {
      this.log.warn({ db: this.cfg.db, err: networkReason(err) }, 'could not create database');
    }
    return false;
  }

  private fail(state: 'degraded' | 'down', reason: string, retrying = true): void {
    if (this.state === 'ok' && retrying) this.log.warn({ reason }, 'InfluxDB writes failing');
    this.failingSince ??= Date.now();
    this.state = state;
    this.lastError = reason;
  }

  private recovered(): void {
    if (this.state !== 'ok' && this.failingSince !== undefined && this.attempts > 0) {
      this.log.info(
        { afterMs: Date.now() - this.failingSince, attempts: this.attempts },
        'InfluxDB writes work again',
      );
    }
    this.state = 'ok';
    this.lastError = undefined;
    this.failingSince = undefined;
    this.attempts = 0;
    this.triedCreateDb = false;
    this.lastWriteAt = Date.now();
  }

  private wait(want: 'any' | 'full', ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(entry);
        resolve();
      };
      const entry = { want, resolve: done };
      this.waiters.add(entry);
    });
  }

  /** A backoff that stop() cuts short. */
  private sleep(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), ms);
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      this.sleepers.add(done);
    });
  }
}

function networkReason(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return [e.code, e.message].filter(Boolean).join(': ') || String(err);
}

/** A URL without its credentials, for logs and health. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}
