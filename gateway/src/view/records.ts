import { sql, type Kysely } from 'kysely';
import type { Alarm, AlarmEvent, AlarmEventType, DuplicateAlarm } from '../alarms/types.js';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { HistoryEntry, Ticket } from '../workorders/types.js';
import type { ViewTables } from './tables.js';
import type { AlarmHistoryRow } from './types.js';

/** Alarm states that are not final: the alarm still changes (cleared-unacknowledged waits for an ack). */
export const OPEN_ALARM_STATES = ['active-unacknowledged', 'active-acknowledged', 'cleared-unacknowledged'];

/** What moving records needs of the alarm service (AlarmService). */
export interface AlarmHolder {
  evict(which: (a: Alarm) => boolean): Alarm[];
  /** Returns the alarms it closed as duplicates of another active alarm of their condition. */
  adopt(list: readonly Alarm[], history?: ReadonlyMap<string, readonly AlarmEvent[]>): DuplicateAlarm[];
  /** alarms.db's copy, whatever the service holds in memory. */
  stored(id: string): Alarm | undefined;
}

/** What moving records needs of the work-order service (WorkOrderService). */
export interface TicketHolder {
  evict(which: (t: Ticket) => boolean): Ticket[];
  adopt(list: readonly Ticket[]): void;
  /** A ticket standing only for a duplicate alarm merged into the kept alarm's ticket; how many. */
  mergeDuplicates(pairs: readonly DuplicateAlarm[]): number;
  /** workorders.db's copy with its audit trail, whatever the service holds in memory. */
  stored(id: string): Ticket | undefined;
  /** Active alarms without their ticket get one (ADR 0091): run on the alarms taken back from this file. */
  reconcileAlarms(active: Iterable<Alarm>): number;
}

/** The shared view writer's side: its queue written before records change hands. */
export interface WriterQueue {
  flushed(waitMs: number): Promise<boolean>;
}

export interface PartitionRecordsOptions {
  instanceId: string;
  /** The partition of a device (cluster/partition.ts, handed in by the composition root). */
  partitionOf: (site: string, device: string) => number;
  alarms: AlarmHolder;
  /** Absent with work orders off. */
  tickets?: TicketHolder;
  writer: WriterQueue;
  log: Logger;
  /** How long an adoption waits for this instance's own queued changes first (default 5 s). */
  flushMs?: number;
  /**
   * Whether this instance processes a device's partition now. With it (and `owned`), a ticket made
   * here for a device another member owns (by hand, preventive maintenance on the leader) is not held
   * here, and the owner takes it over at its next sweep.
   */
  owns?: (site: string, device: string) => boolean;
  /** The partitions this instance processes now (the sweep's scope). */
  owned?: () => readonly number[];
  /** How often the owner looks for records of its partitions held elsewhere (default 5 s; 0: never). */
  sweepMs?: number;
  /** The shared store's database (for the sweep). */
  db?: () => Kysely<object>;
  /**
   * The partitions of `parts` whose lease this instance holds now, locked within `tx` (the cluster's
   * `leased`). Given, a take flips only those: a sweep or adoption whose queries hung past the lease
   * (a cut to PostgreSQL) does not take back records the next owner adopted meanwhile.
   */
  leased?: (tx: Kysely<object>, parts: readonly number[]) => Promise<number[]>;
  /**
   * The members alive now (heartbeat younger than the TTL), read within the take's transaction.
   * With `notifications`: the undelivered notifications of the taken partitions' tickets whose
   * holder is not among them (it died) are taken too (ADR 0160 addendum 2).
   */
  live?: (tx: Kysely<object>) => Promise<ReadonlySet<string>>;
  /** Where notifications taken from a dead instance are queued for delivery here. */
  notifications?: { adopt(rows: readonly AdoptedNotification[]): number };
}

/** An undelivered notification another instance queued (its local queue's row, as copied). */
export interface AdoptedNotification {
  eventId: string;
  channel: string;
  event: string;
  ticketId: string;
  createdAt: number;
  body: string;
  target: string | null;
}

/** A row flipped to this instance: its previous holder and the body it left. */
type Moved = { id: string; prev: string; body: string };

/** PostgreSQL's clock in epoch ms (a notification's claim is on it, ADR 0179). */
const NOW = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/** Ids per statement: PostgreSQL takes many parameters, but a bounded list keeps plans simple. */
const CHUNK = 500;

