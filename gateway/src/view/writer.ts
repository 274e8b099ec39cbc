import { sql, type Kysely } from 'kysely';
import type { Alarm, AlarmEvent, Incident } from '../alarms/types.js';
import { backoffMs } from '../core/backoff.js';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import { liveAlarm, liveTicket } from '../live/payloads.js';
import type { SqlDialect } from '../storage/sql/dialect.js';
import { clockPaused, type HistoryEntry, type Ticket, type TicketEvent } from '../workorders/types.js';
import type { ViewTables } from './tables.js';
import type { NotifyChange } from './types.js';

/** The channel other instances LISTEN on; the payload is the writer's instance id. */
export const VIEW_CHANNEL = 'gateway_view';

/** One local change waiting for PostgreSQL, in the order it was committed locally. */
type Pending =
  /** `eventSeq`: the event's line was written through already under this number (ADR 0173). */
  | { kind: 'alarm'; seq: number; e: AlarmEvent; eventSeq?: number }
  | { kind: 'ticket'; seq: number; e: TicketEvent }
  /** A record's current state copied at start (no event, nothing on the live stream). */
  | { kind: 'alarm-state'; a: Alarm }
  | { kind: 'incident-state'; i: Incident }
  | { kind: 'ticket-state'; t: Ticket }
  /** A queued notification or its new state (ADR 0160 addendum 2). */
  | { kind: 'notify'; c: NotifyChange };

export interface ViewWriterOptions {
  instanceId: string;
  db: () => Kysely<object>;
  dialect: () => SqlDialect;
  log: Logger;
  /** Changes per transaction (default 500). */
  batch?: number;
  /** Changes kept while PostgreSQL cannot be reached (default 100,000); beyond, the oldest are dropped and counted. */
  maxPending?: number;
  /** How long the live feed keeps this instance's changes for other instances' catch-up (default 1 h). */
  retainMs?: number;
  retry?: { minMs: number; maxMs: number };
  /**
   * Cluster mode: the partition of a device (ADR 0150), written beside each alarm and ticket so that
   * the next owner of the partition finds them (ADR 0160). Absent: the column stays null.
   */
  partitionOf?: (site: string, device: string) => number;
  /**
   * Incidents are written by the shared grouping (ADR 0170, view/incident-store.ts), the one
   * authority on them: this writer leaves `view_incidents` alone, so that a member's older copy
   * never overwrites the cluster's count or state.
   */
  sharedIncidents?: boolean;
}

/**
 * Copies this instance's committed alarm and ticket changes into the shared view (ADR 0155):
 * listeners on the event bus queue them (synchronous, no I/O), a loop writes them in batches, one
 * transaction per batch, each statement written once through Kysely, and NOTIFYs the other
 * instances. A batch that fails stays queued and is tried again with the gateway's backoff, so a
 * PostgreSQL outage delays the view but loses no change while the process runs; what a crash
 * during an outage takes is copied again from the local stores at the next start (`resync`).
 */
export class ViewWriter implements Component {
  readonly name = 'cluster view';
  private queue: Pending[] = [];
  private seq = 0;
  /**
   * Alarm events whose history line `writeThroughAlarms` wrote with the row, by `throughKey`: the
   * change number it used, so that the queue's copy of the event (after the local commit) is the
   * same line, not a second one. Bounded: an ack refused after its write never comes by.
   */
  private readonly through = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  /** A write is scheduled: a new change waits for it instead of putting it off again. */
  private due = false;
  /** Changes dropped from the head of the queue so far (a batch in flight may lose its oldest). */
  private headDropped = 0;
  private writing?: Promise<void>;
  private attempt = 0;
  private stopped = true;
  private lastError?: string;
  private lastPrune = 0;
  private counts = { written: 0, batches: 0, failures: 0, dropped: 0, unwritable: 0, fenced: 0 };

  constructor(private readonly o: ViewWriterOptions) {}

