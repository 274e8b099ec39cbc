import type { Statement } from 'better-sqlite3';
import type { Db, Migration } from '../storage/db.js';
import { clockPaused, type HistoryEntry, type Ticket, type TicketStatus } from './types.js';

/**
 * Nothing is deleted: tickets and every line of their audit trail are records ("不得丢失").
 * workorders.db also holds the notification queue (NOTIFY_MIGRATIONS, versions 3 and 4, owned by
 * notifications/queue.ts) so a notification commits with its ticket change; the composition root opens
 * the file with both lists. Both share one version sequence: a new migration takes the next free number.
 */
export const WORKORDER_MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE tickets (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, site TEXT NOT NULL, device TEXT, rule TEXT,
        status TEXT NOT NULL, priority TEXT NOT NULL, created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL, resolved_at INTEGER, body TEXT NOT NULL
      );
      CREATE INDEX tickets_status ON tickets(status);
      CREATE INDEX tickets_device_rule ON tickets(site, device, rule, resolved_at);
      CREATE TABLE ticket_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id TEXT NOT NULL, ts INTEGER NOT NULL,
        actor TEXT NOT NULL, action TEXT NOT NULL, from_status TEXT, to_status TEXT NOT NULL,
        note TEXT, data TEXT
      );
      CREATE INDEX ticket_history_ticket ON ticket_history(ticket_id, seq);
    `,
  },
  {
    version: 2,
    // Preventive maintenance: the next due time of each schedule and asset.
    sql: `CREATE TABLE pm_next (key TEXT PRIMARY KEY, next_due_at INTEGER NOT NULL);`,
  },
  // Versions 3 and 4: the notification queue and its archive (NOTIFY_MIGRATIONS).
  {
    version: 5,
    // Columns for the list's filters (assignee, overdue) and for polling by change time.
    sql: `
      ALTER TABLE tickets ADD COLUMN assignee TEXT;
      ALTER TABLE tickets ADD COLUMN responded_at INTEGER;
      ALTER TABLE tickets ADD COLUMN response_due_at INTEGER;
      ALTER TABLE tickets ADD COLUMN resolve_due_at INTEGER;
      ALTER TABLE tickets ADD COLUMN paused_since INTEGER;
      UPDATE tickets SET
        assignee = json_extract(body, '$.assignee'),
        responded_at = json_extract(body, '$.respondedAt'),
        response_due_at = json_extract(body, '$.responseDueAt'),
        resolve_due_at = json_extract(body, '$.resolveDueAt'),
        paused_since = CASE WHEN json_extract(body, '$.onHold') = 1
          AND COALESCE(json_extract(body, '$.clockPaused'), 1) = 1 THEN json_extract(body, '$.heldSince') END;
      CREATE INDEX tickets_updated ON tickets(updated_at, seq);
      CREATE INDEX tickets_assignee ON tickets(assignee);
    `,
  },
];

export interface TicketFilter {
  status?: TicketStatus;
  site?: string;
  device?: string;
  priority?: string;
  assignee?: string;
  /** Changed at or after this instant (epoch ms); the answer is then oldest change first. */
  updatedSince?: number;
  /**
   * true: a deadline of the current cycle has passed without its step (no response by the response
   * deadline; unresolved past the resolution deadline, unless its clock was paused before then);
   * false: none has. Judged at `now`.
   */
  overdue?: boolean;
  /** The instant `overdue` is judged at. */
  now: number;
  offset?: number;
  limit: number;
  /** With each ticket's audit trail (one more query for the page). */
  withHistory?: boolean;
}

interface HistoryRow {
  ts: number;
  actor: string;
  action: HistoryEntry['action'];
  from_status: TicketStatus | null;
  to_status: TicketStatus;
  note: string | null;
  data: string | null;
}

/**
 * Tickets as rows: the queried columns beside the whole ticket as JSON (its shape grows without
 * migrations), and the audit trail one row per entry, appended only.
 */
export class TicketStore {
  private readonly insertTicket: Statement;
  private readonly updateTicket: Statement;
  private readonly insertHistory: Statement;

  constructor(private readonly db: Db) {
    // Prepared once: every committed change writes through these.
    this.insertTicket = db.prepare(
      `INSERT INTO tickets (id, seq, site, device, rule, status, priority, created_at, updated_at, resolved_at,
         assignee, responded_at, response_due_at, resolve_due_at, paused_since, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.updateTicket = db.prepare(
      `UPDATE tickets SET status = ?, priority = ?, updated_at = ?, resolved_at = ?, assignee = ?, responded_at = ?,
         response_due_at = ?, resolve_due_at = ?, paused_since = ?, body = ? WHERE id = ?`,
    );
    this.insertHistory = db.prepare(
      `INSERT INTO ticket_history (ticket_id, ts, actor, action, from_status, to_status, note, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /**
   * A transaction on disk when it returns, whatever the connection's `synchronous` setting: what is
   * answered as done to a person (a ticket action, a ticket raised by hand). Changes made from alarm
   * events and timers commit with `tx`: with workorders.db at synchronous=NORMAL a ticket an alarm
   * raised is raised again at start if a power cut took it (ADR 0091).
   */
  txDurable<T>(fn: () => T): T {
    return this.durably(() => this.tx(fn));
  }

  /**
   * Runs `fn` with every commit on disk when it returns (synchronous=FULL for its duration). SQLite
   * fixes the safety level when a transaction begins, so a caller that opens its own transaction
   * around a ticket action (the inbound webhook, with its idempotency key) wraps it in this; a call
   * nested inside a transaction leaves the level to the outermost one.
   */
  durably<T>(fn: () => T): T {
    if (this.db.inTransaction || (this.db.pragma('synchronous', { simple: true }) as number) >= 2)
      return fn();
    this.db.pragma('synchronous = FULL');
    try {
      return fn();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** Whether any ticket, closed or not, of that site and rule lists the alarm. */
  listsAlarm(site: string, rule: string, alarmId: string): boolean {
    const r = this.db
      .prepare(
        `SELECT 1 FROM tickets t, json_each(t.body, '$.alarmIds') j
         WHERE t.site = ? AND t.rule = ? AND j.value = ? LIMIT 1`,
      )
      .get(site, rule, alarmId);
    return r !== undefined;
  }

  nextSeq(): number {
    const r = this.db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM tickets').get() as { n: number };
    return r.n;
  }

  /** Writes the ticket and the entries of its history not stored yet (the last `newEntries`). */
  save(t: Ticket, seq: number | null, newEntries: number): void {
    const { history, ...body } = t;
    const cols = [
      t.assignee,
      t.respondedAt,
      t.responseDueAt,
      t.resolveDueAt,
      clockPaused(t) ? (t.heldSince ?? null) : null,
    ];
    if (seq !== null) {
      this.insertTicket.run(
        t.id,
        seq,
        t.site,
        t.device,
        t.rule,
        t.status,
        t.priority,
        t.createdAt,
        t.updatedAt,
        t.resolvedAt,
        ...cols,
        JSON.stringify(body),
      );
    } else {
      this.updateTicket.run(
        t.status,
        t.priority,
        t.updatedAt,
        t.resolvedAt,
        ...cols,
        JSON.stringify(body),
        t.id,
      );
    }
    for (const h of history.slice(history.length - newEntries))
      this.insertHistory.run(
        t.id,
        h.ts,
        h.actor,
        h.action,
        h.from,
        h.to,
        h.note,
        h.data ? JSON.stringify(h.data) : null,
      );
  }

  /**
   * Writes a ticket taken over from another cluster instance (ADR 0160) as it comes, with its whole
   * audit trail: a copy this file had from an earlier time it held the ticket is replaced.
   */
  replace(t: Ticket): void {
    const seq = Number(t.id.replace(/^\D+/, '')) || 0;
    this.db.prepare('DELETE FROM ticket_history WHERE ticket_id = ?').run(t.id);
    this.db.prepare('DELETE FROM tickets WHERE id = ?').run(t.id);
    this.save(t, seq, t.history.length);
  }

  get(id: string): Ticket | undefined {
    const r = this.db.prepare('SELECT body FROM tickets WHERE id = ?').get(id) as
      { body: string } | undefined;
    return r ? this.withHistory(JSON.parse(r.body) as Omit<Ticket, 'history'>) : undefined;
  }

  /** Tickets not closed, with their history: what the service keeps in memory. */
  unclosed(): Ticket[] {
    const rows = this.db.prepare("SELECT body FROM tickets WHERE status != 'closed' ORDER BY seq").all() as {
      body: string;
    }[];
    return rows.map((r) => this.withHistory(JSON.parse(r.body) as Omit<Ticket, 'history'>));
  }

  /** One page of the tickets matching the filter, and how many match in all. */
  page(f: TicketFilter): { tickets: Ticket[]; total: number } {
    const where: string[] = [];
    const args: unknown[] = [];
    for (const [col, v] of [
      ['status', f.status],
      ['site', f.site],
      ['device', f.device],
      ['priority', f.priority],
      ['assignee', f.assignee],
    ] as const) {
      if (v === undefined) continue;
      where.push(`${col} = ?`);
      args.push(v);
    }
    if (f.updatedSince !== undefined) {
      where.push('updated_at >= ?');
      args.push(f.updatedSince);
    }
    if (f.overdue !== undefined) {
      const overdue = `(status NOT IN ('resolved', 'closed') AND (
        (responded_at IS NULL AND response_due_at <= ?)
        OR (resolve_due_at <= ? AND (paused_since IS NULL OR paused_since > resolve_due_at))))`;
      where.push(f.overdue ? overdue : `NOT ${overdue}`);
      args.push(f.now, f.now);
    }
    const cond = where.length ? `WHERE ${where.join(' AND ')}` : '';
    // Polling for changes reads oldest change first, so a client can carry on from the last it saw.
    const order = f.updatedSince !== undefined ? 'updated_at ASC, seq ASC' : 'seq DESC';
    const rows = this.db
      .prepare(`SELECT body FROM tickets ${cond} ORDER BY ${order} LIMIT ? OFFSET ?`)
      .all(...args, f.limit, f.offset ?? 0) as { body: string }[];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM tickets ${cond}`).get(...args) as { n: number })
      .n;
    const tickets = rows.map((r) => ({ ...(JSON.parse(r.body) as Omit<Ticket, 'history'>), history: [] }));
    if (f.withHistory && tickets.length > 0) {
      const byId = new Map<string, Ticket>(tickets.map((t) => [t.id, t]));
      const hist = this.db
        .prepare(
          `SELECT * FROM ticket_history WHERE ticket_id IN (${tickets.map(() => '?').join(',')}) ORDER BY seq`,
        )
        .all(...byId.keys()) as (HistoryRow & { ticket_id: string })[];
      for (const h of hist) byId.get(h.ticket_id)?.history.push(toEntry(h));
    }
    return { tickets, total };
  }

  /**
   * Tickets created before `to` with only the `escalate` and `close` lines of their history: what
   * the monthly report reads (two queries, whatever the number of tickets).
   */
  createdBefore(to: number): Ticket[] {
    const rows = this.db.prepare('SELECT body FROM tickets WHERE created_at < ? ORDER BY seq').all(to) as {
      body: string;
    }[];
    const tickets = rows.map((r) => ({ ...(JSON.parse(r.body) as Omit<Ticket, 'history'>), history: [] }));
    const byId = new Map<string, Ticket>(tickets.map((t) => [t.id, t]));
    const hist = this.db
      .prepare(
        `SELECT h.* FROM ticket_history h JOIN tickets t ON t.id = h.ticket_id
         WHERE t.created_at < ? AND h.action IN ('escalate', 'close') ORDER BY h.seq`,
      )
      .all(to) as (HistoryRow & { ticket_id: string })[];
    for (const h of hist) byId.get(h.ticket_id)?.history.push(toEntry(h));
    return tickets;
  }

  /** Preventive-maintenance tickets (rule `pm:*`) with an occurrence due in `[from, to)`. */
  maintenanceDue(from: number, to: number): Ticket[] {
    const rows = this.db.prepare("SELECT body FROM tickets WHERE rule LIKE 'pm:%' ORDER BY seq").all() as {
      body: string;
    }[];
    return rows
      .map((r) => ({ ...(JSON.parse(r.body) as Omit<Ticket, 'history'>), history: [] }))
      .filter((t) => t.maintenance && t.maintenance.dueAt >= from && t.maintenance.dueAt < to);
  }

  /** The most recently resolved ticket of a device and rule resolved at or after `since`. */
  lastResolved(site: string, device: string, rule: string, since: number): string | undefined {
    const r = this.db
      .prepare(
        `SELECT id FROM tickets WHERE site = ? AND device = ? AND rule = ? AND resolved_at >= ?
         ORDER BY resolved_at DESC LIMIT 1`,
      )
      .get(site, device, rule, since) as { id: string } | undefined;
    return r?.id;
  }

  private withHistory(body: Omit<Ticket, 'history'>): Ticket {
    const rows = this.db
      .prepare('SELECT * FROM ticket_history WHERE ticket_id = ? ORDER BY seq')
      .all(body.id) as HistoryRow[];
    return { ...body, history: rows.map(toEntry) };
  }
}

function toEntry(h: HistoryRow): HistoryEntry {
  const e: HistoryEntry = {
    ts: h.ts,
    actor: h.actor,
    action: h.action,
    from: h.from_status,
    to: h.to_status,
    note: h.note,
  };
  if (h.data !== null) e.data = JSON.parse(h.data) as Record<string, unknown>;
  return e;
}