/**
 * Alarms and tickets live only on the owner of their device's partition (ADR 0160). The cluster
 * member calls `evict` when it stops processing partitions (synchronously, before anything else can
 * act on them), `flush` before a graceful hand-over gives the leases back, and `adopt` when it takes
 * partitions, after it claimed them and before their readings are replayed: the open records of
 * those partitions are taken over in the shared view (their `instance_id` flipped to this instance
 * in one transaction, after which the previous holder's late writes are fenced, ADR 0160) and
 * imported into this instance's stores and services.
 */
export class PartitionRecords implements Component {
  readonly name = 'cluster records';
  private counts = {
    adoptedAlarms: 0,
    adoptedTickets: 0,
    fromLocal: 0,
    evictedAlarms: 0,
    evictedTickets: 0,
    /** Alarms closed as duplicates of their condition's kept alarm, and tickets merged with them. */
    duplicateAlarms: 0,
    mergedTickets: 0,
    /** Undelivered notifications taken from a dead instance (rows taken in the view). */
    adoptedNotifications: 0,
  };

  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;
  /** Tickets made here for a device another member owns: let go of after the turn that made them. */
  private readonly strays = new Set<string>();
  private lastError?: string;

  constructor(private readonly o: PartitionRecordsOptions) {}

  /**
   * A WorkOrderService change listener: a ticket created here for a device whose partition another
   * member processes is let go of (at the end of this turn, outside the service's commit), so that
   * exactly one instance escalates it: its partition's owner, which takes it at its next sweep.
   */
  onTicket = (e: { type: string; ticket: Ticket }): void => {
    const owns = this.o.owns;
    if (e.type !== 'created' || !owns || owns(e.ticket.site, e.ticket.device ?? '')) return;
    if (this.strays.size === 0)
      setImmediate(() => {
        const ids = new Set(this.strays);
        this.strays.clear();
        this.counts.evictedTickets += this.o.tickets?.evict((t) => ids.has(t.id)).length ?? 0;
      });
    this.strays.add(e.ticket.id);
  };

  /** Drops from the services what belongs to `parts` (every record when `parts` is undefined). */
  evict(parts?: ReadonlySet<number>): void {
    const mine = (site: string, device: string | null) =>
      parts === undefined || parts.has(this.o.partitionOf(site, device ?? ''));
    this.counts.evictedAlarms += this.o.alarms.evict((a) => mine(a.site, a.device)).length;
    this.counts.evictedTickets += this.o.tickets?.evict((t) => mine(t.site, t.device)).length ?? 0;
  }

  /** This instance's queued changes into the shared view, waiting at most `waitMs`. */
  async flush(waitMs: number): Promise<void> {
    if (!(await this.o.writer.flushed(waitMs)))
      this.o.log.warn(
        { waitMs },
        'handing partitions over before every change reached the shared view; the next owner adopts the last copy written',
      );
  }