  private get db(): Kysely<ViewTables> {
    return this.o.db().withTables<ViewTables>();
  }

  /** Bus listeners: queue only. */
  onAlarm = (e: AlarmEvent): void => {
    const through = this.through.size > 0 ? this.through.get(throughKey(e)) : undefined;
    if (through !== undefined) this.through.delete(throughKey(e));
    this.push({ kind: 'alarm', seq: ++this.seq, e, eventSeq: through });
  };
  onTicket = (e: TicketEvent): void => this.push({ kind: 'ticket', seq: ++this.seq, e });
  /** The notification queue's listener (cluster mode): queue only. */
  onNotification = (c: NotifyChange): void => this.push({ kind: 'notify', c });

  /** Copies the local stores' current records (at start: heals what a crash took from the queue). */
  resync(alarms: readonly Alarm[], incidents: readonly Incident[], tickets: readonly Ticket[]): void {
    for (const a of alarms) this.push({ kind: 'alarm-state', a });
    for (const i of incidents) this.push({ kind: 'incident-state', i });
    for (const t of tickets) this.push({ kind: 'ticket-state', t });
  }

  /** Copies the local notification queue's pending rows (at start; a row already copied stays as it is). */
  resyncNotifications(rows: readonly Extract<NotifyChange, { kind: 'queued' }>['row'][]): void {
    for (const row of rows) this.push({ kind: 'notify', c: { kind: 'queued', row } });
  }

  async start(): Promise<void> {
    // Change numbers continue after the last this instance wrote, so that other instances' cursors
    // (and the retry key) keep working across its restarts.
    const r = await this.db
      .selectFrom('view_changes')
      .select((eb) => eb.fn.max('change_seq').as('m'))
      .where('instance_id', '=', this.o.instanceId)
      .executeTakeFirst();
    // An ack's line written through (its number taken ahead of the queue) may be the last one.
    const lines = await this.db
      .selectFrom('view_alarm_events')
      .select((eb) => eb.fn.max('change_seq').as('m'))
      .where('instance_id', '=', this.o.instanceId)
      .executeTakeFirst();
    const last = Math.max(Number(r?.m ?? 0), Number(lines?.m ?? 0));
    // Changes queued before start (none today) are renumbered above it.
    for (const p of this.queue) if (p.kind === 'alarm' || p.kind === 'ticket') p.seq += last;
    this.seq += last;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.writing;
    // A last try, so that a clean stop leaves nothing behind when PostgreSQL is there; bounded, so
    // that a PostgreSQL cut off without a reset does not hold the shutdown (a restart resyncs).
    if (this.queue.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((r) => (timer = setTimeout(r, 5000)));
      await Promise.race([this.writeAll().catch(() => undefined), late]);
      clearTimeout(timer);
      if (this.queue.length > 0)
        this.o.log.warn({ pending: this.queue.length }, 'stopped with changes not yet in the shared view');
    }
  }

  health(): ComponentHealth {
    const base = { pending: this.queue.length, ...this.counts };
    if (this.lastError !== undefined)
      return { state: 'degraded', detail: `shared view: ${this.lastError}`, ...base };
    return { state: this.stopped ? 'stopped' : 'ok', ...base };
  }

  /** The counters, for /metrics. */
  stats(): { pending: number; failures: number; dropped: number; fenced: number } {
    return {
      pending: this.queue.length,
      failures: this.counts.failures,
      dropped: this.counts.dropped,
      fenced: this.counts.fenced,
    };
  }

  /** Resolves when everything queued so far has been written (tests, shutdown). */
  async drained(): Promise<void> {
    while (this.queue.length > 0 && !this.stopped) await new Promise((r) => setTimeout(r, 20));
  }

