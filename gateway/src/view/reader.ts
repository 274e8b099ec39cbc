import type { ExpressionBuilder, Kysely } from 'kysely';
import type { Alarm, Incident, ListQuery } from '../alarms/types.js';
import type { HistoryEntry, Ticket } from '../workorders/types.js';
import type { ViewTables } from './tables.js';
import type { AlarmHistoryRow, Holder, SharedView, ViewTicketFilter } from './types.js';

/**
 * The two columns of the cluster's member table (cluster/store.ts) the holder lookup reads: declared
 * here because only the composition root may import the cluster module (.dependency-cruiser.mjs).
 */
type Tables = ViewTables & { cluster_members: { instance_id: string; http_url: string | null } };

/**
 * The read side of the shared view (ADR 0155): the same answers as the local stores give, over
 * every instance's records. One query per question, written once through Kysely.
 */
export class ViewReader implements SharedView {
  constructor(
    readonly instanceId: string,
    private readonly open: () => Kysely<object>,
  ) {}

  private get db(): Kysely<Tables> {
    return this.open().withTables<Tables>();
  }

  async listAlarms(q: ListQuery & { limit: number }): Promise<Alarm[]> {
    let s = this.db.selectFrom('view_alarms').select('body');
    // Active: what needs attention (active, or cleared but not acknowledged), as the local list.
    if (q.state === 'active') s = s.where('state', '!=', 'cleared');
    if (q.site !== undefined) s = s.where('site', '=', q.site);
    if (q.device !== undefined) s = s.where('device', '=', q.device);
    const rows = await s.orderBy('raised_at', 'desc').limit(q.limit).execute();
    return rows.map((r) => JSON.parse(r.body) as Alarm);
  }

  async getAlarm(id: string): Promise<{ alarm: Alarm; history: AlarmHistoryRow[] } | undefined> {
    const row = await this.db
      .selectFrom('view_alarms')
      .select('body')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const ev = await this.db
      .selectFrom('view_alarm_events')
      .select('body')
      .where('alarm_id', '=', id)
      .orderBy('ts')
      .orderBy('change_seq')
      .execute();
    return {
      alarm: JSON.parse(row.body) as Alarm,
      history: ev.map((e) => JSON.parse(e.body) as AlarmHistoryRow),
    };
  }

  async listIncidents(): Promise<Incident[]> {
    const rows = await this.db
      .selectFrom('view_incidents')
      .select('body')
      .orderBy('opened_at', 'desc')
      .execute();
    return rows.map((r) => JSON.parse(r.body) as Incident);
  }

  async pageTickets(f: ViewTicketFilter): Promise<{ tickets: Ticket[]; total: number }> {
    const where = (eb: ExpressionBuilder<Tables, 'view_tickets'>) => {
      const c = [];
      if (f.status !== undefined) c.push(eb('status', '=', f.status));
      if (f.site !== undefined) c.push(eb('site', '=', f.site));
      if (f.device !== undefined) c.push(eb('device', '=', f.device));
      if (f.priority !== undefined) c.push(eb('priority', '=', f.priority));
      if (f.assignee !== undefined) c.push(eb('assignee', '=', f.assignee));
      if (f.updatedSince !== undefined) c.push(eb('updated_at', '>=', f.updatedSince));
      if (f.overdue !== undefined) {
        // As workorders/store.ts: a deadline of the current cycle passed without its step.
        const overdue = eb.and([
          eb('status', 'not in', ['resolved', 'closed']),
          eb.or([
            eb.and([eb('responded_at', 'is', null), eb('response_due_at', '<=', f.now)]),
            eb.and([
              eb('resolve_due_at', '<=', f.now),
              eb.or([eb('paused_since', 'is', null), eb('paused_since', '>', eb.ref('resolve_due_at'))]),
            ]),
          ]),
        ]);
        c.push(f.overdue ? overdue : eb.not(overdue));
      }
      return eb.and(c);
    };
    let page = this.db.selectFrom('view_tickets').select('body').where(where);
    page =
      f.updatedSince !== undefined
        ? page.orderBy('updated_at', 'asc').orderBy('seq', 'asc')
        : page.orderBy('seq', 'desc');
    const rows = await page
      .limit(f.limit)
      .offset(f.offset ?? 0)
      .execute();
    const count = await this.db
      .selectFrom('view_tickets')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where(where)
      .executeTakeFirstOrThrow();
    const tickets = rows.map((r) => ({ ...(JSON.parse(r.body) as Omit<Ticket, 'history'>), history: [] }));
    if (f.withHistory && tickets.length > 0) {
      const byId = new Map<string, Ticket>(tickets.map((t) => [t.id, t]));
      const hist = await this.db
        .selectFrom('view_ticket_entries')
        .select(['ticket_id', 'body'])
        .where('ticket_id', 'in', [...byId.keys()])
        .orderBy('ticket_id')
        .orderBy('idx')
        .execute();
      for (const h of hist) byId.get(h.ticket_id)?.history.push(JSON.parse(h.body) as HistoryEntry);
    }
    return { tickets, total: Number(count.n) };
  }