  /** The sweep (the cluster member drives everything else; health shows what moved). */
  async start(): Promise<void> {
    const every = this.o.sweepMs ?? 5000;
    if (every <= 0 || !this.o.owned || !this.o.db) return;
    this.timer = setInterval(() => {
      this.sweeping ??= this.sweep().finally(() => (this.sweeping = undefined));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  health(): ComponentHealth {
    if (this.lastError !== undefined)
      return { state: 'degraded', detail: `records sweep: ${this.lastError}`, ...this.counts };
    return { state: 'ok', ...this.counts };
  }

  /**
   * Takes the open records of the partitions processed here that another instance holds: made
   * elsewhere for a device of ours, or copied by a restarted instance from its files after it lost
   * the partition. Their holder does not act on them (it does not process their partition).
   */
  async sweep(): Promise<void> {
    const parts = this.o.owned?.() ?? [];
    if (parts.length === 0 || !this.o.db) return;
    try {
      await this.take(this.o.db(), parts, true);
      this.lastError = undefined;
    } catch (err) {
      if (this.lastError === undefined)
        this.o.log.warn({ err: (err as Error).message }, 'records sweep failed; tried again');
      this.lastError = (err as Error).message;
    }
  }

  /** Takes the open alarms and unclosed tickets of `parts` (see the class comment). */
  async adopt(db: Kysely<object>, parts: readonly number[]): Promise<void> {
    if (parts.length === 0) return;
    // A change of ours still queued (the start's resync of alarms.db among them) would otherwise
    // be written after the adoption and, the row then being ours, overwrite the adopted copy.
    if (!(await this.o.writer.flushed(this.o.flushMs ?? 5000)))
      this.o.log.warn('taking partitions over while changes of ours still wait for the shared view');
    await this.backfill(db.withTables<ViewTables>());
    await this.take(db, parts, false);
  }

  /** The flip in the view, then the import; `foreign`: only records another instance holds. */
  private async take(db: Kysely<object>, parts: readonly number[], foreign: boolean): Promise<void> {
    const me = this.o.instanceId;
    const v = db.withTables<ViewTables>();
    const got = await v.transaction().execute(async (tx) => {
      // First, and locked for the transaction: only partitions whose lease is still ours.
      // (A transaction is a Kysely over the same tables; the cluster's query adds its own.)
      const held = this.o.leased ? await this.o.leased(tx as unknown as Kysely<object>, parts) : parts;
      if (held.length === 0)
        return {
          alarms: [] as Moved[],
          tickets: [] as Moved[],
          trails: new Map<string, HistoryEntry[]>(),
          events: new Map<string, AlarmHistoryRow[]>(),
          notes: [] as AdoptedNotification[],
        };
      let qa = tx
        .selectFrom('view_alarms')
        .select(['id', 'instance_id'])
        .where('partition', 'in', held)
        .where('state', 'in', OPEN_ALARM_STATES);
      let qt = tx
        .selectFrom('view_tickets')
        .select(['id', 'instance_id'])
        .where('partition', 'in', held)
        .where('status', '!=', 'closed');
      if (foreign) {
        qa = qa.where('instance_id', '!=', me);
        qt = qt.where('instance_id', '!=', me);
      }
      const alarmRows = await qa.execute();
      const ticketRows = await qt.execute();
      const prevOf = new Map([...alarmRows, ...ticketRows].map((r) => [r.id, r.instance_id]));
      const alarms: Moved[] = [];
      for (const ids of chunks(alarmRows.map((r) => r.id))) {
        // The flip takes the rows' locks: a write of the previous holder in flight finishes first,
        // and the body returned is the one it left.
        const rows = await tx
          .updateTable('view_alarms')
          .set({ instance_id: me })
          .where('id', 'in', ids)
          .where('partition', 'in', held)
          .returning(['id', 'body'])
          .execute();
        for (const r of rows) alarms.push({ ...r, prev: prevOf.get(r.id) ?? '' });
      }
      const tickets: Moved[] = [];
      for (const ids of chunks(ticketRows.map((r) => r.id))) {
        const rows = await tx
          .updateTable('view_tickets')
          .set({ instance_id: me })
          .where('id', 'in', ids)
          .where('partition', 'in', held)
          .returning(['id', 'body'])
          .execute();
        for (const r of rows) tickets.push({ ...r, prev: prevOf.get(r.id) ?? '' });
      }
      // The audit trails of the tickets taken from another instance's copy (the body has none).
      const trails = new Map<string, HistoryEntry[]>();
      for (const ids of chunks(tickets.filter((t) => t.prev !== me).map((t) => t.id))) {
        const rows = await tx
          .selectFrom('view_ticket_entries')
          .select(['ticket_id', 'idx', 'body'])
          .where('ticket_id', 'in', ids)
          .orderBy('ticket_id')
          .orderBy('idx')
          .execute();
        for (const r of rows) {
          const list = trails.get(r.ticket_id) ?? trails.set(r.ticket_id, []).get(r.ticket_id)!;
          if (r.idx !== list.length)
            this.o.log.warn(
              { ticket: r.ticket_id, expected: list.length, found: r.idx },
              'a gap in the audit trail copied to the shared view',
            );
          list.push(JSON.parse(r.body) as HistoryEntry);
        }
      }
      // The events of the alarms taken from another instance: their history on this instance.
      const events = new Map<string, AlarmHistoryRow[]>();
      for (const ids of chunks(alarms.filter((a) => a.prev !== me).map((a) => a.id))) {
        const rows = await tx
          .selectFrom('view_alarm_events')
          .select(['alarm_id', 'body'])
          .where('alarm_id', 'in', ids)
          .orderBy('ts')
          .orderBy('change_seq')
          .execute();
        for (const r of rows)
          (events.get(r.alarm_id) ?? events.set(r.alarm_id, []).get(r.alarm_id)!).push(
            JSON.parse(r.body) as AlarmHistoryRow,
          );
      }
      const notes = await this.takeNotifications(tx, held);
      return { alarms, tickets, trails, events, notes };
    });
    // A sweep that overlapped the loss of a partition: its records are not held here (the view names
    // this instance until the next owner adopts them, which takes them whoever the view names).
    const still = foreign ? new Set(this.o.owned?.() ?? []) : undefined;
    const kept = (site: string, device: string | null) =>
      still === undefined || still.has(this.o.partitionOf(site, device ?? ''));
    const alarms: Alarm[] = [];
    const ownActive: Alarm[] = [];
    /** Active alarms taken from another holder's copy (their ticket was made there, or its copy lost). */
    const foreignActive: Alarm[] = [];
    for (const r of got.alarms) {
      // Ours in the view: alarms.db is at least as fresh as its copy.
      const local = r.prev === me ? this.o.alarms.stored(r.id) : undefined;
      const a = local ?? (JSON.parse(r.body) as Alarm);
      if (!kept(a.site, a.device)) continue;
      if (local) this.counts.fromLocal++;
      alarms.push(a);
      if (a.state === 'active-unacknowledged' || a.state === 'active-acknowledged')
        (local ? ownActive : foreignActive).push(a);
    }
    const tickets: Ticket[] = [];
    for (const r of got.tickets) {
      const local = r.prev === me ? this.o.tickets?.stored(r.id) : undefined;
      const t = local ?? {
        ...(JSON.parse(r.body) as Omit<Ticket, 'history'>),
        history: got.trails.get(r.id) ?? [],
      };
      if (!kept(t.site, t.device)) continue;
      if (local) this.counts.fromLocal++;
      tickets.push(t);
    }
    const history = new Map<string, AlarmEvent[]>();
    for (const a of alarms) {
      const rows = got.events.get(a.id);
      if (rows)
        history.set(
          a.id,
          rows.map((h) => eventOf(a, h)),
        );
    }
    // Tickets first: the alarm events the adoption makes (a shelf put over an adopted alarm, or
    // lifted from it) are applied to the work orders with the partition's tickets already held here.
    this.o.tickets?.adopt(tickets);
    if (got.notes.length > 0) {
      // Taken in the view: this instance delivers them now (their former holder's word is fenced).
      this.counts.adoptedNotifications += got.notes.length;
      this.o.notifications?.adopt(got.notes);
    }
    const dups = this.o.alarms.adopt(alarms, history);
    // Two active alarms of one condition (a member cut off from PostgreSQL raised it while the next
    // owner raised it again): the alarms closed the later one; its ticket goes into the kept one's.
    if (dups.length > 0) {
      this.counts.duplicateAlarms += dups.length;
      try {
        this.counts.mergedTickets += this.o.tickets?.mergeDuplicates(dups) ?? 0;
      } catch (err) {
        // The take stands (the alarms are moved and closed); the second ticket stays listed open.
        this.o.log.error({ err, alarms: dups.map((d) => d.duplicate.id) }, 'duplicate tickets not merged');
      }
    }
    const closed = new Set(dups.map((d) => d.duplicate.id));
    // An alarm of ours whose ticket a power cut took gets it now (what reconcileAlarms did at start
    // before cluster mode); alarms from another holder had their ticket made there.
    const reconcile = ownActive.filter((a) => !closed.has(a.id));
    // An alarm from another holder listed by no ticket in the view: its former holder was killed
    // between copying the alarm and copying its ticket (two batches of its writer, ADR 0173).
    if (this.o.tickets) {
      const listed = new Set(tickets.flatMap((t) => t.alarmIds));
      const bare = foreignActive.filter((a) => !closed.has(a.id) && !listed.has(a.id));
      if (bare.length > 0) reconcile.push(...(await this.unticketed(db, bare)));
    }
    if (reconcile.length > 0) this.o.tickets?.reconcileAlarms(reconcile);
    this.counts.adoptedAlarms += alarms.length;
    this.counts.adoptedTickets += tickets.length;
    if (alarms.length + tickets.length > 0)
      this.o.log.info(
        {
          partitions: parts.length,
          alarms: alarms.length,
          tickets: tickets.length,
          from: [...new Set([...got.alarms, ...got.tickets].map((r) => r.prev).filter((p) => p !== me))],
        },
        'alarms and tickets taken over with their partitions',
      );
  }

  /**
   * The pending notifications of the tickets of `held` (closed ones too: their last event may be
   * undelivered) whose holder is not a live member: it crashed and does not deliver them. Their
   * `instance_id` is flipped here, in the take's transaction; on a graceful hand-over the old holder
   * is alive and keeps delivering its own rows. Without `live` and `notifications`: none.
   */
  /**
   * Of `list`, the alarms no ticket in the view lists, closed ones included (a ticket closed while its
   * alarm stays active is not made again). Rare: usually every adopted alarm's ticket came along.
   */
  private async unticketed(db: Kysely<object>, list: readonly Alarm[]): Promise<Alarm[]> {
    // One statement for all of them (a kill during a burst can leave many): the tickets that name
    // any of these alarms at its site; which alarm each names is then read from the bodies here.
    const named = await db
      .withTables<ViewTables>()
      .selectFrom('view_tickets')
      .select(['site', 'body'])
      .where((eb) =>
        eb.or(list.map((a) => eb.and([eb('site', '=', a.site), eb('body', 'like', `%"${a.id}"%`)]))),
      )
      .execute();
    const out = list.filter((a) => !named.some((t) => t.site === a.site && t.body.includes(`"${a.id}"`)));
    if (out.length > 0)
      this.o.log.warn(
        { alarms: out.map((a) => a.id) },
        'adopted alarms whose ticket never reached the shared view: raised here',
      );
    return out;
  }

  private async takeNotifications(
    tx: Kysely<ViewTables>,
    held: readonly number[],
  ): Promise<AdoptedNotification[]> {
    if (!this.o.live || !this.o.notifications) return [];
    const me = this.o.instanceId;
    const rows = await tx
      .selectFrom('view_notifications as n')
      .innerJoin('view_tickets as t', 't.id', 'n.ticket_id')
      .select(['n.event_id', 'n.instance_id'])
      .where('t.partition', 'in', held)
      .where('n.state', '=', 'pending')
      .where('n.instance_id', '!=', me)
      // A row its holder is attempting now (it came back, ADR 0179) stays its own.
      .where((eb) => eb.or([eb('n.claimed_until', 'is', null), eb('n.claimed_until', '<', NOW)]))
      .execute();
    if (rows.length === 0) return [];
    const live = await this.o.live(tx as unknown as Kysely<object>);
    const dead = rows.filter((r) => !live.has(r.instance_id));
    const ids = [...new Set(dead.map((r) => r.event_id))];
    const out: AdoptedNotification[] = [];
    for (const chunk of chunks(ids)) {
      let q = tx
        .updateTable('view_notifications')
        .set({ instance_id: me, claimed_until: null })
        .where('event_id', 'in', chunk)
        .where('state', '=', 'pending')
        .where('instance_id', '!=', me)
        .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', NOW)]));
      if (live.size > 0) q = q.where('instance_id', 'not in', [...live]);
      const taken = await q
        .returning(['event_id', 'channel', 'event', 'ticket_id', 'created_at', 'body', 'target'])
        .execute();
      for (const r of taken)
        out.push({
          eventId: r.event_id,
          channel: r.channel,
          event: r.event,
          ticketId: r.ticket_id,
          createdAt: Number(r.created_at),
          body: r.body,
          target: r.target,
        });
    }
    if (out.length > 0)
      this.o.log.info(
        { notifications: out.length, from: [...new Set(dead.map((r) => r.instance_id))] },
        'undelivered notifications of a dead instance taken with its tickets',
      );
    return out;
  }

  /**
   * Rows written before the view had a partition column (null there) get it, once: computed here
   * from site and device, as the writer does (open records only; none after the first time).
   */
  private async backfill(v: Kysely<ViewTables>): Promise<void> {
    const alarms = await v
      .selectFrom('view_alarms')
      .select(['id', 'site', 'device'])
      .where('partition', 'is', null)
      .where('state', 'in', OPEN_ALARM_STATES)
      .execute();
    for (const a of alarms) {
      const p = this.o.partitionOf(a.site, a.device);
      await v.updateTable('view_alarms').set({ partition: p }).where('id', '=', a.id).execute();
    }
    const tickets = await v
      .selectFrom('view_tickets')
      .select(['id', 'site', 'device'])
      .where('partition', 'is', null)
      .where('status', '!=', 'closed')
      .execute();
    for (const t of tickets) {
      const p = this.o.partitionOf(t.site, t.device ?? '');
      await v.updateTable('view_tickets').set({ partition: p }).where('id', '=', t.id).execute();
    }
  }
}

/** A line of the view's alarm history as the alarm store records an event (its value: the alarm's latest). */
function eventOf(a: Alarm, h: AlarmHistoryRow): AlarmEvent {
  const e: AlarmEvent = {
    type: h.type as AlarmEventType,
    ts: h.ts,
    alarm: {
      ...a,
      severity: h.severity as Alarm['severity'],
      state: h.state as Alarm['state'],
      shelved: h.shelved === 1,
      suppressed: h.suppressed === 1,
    },
  };
  if (h.user !== null) e.user = h.user;
  if (h.userSubject !== null) e.userSubject = h.userSubject;
  if (h.note !== null) e.note = h.note;
  return e;
}

function* chunks(ids: readonly string[]): Generator<string[]> {
  for (let i = 0; i < ids.length; i += CHUNK) yield ids.slice(i, i + CHUNK);
}