  /**
   * Writes what is queued now, waiting at most `waitMs` (a graceful hand-over: the next owner adopts
   * the partition's records from the copy, which must hold their last changes, ADR 0160). A write
   * waiting for its backoff is tried at once. Resolves true when the queue was emptied in time.
   */
  async flushed(waitMs: number): Promise<boolean> {
    if (this.queue.length === 0) return true;
    if (this.stopped) return false;
    if (!this.writing) this.schedule(0);
    const until = Date.now() + waitMs;
    while (this.queue.length > 0 && !this.stopped && Date.now() < until)
      await new Promise((r) => setTimeout(r, 10));
    return this.queue.length === 0;
  }

  /**
   * Cluster mode (ADR 0160 addendum): writes the tickets' current rows to `view_tickets` now, with
   * the same fenced upsert as the queue, before the caller commits an escalation locally (and queues
   * its notification). What this instance queued earlier is written first (bounded by `waitMs`), so
   * an older queued copy cannot land after the new level. Resolves to the ids the upsert accepted:
   * rows another instance holds are fenced (counted) and left out. Rejects when PostgreSQL cannot
   * be reached or the queue did not drain in time; the caller then holds the escalation back.
   */
  async writeThrough(
    tickets: readonly Ticket[],
    waitMs = 1000,
    /** By ticket id: the first audit entry the change added; those entries are written with the row. */
    firstEntries?: ReadonlyMap<string, number>,
  ): Promise<Set<string>> {
    if (tickets.length === 0) return new Set();
    if (!(await this.flushed(waitMs))) throw new Error('earlier changes not yet in the shared view');
    const me = this.o.instanceId;
    const part = this.o.partitionOf;
    const done = await this.db.transaction().execute(async (tx) => {
      const done = await this.upsertTickets(
        tx,
        tickets.map((t) => ticketRow(me, t, part?.(t.site, t.device ?? '') ?? null)),
      );
      // The change's audit entries with its row: a holder killed before its queue's next batch
      // leaves the next one the trail with the action in it (the queue writes them again: no-op).
      const written = new Set(done.map((r) => r.id));
      const entries: ViewTables['view_ticket_entries'][] = [];
      for (const t of tickets) {
        const first = firstEntries?.get(t.id);
        if (first === undefined || !written.has(t.id)) continue;
        for (let i = first; i < t.history.length; i++)
          entries.push({
            ticket_id: t.id,
            idx: i,
            instance_id: me,
            ts: t.history[i]!.ts,
            body: JSON.stringify(t.history[i]),
          });
      }
      // Overwritten if there (this instance's own lines only): a correction after a change made
      // again on a newer copy puts each line at the position the local trail has it (ADR 0173).
      // Lines of this instance past the trail written now are none of the trail's: an action refused
      // (its write answered too late) and put back here.
      const trimmed = tickets.filter((t) => firstEntries?.has(t.id) && written.has(t.id));
      if (trimmed.length > 0)
        await tx
          .deleteFrom('view_ticket_entries')
          .where('instance_id', '=', me)
          .where((eb) =>
            eb.or(
              trimmed.map((t) => eb.and([eb('ticket_id', '=', t.id), eb('idx', '>=', t.history.length)])),
            ),
          )
          .execute();
      if (entries.length > 0)
        await tx
          .insertInto('view_ticket_entries')
          .values(entries)
          .onConflict((oc) =>
            oc
              .columns(['ticket_id', 'idx'])
              .doUpdateSet((eb) => ({ ts: eb.ref('excluded.ts'), body: eb.ref('excluded.body') }))
              .where('view_ticket_entries.instance_id', '=', me),
          )
          .execute();
      return done;
    });
    return this.accepted(
      tickets.map((t) => t.id),
      done,
    );
  }

