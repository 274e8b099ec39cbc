import { createHash } from 'node:crypto';
import type { Db } from '../storage/db.js';

/**
 * The monthly reports as generated, and their deliveries, in workorders.db. A stored report is
 * immutable: written once, never updated or deleted (a trigger refuses both), and its sha256 covers
 * exactly the JSON, CSV and HTML stored, so a copy mailed or posted can be checked against it.
 *
 * The tables are created here with IF NOT EXISTS rather than as a numbered migration of
 * WORKORDER_MIGRATIONS, so this part does not compete for the next migration number with other
 * changes to the ticket tables.
 */
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS monthly_report (
    month TEXT NOT NULL, site TEXT NOT NULL, generated_at INTEGER NOT NULL,
    json TEXT NOT NULL, csv TEXT NOT NULL, html TEXT NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (month, site)
  );
  CREATE TRIGGER IF NOT EXISTS monthly_report_immutable BEFORE UPDATE ON monthly_report
    BEGIN SELECT RAISE(ABORT, 'a generated monthly report is immutable'); END;
  CREATE TRIGGER IF NOT EXISTS monthly_report_kept BEFORE DELETE ON monthly_report
    BEGIN SELECT RAISE(ABORT, 'a generated monthly report is kept'); END;
  CREATE TABLE IF NOT EXISTS monthly_report_delivery (
    month TEXT NOT NULL, recipient TEXT NOT NULL, site TEXT NOT NULL, channel TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, last_error TEXT, last_attempt_at INTEGER,
    next_at INTEGER NOT NULL, delivered_at INTEGER, due_at INTEGER NOT NULL,
    PRIMARY KEY (month, recipient)
  );
  CREATE TABLE IF NOT EXISTS monthly_report_overdue (
    month TEXT PRIMARY KEY, ticket_id TEXT NOT NULL, raised_at INTEGER NOT NULL
  );
`;

/** `''` is the overall report (every site). */
export const OVERALL = '';

export interface StoredReport {
  month: string;
  /** `''`: the overall report. */
  site: string;
  generatedAt: number;
  json: string;
  csv: string;
  html: string;
  sha256: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface Delivery {
  month: string;
  recipient: string;
  site: string;
  /** `email:<address>` or `webhook:<name>`. */
  channel: string;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  lastAttemptAt: number | null;
  nextAt: number;
  deliveredAt: number | null;
  dueAt: number;
}

/** The digest of a report's three renderings, in the order stored. */
export function reportDigest(json: string, csv: string, html: string): string {
  const h = createHash('sha256');
  for (const part of [json, csv, html]) h.update(`${Buffer.byteLength(part)}\n`).update(part);
  return h.digest('hex');
}

export class ReportStore {
  constructor(private readonly db: Db) {
    db.exec(SCHEMA);
  }

  get(month: string, site: string): StoredReport | undefined {
    const r = this.db
      .prepare(
        'SELECT month, site, generated_at, json, csv, html, sha256 FROM monthly_report WHERE month = ? AND site = ?',
      )
      .get(month, site) as
      | {
          month: string;
          site: string;
          generated_at: number;
          json: string;
          csv: string;
          html: string;
          sha256: string;
        }
      | undefined;
    return r && { ...r, generatedAt: r.generated_at };
  }

  /** Stores a report once; a second report for the same month and site is ignored (the first stays). */
  insert(r: StoredReport): boolean {
    const res = this.db
      .prepare(
        'INSERT OR IGNORE INTO monthly_report (month, site, generated_at, json, csv, html, sha256) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(r.month, r.site, r.generatedAt, r.json, r.csv, r.html, r.sha256);
    return res.changes === 1;
  }

  /** The reports of a month (or every month), without their bodies. */
  list(month?: string): Array<Omit<StoredReport, 'json' | 'csv' | 'html'>> {
    const sql =
      'SELECT month, site, generated_at AS generatedAt, sha256 FROM monthly_report' +
      (month ? ' WHERE month = ?' : '') +
      ' ORDER BY month DESC, site';
    const stmt = this.db.prepare(sql);
    return (month ? stmt.all(month) : stmt.all()) as Array<Omit<StoredReport, 'json' | 'csv' | 'html'>>;
  }

  deliveries(month?: string): Delivery[] {
    const sql =
      `SELECT month, recipient, site, channel, status, attempts, last_error AS lastError,
         last_attempt_at AS lastAttemptAt, next_at AS nextAt, delivered_at AS deliveredAt, due_at AS dueAt
       FROM monthly_report_delivery` +
      (month ? ' WHERE month = ?' : '') +
      ' ORDER BY month DESC, recipient';
    const stmt = this.db.prepare(sql);
    return (month ? stmt.all(month) : stmt.all()) as Delivery[];
  }

  /** Creates the delivery row if it does not exist yet. */
  addDelivery(d: Delivery): void {
    this.db
      .prepare(
        `INSERT OR IGNORE INTO monthly_report_delivery
           (month, recipient, site, channel, status, attempts, last_error, last_attempt_at, next_at, delivered_at, due_at)
         VALUES (@month, @recipient, @site, @channel, @status, @attempts, @lastError, @lastAttemptAt, @nextAt, @deliveredAt, @dueAt)`,
      )
      .run(d);
  }

  saveDelivery(d: Delivery): void {
    this.db
      .prepare(
        `UPDATE monthly_report_delivery SET status = @status, attempts = @attempts, last_error = @lastError,
           last_attempt_at = @lastAttemptAt, next_at = @nextAt, delivered_at = @deliveredAt
         WHERE month = @month AND recipient = @recipient`,
      )
      .run(d);
  }

  overdueTicket(month: string): { ticketId: string; raisedAt: number } | undefined {
    const r = this.db
      .prepare(
        'SELECT ticket_id AS ticketId, raised_at AS raisedAt FROM monthly_report_overdue WHERE month = ?',
      )
      .get(month) as { ticketId: string; raisedAt: number } | undefined;
    return r;
  }

  /** Runs `raise` (which creates the ticket) and records it, once per month. */
  recordOverdue(month: string, raisedAt: number, raise: () => string): string {
    const have = this.overdueTicket(month);
    if (have) return have.ticketId;
    const id = raise();
    this.db
      .prepare('INSERT OR IGNORE INTO monthly_report_overdue (month, ticket_id, raised_at) VALUES (?, ?, ?)')
      .run(month, id, raisedAt);
    return id;
  }
}
