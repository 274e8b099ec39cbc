import { DateTime } from 'luxon';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { ReadRateEntry } from '../rules/read-rate.js';
import {
  monthlyReport,
  monthlyReportCsv,
  monthRange,
  type MonthlyReport,
  type ReportAlarm,
} from './report.js';
import { monthlyReportHtml } from './report-html.js';
import { localReportSource, type ReportSource } from './report-source.js';
import type { ReportRecipient } from './report-schema.js';
import { OVERALL, reportDigest, type Delivery, type ReportStore, type StoredReport } from './report-store.js';
import type { Ticket } from './types.js';

/**
 * Sends one stored report to one recipient (notifications/report-delivery.ts: email
 * and webhooks); throws an Error whose message says why it failed.
 */
export interface ReportSender {
  email(to: string, report: StoredReport): Promise<void>;
  webhook(name: string, report: StoredReport): Promise<void>;
  close(): void;
}

export interface ReportScheduleConfig {
  timeZone: string;
  generate: boolean;
  recipients: ReportRecipient[];
  dueDay: number;
  retryMs: number;
  checkMs: number;
  ticketSite: string;
}

/** What a month's report is built from: the same sources as `GET /api/reports/monthly`. */
export interface ReportSources {
  tickets: { reportTickets(to: number): Ticket[] };
  alarmsBetween?: (from: number, to: number) => ReportAlarm[];
  /**
   * Where tickets and alarms are read instead of `tickets` and `alarmsBetween` (cluster mode: the
   * shared view, so the leader reports the whole cluster; absent: the local stores).
   */
  source?: ReportSource;
  /** Read rates of an ended month from InfluxDB's history (absent: none). */
  readRatesEnded?: (from: number, to: number) => Promise<ReadRateEntry[]>;
}

export interface ReportSchedulerDeps {
  store: ReportStore;
  config: ReportScheduleConfig;
  sources: ReportSources;
  sender: ReportSender;
  /** Sites that get a report of their own (the registry's), beside those with tickets or alarms in the month. */
  sites: () => Iterable<string>;
  /** Raises the ticket for a report not delivered in time; returns its id. */
  raiseTicket: (title: string, note: string, site: string) => string;
  log: Logger;
  /** The clock; tests pass their own to close a month (and `tick(now)` takes one too). */
  now?: () => number;
}

const HOUR = 3_600_000;

export interface ReportStatus {
  month: string;
  dueAt: string;
  reports: Array<{ site: string | null; generatedAt: string; sha256: string }>;
  deliveries: Array<{
    recipient: string;
    site: string | null;
    channel: string;
    status: Delivery['status'];
    attempts: number;
    lastError: string | null;
    lastAttemptAt: string | null;
    deliveredAt: string | null;
  }>;
  /** The ticket raised because a delivery missed the due time. */
  overdueTicket: string | null;
}

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/**
 * The monthly service report, generated and delivered without anyone asking: after a month ends
 * (in `workorders.report.timeZone`) its overall report and one per site are built, stored immutably
 * (report-store.ts) and sent to `workorders.report.recipients` (email with the CSV attached and the
 * HTML rendering, signed webhook), retried with back-off until 00:00 of the due day (the 10th). A
 * delivery still missing then is marked failed and one ticket is raised for the month.
 */
export class ReportScheduler implements Component {
  readonly name = 'reports';
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly now: () => number;
  private lastError: string | undefined;
  private lastTickAt: number | undefined;