  /**
   * Cluster mode (ADR 0173): an operator's change to alarms (an ack) written to `view_alarms` now,
   * with the queue's fenced upsert, before the caller commits it locally and answers. Same rules as
   * `writeThrough`: earlier queued changes first; resolves to the ids accepted (the others are held
   * by another instance now: fenced, counted); rejects when PostgreSQL cannot be reached. The
   * alarm's event follows through the queue after the local commit.
   */
  async writeThroughAlarms(
    alarms: readonly Alarm[],
    waitMs = 1000,
    /** The change's events (an ack): their history lines are written with the rows. */
    events: readonly AlarmEvent[] = [],
  ): Promise<Set<string>> {
    if (alarms.length === 0) return new Set();
    if (!(await this.flushed(waitMs))) throw new Error('earlier changes not yet in the shared view');
    const me = this.o.instanceId;
    const part = this.o.partitionOf;
    const numbered = events.map((e) => ({ e, seq: ++this.seq }));
    const done = await this.db.transaction().execute(async (tx) => {
      const done = await this.upsertAlarms(
        tx,
        alarms.map((a) => alarmRow(me, a, part?.(a.site, a.device) ?? null)),
      );
      // A holder killed before its queue's next batch leaves the next one the line with the row.
      const written = new Set(done.map((r) => r.id));
      const lines = numbered.filter((n) => written.has(n.e.alarm.id));
      if (lines.length > 0)
        await tx
          .insertInto('view_alarm_events')
          .values(lines.map((n) => eventRow(me, n.seq, n.e)))
          .onConflict((oc) => oc.columns(['instance_id', 'change_seq']).doNothing())
          .execute();
      return done;
    });
    for (const n of numbered) {
      this.through.set(throughKey(n.e), n.seq);
      // Oldest first out: a refused ack's entry would otherwise stay for ever.
      if (this.through.size > THROUGH_MAX) this.through.delete(this.through.keys().next().value!);
    }
    return this.accepted(
      alarms.map((a) => a.id),
      done,
    );
  }

  /** A write-through's answer: the ids the fenced upsert wrote; the others are counted as fenced. */
  private accepted(wanted: readonly string[], done: readonly { id: string }[]): Set<string> {
    const fenced = new Set<string>();
    fencedOf(wanted, done, fenced);
    this.counts.fenced += fenced.size;
    return new Set(done.map((r) => r.id));
  }

