import { randomUUID } from 'node:crypto';
import type { Db, Migration } from '../storage/db.js';
import { ticketToJson, type TicketEvent } from '../workorders/types.js';
import type { NotifyEventType } from './schema.js';
import type { Language } from '../workorders/types.js';
import { eventText } from './text.js';
import type { NotifyPayload } from './payload.js';

export type { NotifyPayload };

/**
 * The notification queue, in workorders.db (migration 3, NOTIFY_MIGRATIONS below): one row per event
 * and channel, written in the same transaction as the ticket change, so a committed change always has
 * its notifications and a crash loses none. Rows are never deleted while undelivered.
 */
export const NOTIFY_MIGRATION_SQL = `
  CREATE TABLE notify_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    event TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    target TEXT,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    queued_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    delivered_at INTEGER,
    UNIQUE (channel, event_id)
  );
  CREATE INDEX notify_queue_channel ON notify_queue(channel, state, seq);
  CREATE TABLE notify_inbound (
    idempotency_key TEXT PRIMARY KEY, received_at INTEGER NOT NULL, ticket_id TEXT NOT NULL, action TEXT NOT NULL
  );
`;

/**
 * Migration 4: the archive. Delivered rows leave the queue after `retentionDays` for `notify_sent`,
 * and inbound idempotency keys after `keepKeysHours` for `notify_inbound_seen`: the queue and its
 * indexes stay as small as the traffic in flight, and the record of what was sent and received stays.
 * Nothing is deleted from the archive.
 */
export const NOTIFY_ARCHIVE_SQL = `
  CREATE TABLE notify_sent (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    event TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body TEXT NOT NULL,
    target TEXT,
    attempts INTEGER NOT NULL,
    last_status INTEGER,
    delivered_at INTEGER,
    archived_at INTEGER NOT NULL
  );
  CREATE INDEX notify_sent_ticket ON notify_sent(ticket_id, seq);
  CREATE TABLE notify_inbound_seen (
    idempotency_key TEXT NOT NULL, received_at INTEGER NOT NULL, ticket_id TEXT NOT NULL,
    action TEXT NOT NULL, archived_at INTEGER NOT NULL
  );
`;

/**
 * The notifications' part of workorders.db's migrations, opened together with WORKORDER_MIGRATIONS
 * (`openDb(file, [...WORKORDER_MIGRATIONS, ...NOTIFY_MIGRATIONS])`): the versions are those the
 * queue has always had, so existing databases see no change.
 */
export const NOTIFY_MIGRATIONS: Migration[] = [
  // Ticket notifications (webhooks, email) queued with the ticket change, and inbound idempotency keys.
  { version: 3, sql: NOTIFY_MIGRATION_SQL },
  // Delivered notifications and old inbound keys move to an archive instead of being deleted.
  { version: 4, sql: NOTIFY_ARCHIVE_SQL },
];

/**
 * `taken` (cluster mode, ADR 0179): left undelivered here because the cluster's shared copy shows
 * another member took it over (or it was delivered): not this member's to send any more.
 */
export type RowState = 'pending' | 'delivered' | 'dead' | 'taken';

/** A queued notification as another instance queued it (what `adopt` takes). */
export interface AdoptedRow {
  eventId: string;
  channel: string;
  event: string;
  ticketId: string;
  createdAt: number;
  body: string;
  target: string | null;
}

export interface QueueRow {
  seq: number;
  eventId: string;
  channel: string;
  event: NotifyEventType;
  ticketId: string;
  createdAt: number;
  /** The payload as sent, fixed when the event was queued. */
  body: string;
  /** Channel-specific (email: the recipients), JSON. */
  target: string | null;
  state: RowState;
  attempts: number;
  nextAt: number;
  /** When the row (re)joined the line: the age limit counts from here, so an admin retry gets a fresh one. */
  queuedAt: number;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: number | null;
}

interface RawRow {
  seq: number;
  event_id: string;
  channel: string;
  event: NotifyEventType;
  ticket_id: string;
  created_at: number;
  body: string;
  target: string | null;
  state: RowState;
  attempts: number;
  next_at: number;
  queued_at: number;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

const toRow = (r: RawRow): QueueRow => ({
  seq: r.seq,
  eventId: r.event_id,
  channel: r.channel,
  event: r.event,
  ticketId: r.ticket_id,
  createdAt: r.created_at,
  body: r.body,
  target: r.target,
  state: r.state,
  attempts: r.attempts,
  nextAt: r.next_at,
  queuedAt: r.queued_at,
  lastStatus: r.last_status,
  lastError: r.last_error,
  deliveredAt: r.delivered_at,
});

export function payloadOf(id: string, e: TicketEvent, now: number, language: Language = 'en'): NotifyPayload {
  const p: NotifyPayload = {
    id,
    type: `ticket.${e.type}`,
    occurredAt: new Date(now).toISOString(),
    ticket: ticketToJson(e.ticket, false),
    changes: e.entries.map((h) => ({ ...h, ts: new Date(h.ts).toISOString() })),
  };
  const m = eventText(p, language);
  p.language = language;
  p.text = { subject: m.subject, body: m.text };
  return p;
}

/** One channel's say on an event: deliver it (with a target, for email) or not. */
export interface ChannelRoute {
  channel: string;
  wants(e: TicketEvent): { target?: unknown; language?: Language } | false;
}

export interface ChannelStats {
  pending: number;
  dead: number;
  delivered: number;
  /** Dropped here because another member took them over (cluster mode, ADR 0179). */
  taken: number;
  oldestPendingAt: number | null;
}

/** The WHERE clause of a listing by channel and ticket (each optional), after any conditions given. */
function filters(
  channel: string | undefined,
  ticketId: string | undefined,
  where: string[] = [],
  args: unknown[] = [],
): { where: string; args: unknown[] } {
  for (const [col, v] of [
    ['channel', channel],
    ['ticket_id', ticketId],
  ] as const) {
    if (v === undefined) continue;
    where.push(`${col} = ?`);
    args.push(v);
  }
  return { where: where.length ? `WHERE ${where.join(' AND ')}` : '', args };
}

export class NotifyQueue {
  constructor(private readonly db: Db) {}