  async getTicket(id: string): Promise<Ticket | undefined> {
    const row = await this.db
      .selectFrom('view_tickets')
      .select('body')
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) return undefined;
    const hist = await this.db
      .selectFrom('view_ticket_entries')
      .select('body')
      .where('ticket_id', '=', id)
      .orderBy('idx')
      .execute();
    return {
      ...(JSON.parse(row.body) as Omit<Ticket, 'history'>),
      history: hist.map((h) => JSON.parse(h.body) as HistoryEntry),
    };
  }

  /** Alarms of every instance raised in `[from, to)`, oldest first (the monthly report). */
  async alarmsRaisedBetween(from: number, to: number): Promise<Alarm[]> {
    const rows = await this.db
      .selectFrom('view_alarms')
      .select('body')
      .where('raised_at', '>=', from)
      .where('raised_at', '<', to)
      .orderBy('raised_at')
      .execute();
    return rows.map((r) => JSON.parse(r.body) as Alarm);
  }

  /**
   * Tickets of every instance created before `to`, with their `escalate` and `close` lines only:
   * what workorders/store.ts `createdBefore` gives the monthly report of one instance.
   */
  async reportTickets(to: number): Promise<Ticket[]> {
    const rows = await this.db
      .selectFrom('view_tickets')
      .select('body')
      .where('created_at', '<', to)
      .orderBy('seq')
      .execute();
    const tickets = rows.map((r) => ({ ...(JSON.parse(r.body) as Omit<Ticket, 'history'>), history: [] }));
    if (tickets.length === 0) return tickets;
    const byId = new Map<string, Ticket>(tickets.map((t) => [t.id, t]));
    // The action is inside the JSON body (no column of its own): the LIKE keeps the other lines in
    // PostgreSQL in either dialect, the parsed action decides. An entry's body is JSON.stringify of
    // the entry, so a real action is spelled exactly so; a note's quotes would be escaped.
    const hist = await this.db
      .selectFrom('view_ticket_entries as e')
      .innerJoin('view_tickets as t', 't.id', 'e.ticket_id')
      .select(['e.ticket_id', 'e.body'])
      .where('t.created_at', '<', to)
      .where((eb) =>
        eb.or([eb('e.body', 'like', '%"action":"escalate"%'), eb('e.body', 'like', '%"action":"close"%')]),
      )
      .orderBy('e.ticket_id')
      .orderBy('e.idx')
      .execute();
    for (const h of hist) {
      const entry = JSON.parse(h.body) as HistoryEntry;
      if (entry.action === 'escalate' || entry.action === 'close') byId.get(h.ticket_id)?.history.push(entry);
    }
    return tickets;
  }

  async holder(kind: 'alarm' | 'ticket', id: string): Promise<Holder | undefined> {
    const table = kind === 'alarm' ? 'view_alarms' : 'view_tickets';
    const row = await this.db
      .selectFrom(table)
      .leftJoin('cluster_members as m', 'm.instance_id', `${table}.instance_id`)
      .select([`${table}.instance_id as instanceId`, 'm.http_url as url'])
      .where(`${table}.id`, '=', id)
      .executeTakeFirst();
    return row ? { instanceId: row.instanceId, url: row.url ?? null } : undefined;
  }
}