  /** The fenced upsert of alarm rows (one statement): a row another instance holds is not overwritten. */
  private upsertAlarms(db: Kysely<ViewTables>, rows: ViewTables['view_alarms'][]): Promise<{ id: string }[]> {
    const me = this.o.instanceId;
    return db
      .insertInto('view_alarms')
      .values(rows)
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet((eb) => ({
            state: eb.ref('excluded.state'),
            updated_at: eb.ref('excluded.updated_at'),
            partition: eb.ref('excluded.partition'),
            body: eb.ref('excluded.body'),
          }))
          .where('view_alarms.instance_id', '=', me),
      )
      .returning('id')
      .execute();
  }

  /** The fenced upsert of ticket rows (one statement): a row another instance holds is not overwritten. */
  private upsertTickets(
    db: Kysely<ViewTables>,
    rows: ViewTables['view_tickets'][],
  ): Promise<{ id: string }[]> {
    const me = this.o.instanceId;
    return db
      .insertInto('view_tickets')
      .values(rows)
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet((eb) => ({
            status: eb.ref('excluded.status'),
            priority: eb.ref('excluded.priority'),
            assignee: eb.ref('excluded.assignee'),
            updated_at: eb.ref('excluded.updated_at'),
            responded_at: eb.ref('excluded.responded_at'),
            response_due_at: eb.ref('excluded.response_due_at'),
            resolve_due_at: eb.ref('excluded.resolve_due_at'),
            paused_since: eb.ref('excluded.paused_since'),
            partition: eb.ref('excluded.partition'),
            body: eb.ref('excluded.body'),
          }))
          .where('view_tickets.instance_id', '=', me),
      )
      .returning('id')
      .execute();
  }

  private push(p: Pending): void {
    this.queue.push(p);
    const max = this.o.maxPending ?? 100_000;
    if (this.queue.length > max) {
      const over = this.queue.length - max;
      this.queue.splice(0, over);
      this.headDropped += over;
      this.counts.dropped += over;
    }
    if (!this.stopped && this.attempt === 0 && !this.writing && !this.due) this.schedule(20);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.due = true;
    this.timer = setTimeout(() => {
      this.due = false;
      this.writing = this.writeAll()
        .then(() => {
          if (this.lastError !== undefined)
            this.o.log.info('shared view reachable again; pending changes written');
          this.lastError = undefined;
          this.attempt = 0;
        })
        .catch((err: unknown) => {
          this.counts.failures++;
          if (this.lastError === undefined)
            this.o.log.error(
              { err: (err as Error).message, pending: this.queue.length },
              'could not write to the shared view; changes kept and tried again',
            );
          this.lastError = (err as Error).message;
          this.attempt++;
        })
        .finally(() => {
          this.writing = undefined;
          if (this.queue.length > 0)
            this.schedule(
              this.attempt === 0 ? 0 : backoffMs(this.attempt, this.o.retry ?? { minMs: 500, maxMs: 5000 }),
            );
        });
    }, ms);
    this.timer.unref();
  }

  private async writeAll(): Promise<void> {
    const size = this.o.batch ?? 500;
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, size);
      const dropped = this.headDropped;
      await this.write(batch);
      // Only what was written leaves the queue: pushes during the write went to its end, and what
      // an overflow dropped meanwhile came off the batch's own head.
      this.queue.splice(0, Math.max(0, batch.length - (this.headDropped - dropped)));
      this.counts.written += batch.length;
      this.counts.batches++;
    }
    await this.prune();
  }

  /** One transaction: current states (last one wins), events, audit entries, the live feed, a NOTIFY. */
  private async write(batch: readonly Pending[]): Promise<void> {
    const me = this.o.instanceId;
    const alarms = new Map<string, Alarm>();
    const incidents = new Map<string, Incident>();
    const tickets = new Map<string, Ticket>();
    const events: ViewTables['view_alarm_events'][] = [];
    const entries = new Map<string, ViewTables['view_ticket_entries']>();
    /** Feed rows with the record they are about: a fenced record's change is not announced. */
    const changes: { row: ViewTables['view_changes']; id: string }[] = [];
    /** New notification rows (their latest state when it changed within the batch), then state changes. */
    const notes = new Map<string, ViewTables['view_notifications']>();
    const noteStates: Extract<NotifyChange, { kind: 'state' }>[] = [];
    const addEntries = (id: string, first: number, list: readonly HistoryEntry[]) =>
      list.forEach((h, i) =>
        entries.set(`${id}#${first + i}`, {
          ticket_id: id,
          idx: first + i,
          instance_id: me,
          ts: h.ts,
          body: JSON.stringify(h),
        }),
      );
    for (const p of batch) {
      // A change that cannot be turned into rows (a fault, not an outage) would otherwise block
      // the queue behind it for ever: it is logged, counted and skipped.
      try {
        switch (p.kind) {
          case 'alarm': {
            const { e } = p;
            alarms.set(e.alarm.id, e.alarm);
            if (e.incident) incidents.set(e.incident.id, e.incident);
            events.push(eventRow(me, p.eventSeq ?? p.seq, e));
            changes.push({ row: this.change(p.seq, 'alarm', e.alarm.site, liveAlarm(e)), id: e.alarm.id });
            break;
          }
          case 'ticket': {
            const { e } = p;
            tickets.set(e.ticket.id, e.ticket);
            if (e.firstEntry !== undefined) addEntries(e.ticket.id, e.firstEntry, e.entries);
            changes.push({
              row: this.change(p.seq, 'ticket', e.ticket.site, liveTicket(e)),
              id: e.ticket.id,
            });
            break;
          }
          case 'alarm-state':
            alarms.set(p.a.id, p.a);
            break;
          case 'incident-state':
            incidents.set(p.i.id, p.i);
            break;
          case 'ticket-state':
            tickets.set(p.t.id, p.t);
            addEntries(p.t.id, 0, p.t.history);
            break;
          case 'notify': {
            const { c } = p;
            if (c.kind === 'queued') {
              const r = c.row;
              notes.set(`${r.channel}\n${r.eventId}`, {
                event_id: r.eventId,
                channel: r.channel,
                instance_id: me,
                ticket_id: r.ticketId,
                event: r.event,
                created_at: r.createdAt,
                body: r.body,
                target: r.target,
                state: r.state,
                delivered_at: r.deliveredAt,
                claimed_until: null,
              });
              break;
            }
            const row = notes.get(`${c.channel}\n${c.eventId}`);
            if (row) {
              row.state = c.state;
              row.delivered_at = c.at;
            } else noteStates.push(c);
            break;
          }
        }
      } catch (err) {
        this.counts.unwritable++;
        this.o.log.error({ err, kind: p.kind }, 'a change could not be copied to the shared view; skipped');
      }
    }
    const part = this.o.partitionOf;
    // Records another instance holds now (it adopted their partition, ADR 0160): their rows are not
    // overwritten, their new audit entries and feed rows not written. Counted after the commit.
    const fenced = new Set<string>();
    await this.db.transaction().execute(async (tx) => {
      fenced.clear();
      if (alarms.size > 0) {
        const done = await this.upsertAlarms(
          tx,
          [...alarms.values()].map((a) => alarmRow(me, a, part?.(a.site, a.device) ?? null)),
        );
        fencedOf(alarms.keys(), done, fenced);
      }
      if (events.length > 0)
        await tx
          .insertInto('view_alarm_events')
          .values(events)
          .onConflict((oc) => oc.columns(['instance_id', 'change_seq']).doNothing())
          .execute();
      if (incidents.size > 0 && this.o.sharedIncidents !== true)
        await tx
          .insertInto('view_incidents')
          .values(
            [...incidents.values()].map((i) => ({
              id: i.id,
              instance_id: me,
              site: i.site,
              state: i.state,
              opened_at: i.openedAt,
              body: JSON.stringify(i),
            })),
          )
          .onConflict((oc) =>
            oc.column('id').doUpdateSet((eb) => ({
              state: eb.ref('excluded.state'),
              body: eb.ref('excluded.body'),
            })),
          )
          .execute();
      if (tickets.size > 0) {
        const done = await this.upsertTickets(
          tx,
          [...tickets.values()].map((t) => ticketRow(me, t, part?.(t.site, t.device ?? '') ?? null)),
        );
        fencedOf(tickets.keys(), done, fenced);
      }
      // A fenced ticket's entries would take positions the holder writes its own entries at.
      const rows = [...entries.values()].filter((e) => !fenced.has(e.ticket_id));
      if (rows.length > 0)
        await tx
          .insertInto('view_ticket_entries')
          .values(rows)
          .onConflict((oc) => oc.columns(['ticket_id', 'idx']).doNothing())
          .execute();
      if (notes.size > 0)
        await tx
          .insertInto('view_notifications')
          .values([...notes.values()])
          // The row may be there already: claimed before this copy was written (ADR 0179), or copied
          // before a restart. Its state as this holder knows it is kept, unless it is another
          // member's now or recorded delivered (a delivered row never goes back to pending).
          .onConflict((oc) =>
            oc
              .columns(['event_id', 'channel'])
              .doUpdateSet((eb) => ({
                state: eb.ref('excluded.state'),
                delivered_at: eb.ref('excluded.delivered_at'),
              }))
              .where('view_notifications.instance_id', '=', me)
              .where('view_notifications.state', '!=', 'delivered'),
          )
          .execute();
      // Fenced like the records: a row the ticket's next holder took (this instance was thought
      // dead) is its own now, and this instance's late word on it is not written.
      for (const c of noteStates)
        await tx
          .updateTable('view_notifications')
          .set({ state: c.state, delivered_at: c.at })
          .where('event_id', '=', c.eventId)
          .where('channel', '=', c.channel)
          .where('instance_id', '=', me)
          .execute();
      const feed = changes.filter((c) => !fenced.has(c.id)).map((c) => c.row);
      if (feed.length > 0) {
        await tx
          .insertInto('view_changes')
          .values(feed)
          .onConflict((oc) => oc.columns(['instance_id', 'change_seq']).doNothing())
          .execute();
        // Delivered to the listeners when (and only if) the transaction commits.
        if (this.o.dialect() === 'postgres') await sql`select pg_notify(${VIEW_CHANNEL}, ${me})`.execute(tx);
      }
    });
    if (fenced.size > 0) {
      this.counts.fenced += fenced.size;
      this.o.log.info(
        { records: [...fenced].slice(0, 20), count: fenced.size },
        'changes to records another instance holds now were not copied (fenced)',
      );
    }
  }

  /** A feed row; `at` is when it was copied (what the pruning goes by), not when the change happened. */
  private change(seq: number, type: string, site: string, payload: unknown) {
    return {
      instance_id: this.o.instanceId,
      change_seq: seq,
      type,
      site,
      at: Date.now(),
      payload: JSON.stringify(payload),
    };
  }

  /** The live feed is for catch-up after a short disconnection: this instance's old rows go. */
  private async prune(): Promise<void> {
    const now = Date.now();
    if (now - this.lastPrune < 60_000) return;
    this.lastPrune = now;
    await this.db
      .deleteFrom('view_changes')
      .where('instance_id', '=', this.o.instanceId)
      .where('at', '<', now - (this.o.retainMs ?? 3_600_000))
      .execute();
  }
}