  get database(): Db {
    return this.db;
  }

  /**
   * Queues one row per (event, channel that wants it). Call inside the ticket change's transaction.
   * `seqs`, given, receives the new rows' numbers (cluster mode copies them to the shared view).
   */
  enqueue(
    events: readonly TicketEvent[],
    routes: readonly ChannelRoute[],
    now: number,
    seqs?: number[],
  ): number {
    if (routes.length === 0) return 0;
    const ins = this.db.prepare(
      `INSERT INTO notify_queue (event_id, channel, event, ticket_id, created_at, body, target, next_at, queued_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    let n = 0;
    for (const e of events) {
      // A change without an audit line (the readings snapshot filled in later) is not news to a receiver.
      if (e.entries.length === 0) continue;
      // One id per event, the same on every channel: a receiver fed by two channels sees it once.
      const id = `evt_${randomUUID()}`;
      // One body per language the receivers read (mostly one).
      const bodies = new Map<Language, string>();
      for (const r of routes) {
        const w = r.wants(e);
        if (w === false) continue;
        const lang = w.language ?? 'en';
        let body = bodies.get(lang);
        if (body === undefined) bodies.set(lang, (body = JSON.stringify(payloadOf(id, e, now, lang))));
        const res = ins.run(
          id,
          r.channel,
          `ticket.${e.type}`,
          e.ticket.id,
          now,
          body,
          w.target === undefined ? null : JSON.stringify(w.target),
          now,
          now,
        );
        seqs?.push(Number(res.lastInsertRowid));
        n++;
      }
    }
    return n;
  }

  /** The rows of these numbers that exist (committed, or in the caller's transaction). */
  bySeq(seqs: readonly number[]): QueueRow[] {
    const out: QueueRow[] = [];
    const get = this.db.prepare('SELECT * FROM notify_queue WHERE seq = ?');
    for (const seq of seqs) {
      const r = get.get(seq) as RawRow | undefined;
      if (r) out.push(toRow(r));
    }
    return out;
  }

  /**
   * Cluster mode (ADR 0160 addendum 2): queues rows another instance queued and never delivered,
   * with their event id and body, to be delivered here. A row already here (same channel and event
   * id) is left as it is, unless this member had let it go as `taken` (ADR 0179): the shared copy
   * hands it back now, so it is back in line. Returns how many were added or put back.
   */
  adopt(rows: readonly AdoptedRow[], now: number): number {
    const ins = this.db.prepare(
      `INSERT INTO notify_queue (event_id, channel, event, ticket_id, created_at, body, target, next_at, queued_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (channel, event_id) DO UPDATE SET state = 'pending', attempts = 0,
         next_at = excluded.next_at, queued_at = excluded.queued_at
       WHERE notify_queue.state = 'taken'`,
    );
    return this.db.transaction(() => {
      let n = 0;
      for (const r of rows)
        n += ins.run(
          r.eventId,
          r.channel,
          r.event,
          r.ticketId,
          r.createdAt,
          r.body,
          r.target,
          now,
          now,
        ).changes;
      return n;
    })();
  }

  /** The oldest pending row of a channel: delivery is in order, one at a time, per channel. */
  head(channel: string): QueueRow | undefined {
    const r = this.db
      .prepare("SELECT * FROM notify_queue WHERE channel = ? AND state = 'pending' ORDER BY seq LIMIT 1")
      .get(channel) as RawRow | undefined;
    return r ? toRow(r) : undefined;
  }

  markDelivered(seq: number, status: number | null, now: number): void {
    this.db
      .prepare(
        "UPDATE notify_queue SET state = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL, delivered_at = ? WHERE seq = ?",
      )
      .run(status, now, seq);
  }

  /**
   * Cluster mode (ADR 0179): these pending rows are not this member's to send (another member took
   * them over, or delivered them). Returns how many were pending and are `taken` now.
   */
  markTaken(seqs: readonly number[]): number {
    const upd = this.db.prepare(
      "UPDATE notify_queue SET state = 'taken' WHERE seq = ? AND state = 'pending'",
    );
    return this.db.transaction(() => {
      let n = 0;
      for (const seq of seqs) n += upd.run(seq).changes;
      return n;
    })();
  }

  markRetry(seq: number, status: number | null, error: string, nextAt: number): void {
    this.db
      .prepare(
        'UPDATE notify_queue SET attempts = attempts + 1, last_status = ?, last_error = ?, next_at = ? WHERE seq = ?',
      )
      .run(status, error.slice(0, 1000), nextAt, seq);
  }

  markDead(seq: number, status: number | null, error: string): void {
    this.db
      .prepare(
        "UPDATE notify_queue SET state = 'dead', attempts = attempts + 1, last_status = ?, last_error = ? WHERE seq = ?",
      )
      .run(status, error.slice(0, 1000), seq);
  }

  /** Puts a dead row back in line (by admin): it keeps its id, so a receiver still sees one event. */
  retry(seq: number, now: number): QueueRow | undefined {
    const r = this.db
      .prepare(
        "UPDATE notify_queue SET state = 'pending', attempts = 0, next_at = ?, queued_at = ? WHERE seq = ? AND state = 'dead' RETURNING *",
      )
      .get(now, now, seq) as RawRow | undefined;
    return r ? toRow(r) : undefined;
  }

  list(state: RowState, channel: string | undefined, limit: number, ticketId?: string): QueueRow[] {
    const f = filters(channel, ticketId, ['state = ?'], [state]);
    const rows = this.db
      .prepare(`SELECT * FROM notify_queue ${f.where} ORDER BY seq DESC LIMIT ?`)
      .all(...f.args, limit) as RawRow[];
    return rows.map(toRow);
  }

  stats(): Map<string, ChannelStats> {
    const rows = this.db
      .prepare(
        `SELECT channel, state, COUNT(*) AS n, MIN(created_at) AS oldest FROM notify_queue GROUP BY channel, state`,
      )
      .all() as { channel: string; state: RowState; n: number; oldest: number }[];
    const out = new Map<string, ChannelStats>();
    for (const r of rows) {
      const s = out.get(r.channel) ?? { pending: 0, dead: 0, delivered: 0, taken: 0, oldestPendingAt: null };
      s[r.state] = r.n;
      if (r.state === 'pending') s.oldestPendingAt = r.oldest;
      out.set(r.channel, s);
    }
    return out;
  }

  /**
   * Moves delivered rows delivered before `before` to the archive (`notify_sent`), in one
   * transaction; pending and dead rows stay in the queue whatever their age. Returns how many moved.
   */
  archiveDelivered(before: number, now: number): number {
    return this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO notify_sent (seq, event_id, channel, event, ticket_id, created_at, body, target, attempts,
             last_status, delivered_at, archived_at)
           SELECT seq, event_id, channel, event, ticket_id, created_at, body, target, attempts, last_status,
             delivered_at, ? FROM notify_queue WHERE state = 'delivered' AND delivered_at < ?`,
        )
        .run(now, before);
      return this.db
        .prepare("DELETE FROM notify_queue WHERE state = 'delivered' AND delivered_at < ?")
        .run(before).changes;
    })();
  }