  constructor(private readonly deps: ReportSchedulerDeps) {
    this.now = deps.now ?? Date.now;
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.tick(), this.deps.config.checkMs);
    this.timer.unref();
    // A gateway started after a month ended catches up at once.
    void this.tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    this.deps.sender.close();
  }

  health(): ComponentHealth {
    // The month the last check looked at (the scheduler's clock, which a test may set).
    const month = this.closedMonth(this.lastTickAt ?? this.now());
    const ds = this.deps.store.deliveries(month);
    const count = (s: Delivery['status']) => ds.filter((d) => d.status === s).length;
    const failed = count('failed');
    // Degraded only when a delivery missed its due time; a check that failed (InfluxDB not answering
    // for the read rates, say) is retried and shown, and becomes a missed delivery if it lasts.
    return {
      state: failed ? 'degraded' : 'ok',
      ...(this.lastError ? { detail: this.lastError } : {}),
      month,
      delivered: count('delivered'),
      pending: count('pending'),
      failed,
      lastCheckAt: iso(this.lastTickAt ?? null),
    };
  }

  /** One look at the clock: generate, deliver, give up at the due time. Never runs twice at once. */
  tick(now = this.now()): Promise<void> {
    if (this.running) return this.running;
    this.running = this.run(now)
      .catch((err: Error) => {
        this.lastError = err.message;
        this.deps.log.error({ err }, 'monthly report check failed');
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** The stored reports, deliveries and overdue ticket of a month (default: the last closed month). */
  status(month = this.closedMonth(this.now())): ReportStatus {
    const { store } = this.deps;
    return {
      month,
      dueAt: new Date(this.dueAt(month)).toISOString(),
      reports: store.list(month).map((r) => ({
        site: r.site || null,
        generatedAt: new Date(r.generatedAt).toISOString(),
        sha256: r.sha256,
      })),
      deliveries: store.deliveries(month).map((d) => ({
        recipient: d.recipient,
        site: d.site || null,
        channel: d.channel,
        status: d.status,
        attempts: d.attempts,
        lastError: d.lastError,
        lastAttemptAt: iso(d.lastAttemptAt),
        deliveredAt: iso(d.deliveredAt),
      })),
      overdueTicket: store.overdueTicket(month)?.ticketId ?? null,
    };
  }

  /** `YYYY-MM` of the month before the one `now` is in. */
  closedMonth(now: number): string {
    return DateTime.fromMillis(now, { zone: this.deps.config.timeZone })
      .startOf('month')
      .minus({ months: 1 })
      .toFormat('yyyy-MM');
  }

  /** 00:00 of the due day of the month after `month`. */
  dueAt(month: string): number {
    const r = monthRange(month, this.deps.config.timeZone);
    if (!r.ok) throw new Error(r.message);
    return DateTime.fromMillis(r.to, { zone: this.deps.config.timeZone })
      .plus({ days: this.deps.config.dueDay - 1 })
      .toMillis();
  }

  private async run(now: number): Promise<void> {
    this.lastTickAt = now;
    const cfg = this.deps.config;
    if (!cfg.generate) return;
    const months = new Set([this.closedMonth(now)]);
    // Months whose deliveries are still open (the gateway was down over a month's end).
    for (const d of this.deps.store.deliveries()) if (d.status === 'pending') months.add(d.month);
    let error: string | undefined;
    for (const month of [...months].sort()) {
      try {
        await this.handle(month, now);
      } catch (err) {
        error = `${month}: ${(err as Error).message}`;
        this.deps.log.warn({ err, month }, 'monthly report: generating or delivering failed; will retry');
      }
    }
    this.lastError = error;
  }

  private async handle(month: string, now: number): Promise<void> {
    const { store, config } = this.deps;
    const dueAt = this.dueAt(month);
    // Deliveries are due only for the month that just ended (a recipient added later waits for the next).
    if (now < dueAt)
      for (const r of config.recipients)
        store.addDelivery({
          month,
          recipient: r.name,
          site: r.site ?? OVERALL,
          channel: r.email !== undefined ? `email:${r.email}` : `webhook:${r.webhook}`,
          status: 'pending',
          attempts: 0,
          lastError: null,
          lastAttemptAt: null,
          nextAt: now,
          deliveredAt: null,
          dueAt,
        });
    await this.generate(month, now);
    const late: Delivery[] = [];
    for (const d of store.deliveries(month)) {
      if (d.status !== 'pending') {
        if (d.status === 'failed') late.push(d);
        continue;
      }
      if (now >= d.dueAt) {
        d.status = 'failed';
        d.lastError = `not delivered by ${new Date(d.dueAt).toISOString()}${d.lastError ? `: ${d.lastError}` : ''}`;
        store.saveDelivery(d);
        late.push(d);
        continue;
      }
      if (now < d.nextAt) continue;
      await this.attempt(d, now);
    }
    if (late.length > 0 && !store.overdueTicket(month)) {
      const id = store.recordOverdue(month, now, () =>
        this.deps.raiseTicket(
          `Monthly service report ${month} not delivered by the due day`,
          late.map((d) => `${d.recipient} (${d.channel}): ${d.lastError ?? 'not delivered'}`).join('\n'),
          config.ticketSite,
        ),
      );
      this.deps.log.warn(
        { month, ticket: id, recipients: late.map((d) => d.recipient) },
        'monthly report overdue',
      );
    }
  }

  /** The overall report and one per site, each stored once. */
  private async generate(month: string, now: number): Promise<void> {
    const { store } = this.deps;
    let overall = store.get(month, OVERALL);
    if (!overall) {
      const r = await this.build(month, null, now);
      overall = this.store(r, OVERALL, now);
    }
    const report = JSON.parse(overall.json) as MonthlyReport;
    const sites = new Set<string>(this.deps.sites());
    for (const s of Object.keys(report.tickets.opened.bySite)) sites.add(s);
    for (const s of Object.keys(report.alarms.bySite)) sites.add(s);
    for (const r of this.deps.config.recipients) if (r.site) sites.add(r.site);
    for (const site of [...sites].sort()) {
      if (site === OVERALL || store.get(month, site)) continue;
      this.store(await this.build(month, site, now), site, now);
    }
  }

  private store(r: MonthlyReport, site: string, now: number) {
    const json = JSON.stringify(r);
    const csv = monthlyReportCsv(r);
    const html = monthlyReportHtml(
      csv,
      `Monthly service report ${r.month}${site ? ` ${site}` : ' (all sites)'}`,
    );
    const rec = {
      month: r.month,
      site,
      generatedAt: now,
      json,
      csv,
      html,
      sha256: reportDigest(json, csv, html),
    };
    this.deps.store.insert(rec);
    this.deps.log.info(
      { month: r.month, site: site || null, sha256: rec.sha256 },
      'monthly report generated',
    );
    return this.deps.store.get(r.month, site) ?? rec;
  }

  private async build(month: string, site: string | null, now: number): Promise<MonthlyReport> {
    const range = monthRange(month, this.deps.config.timeZone);
    if (!range.ok) throw new Error(range.message);
    const src = this.deps.sources;
    // An ended month's read rates come from InfluxDB; if it cannot answer, the report waits for it
    // (it is immutable once stored) and the next check tries again.
    const readRates = src.readRatesEnded ? await src.readRatesEnded(range.from, range.to) : [];
    const from = src.source ?? localReportSource(src.tickets, src.alarmsBetween);
    const r = monthlyReport({
      month,
      timeZone: this.deps.config.timeZone,
      site,
      generatedAt: now,
      tickets: await from.tickets(range.to),
      alarms: await from.alarms(range.from, range.to),
      readRates,
    });
    if ('ok' in r) throw new Error(r.message);
    return r;
  }

  private async attempt(d: Delivery, now: number): Promise<void> {
    const report = this.deps.store.get(d.month, d.site);
    const r = this.deps.config.recipients.find((x) => x.name === d.recipient);
    d.attempts++;
    d.lastAttemptAt = now;
    try {
      if (!report) throw new Error(`GW_ERR_REPORT_MISSING: no ${d.site || 'overall'} report for ${d.month}`);
      if (!r) throw new Error(`GW_ERR_REPORT_RECIPIENT: ${d.recipient} is no longer configured`);
      if (r.email !== undefined) await this.deps.sender.email(r.email, report);
      else await this.deps.sender.webhook(r.webhook!, report);
      d.status = 'delivered';
      d.deliveredAt = this.now();
      d.lastError = null;
      this.deps.log.info({ month: d.month, recipient: d.recipient }, 'monthly report delivered');
    } catch (err) {
      d.lastError = (err as Error).message;
      // Doubling from retryMs, at most an hour apart, never past the due time's check.
      d.nextAt = now + Math.min(HOUR, this.deps.config.retryMs * 2 ** Math.min(d.attempts - 1, 10));
      this.deps.log.warn(
        { month: d.month, recipient: d.recipient, attempts: d.attempts, error: d.lastError },
        'monthly report delivery failed; will retry',
      );
    }
    this.deps.store.saveDelivery(d);
  }
}