/** The ids of `wanted` whose upsert wrote nothing (the row is another instance's), added to `into`. */
function fencedOf(wanted: Iterable<string>, done: readonly { id: string }[], into: Set<string>): void {
  const written = new Set(done.map((r) => r.id));
  for (const id of wanted) if (!written.has(id)) into.add(id);
}

function alarmRow(instance: string, a: Alarm, partition: number | null): ViewTables['view_alarms'] {
  return {
    id: a.id,
    instance_id: instance,
    site: a.site,
    device: a.device,
    rule: a.rule,
    state: a.state,
    raised_at: a.raisedAt,
    updated_at: a.updatedAt,
    partition,
    body: JSON.stringify(a),
  };
}

function ticketRow(instance: string, t: Ticket, partition: number | null): ViewTables['view_tickets'] {
  const { history: _history, ...body } = t;
  return {
    id: t.id,
    instance_id: instance,
    seq: Number(t.id.replace(/^\D+/, '')) || 0,
    site: t.site,
    device: t.device,
    status: t.status,
    priority: t.priority,
    assignee: t.assignee,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    responded_at: t.respondedAt,
    response_due_at: t.responseDueAt,
    resolve_due_at: t.resolveDueAt,
    paused_since: clockPaused(t) ? (t.heldSince ?? null) : null,
    partition,
    body: JSON.stringify(body),
  };
}

/** How many written-through alarm events wait for their queued copy at most (see `through`). */
const THROUGH_MAX = 1000;

/** An alarm event as the queue will see it again after the local commit: its alarm, type, time, user. */
function throughKey(e: AlarmEvent): string {
  return `${e.alarm.id}\u0000${e.type}\u0000${e.ts}\u0000${e.user ?? ''}`;
}

/** An alarm event's history line in the shared view. */
function eventRow(me: string, seq: number, e: AlarmEvent): ViewTables['view_alarm_events'] {
  return {
    instance_id: me,
    change_seq: seq,
    alarm_id: e.alarm.id,
    ts: e.ts,
    body: JSON.stringify({
      type: e.type,
      ts: e.ts,
      severity: e.alarm.severity,
      state: e.alarm.state,
      user: e.user ?? null,
      userSubject: e.userSubject ?? null,
      note: e.note ?? null,
      shelved: e.alarm.shelved ? 1 : 0,
      suppressed: e.alarm.suppressed ? 1 : 0,
    }),
  };
}