  /**
   * Cluster mode (ADR 0179): deletes `taken` rows queued here before `before`. They are another
   * member's to send (its queue and archive keep the record); kept here only for a look back, they
   * would otherwise stay for good. A row handed back later is adopted as a new row. Returns how many.
   */
  dropTaken(before: number): number {
    return this.db.prepare("DELETE FROM notify_queue WHERE state = 'taken' AND queued_at < ?").run(before)
      .changes;
  }

  /** Archived (delivered, then moved out of the queue) events, newest first. */
  archived(channel: string | undefined, ticketId: string | undefined, limit: number): QueueRow[] {
    const f = filters(channel, ticketId);
    const rows = this.db
      .prepare(
        `SELECT *, 'delivered' AS state, 0 AS next_at, created_at AS queued_at, NULL AS last_error FROM notify_sent
         ${f.where} ORDER BY seq DESC LIMIT ?`,
      )
      .all(...f.args, limit) as RawRow[];
    return rows.map(toRow);
  }

  /** Remembers an inbound idempotency key; false when it was seen already (a replay). */
  rememberInbound(key: string, ticketId: string, action: string, now: number): boolean {
    const r = this.db
      .prepare(
        'INSERT OR IGNORE INTO notify_inbound (idempotency_key, received_at, ticket_id, action) VALUES (?, ?, ?, ?)',
      )
      .run(key, now, ticketId, action);
    return r.changes === 1;
  }

  /** Moves inbound keys received before `before` to `notify_inbound_seen`; returns how many moved. */
  archiveInbound(before: number, now: number): number {
    return this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO notify_inbound_seen (idempotency_key, received_at, ticket_id, action, archived_at)
           SELECT idempotency_key, received_at, ticket_id, action, ? FROM notify_inbound WHERE received_at < ?`,
        )
        .run(now, before);
      return this.db.prepare('DELETE FROM notify_inbound WHERE received_at < ?').run(before).changes;
    })();
  }
}
