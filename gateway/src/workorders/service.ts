import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { Db } from '../storage/db.js';
import type { Alarm, AlarmEvent, DuplicateAlarm } from '../alarms/types.js';
import type { RuleClass } from '../rules/types.js';
import {
  applyAlarmEvent,
  incidentTicket,
  isQuiet,
  joinIncident,
  type AlarmTicketContext,
} from './alarm-tickets.js';
import { Changes } from './changes.js';
import { adoptKeptAlarm, mergeTicket, onlyFor } from './merge.js';
import type { DeliveryFailure, TicketEvent, TicketEventType, TicketNumbers } from './types.js';
import { ackOverdueLevel, escalate, escalationDue, skipUnreachable, type Breach } from './escalation.js';
import { addSlaTime, createsTicket, deadlinesOf, priorityOf } from './policy.js';
import type { Schedule } from './maintenance-schema.js';
import { workordersSchema, type WorkordersConfig } from './schema.js';
import { applyAction, isActive, type ActionRequest } from './state-machine.js';
import { TicketStore, type TicketFilter } from './store.js';
import {
  TicketError,
  type Priority,
  type ReadingsSnapshot,
  type Ticket,
  type TicketStatus,
} from './types.js';

/** What the service may know of a rule: its text (service item, standard) and the metric it watches. */
export interface RuleInfo {
  description?: string;
  metric?: string;
}

/** What the service may know of a device: where it is and its latest values. */
export interface DeviceInfo {
  location?: string;
  latest: Record<string, { value: number | boolean; ts: number }>;
}

/** A metric's history, for the readings snapshot (InfluxDB in the gateway). */
export type HistoryReader = (q: {
  site: string;
  device: string;
  kind: string;
  metric: string;
  from: number;
  to: number;
  limit: number;
}) => Promise<{ ts: number; value: number | boolean | string | null }[]>;

export interface WorkOrderServiceDeps {
  /** Opened by the caller with `openDb(file, WORKORDER_MIGRATIONS)`. */
  db: Db;
  /** The tickets' rows (default: a TicketStore over `db`); tests hand one that fails. */
  store?: TicketStore;
  config?: WorkordersConfig;
  log?: Logger;
  now?: () => number;
  ruleInfo?: (rule: string) => RuleInfo | undefined;
  deviceInfo?: (site: string, device: string) => DeviceInfo | undefined;
  /** Absent: snapshots hold the latest values only. */
  history?: HistoryReader;
  /**
   * Called with a change's events inside its transaction (the notification queue): what it writes
   * commits with the tickets or not at all. A throw rolls the change back.
   */
  inTransaction?: (events: readonly TicketEvent[]) => void;
  /** Cluster mode: numbers unique across the cluster (absent: the next after workorders.db's largest). */
  numbers?: TicketNumbers;
  /**
   * Cluster mode (ADR 0160 addendum): writes due escalations' new ticket states to the shared view
   * before they commit here; resolves to the ids it accepted (the others are held back). Absent: the
   * tick commits at once, as on a single instance.
   */
  confirm?: (tickets: readonly Ticket[], firstEntries?: ReadonlyMap<string, number>) => Promise<Set<string>>;
  /** Cluster mode: false while this member's leases are about to run out (people's actions refused, ADR 0173). */
  leaseFresh?: () => boolean;
  /** How long a tick (or a person's action, ADR 0173) waits for `confirm` before holding its escalations back (default 2000 ms). */
  confirmTimeoutMs?: number;
  /** Cluster mode: the instance the shared view names as the ticket's holder (a fenced action names it). */
  holderOf?: (id: string) => Promise<string | undefined>;
}

/** One tick's due escalations: the working copies, each ticket's breaches, the unreachable skips. */
interface Due {
  changes: Changes;
  breaches: Map<string, Breach[]>;
  unreachable: Set<string>;
}

export type { TicketEvent, TicketEventType };

export interface ManualTicket {
  title: string;
  site: string;
  device?: string;
  class?: RuleClass;
  priority?: Priority;
  serviceItem?: string;
  standard?: string;
  location?: string;
  note?: string;
}

/** A list's filter: the page size defaults to (and is capped at) `listLimit`, `now` to the service's clock. */
export type TicketQuery = Omit<TicketFilter, 'limit' | 'now'> & { limit?: number; now?: number };

const SYSTEM = 'system';

/**
 * Work orders: turns alarms into tickets by the configured policy (one open ticket per device and
 * rule), runs people's actions through the state machine, escalates missed deadlines on tick and
 * keeps everything in its own SQLite database. Listeners hear about every change after commit.
 */
export class WorkOrderService implements Component {
  readonly name = 'workorders';
  private cfg: WorkordersConfig;
  private readonly store: TicketStore;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  /**
   * Tickets not closed, by id: the ones alarms and the clock can still change. Exactly as stored:
   * a change is made on a copy and replaces the ticket here only once it has committed.
   */
  private readonly open = new Map<string, Ticket>();
  /**
   * Cluster mode (ADR 0160): tickets this instance held and handed on with their device's
   * partition. workorders.db keeps its last local copy, which is not the record any more.
   */
  private readonly away = new Set<string>();
  private readonly listeners = new Set<(e: TicketEvent) => void>();
  /** What the alarm path sees of the service. */
  private readonly alarmContext: AlarmTicketContext;
  private queue: AlarmEvent[] = [];
  private scheduled = false;
  private seq = 1;
  private readonly snapshotTimers = new Set<NodeJS.Timeout>();
  private started = false;
  /** A write-through of due escalations is under way (cluster mode). */
  private confirming = false;
  /** The last write-through failed (logged once until one succeeds). */
  private holding = false;
  private readonly confirmMs: number;
  /**
   * Cluster mode (ADR 0173): delivery failures whose escalation could not be written through yet
   * (PostgreSQL unreachable, or the ticket changed meanwhile), by ticket id: tried again each tick.
   */
  private readonly failuresHeld = new Map<string, DeliveryFailure>();
  /** Actions refused while their write to the shared view was unanswered: its correction, by ticket id. */
  private readonly lateWrites = new Map<string, Promise<void>>();
  private counts = {
    created: 0,
    alarmEvents: 0,
    escalations: 0,
    breaches: 0,
    listenerErrors: 0,
    errors: 0,
    missedWhileStopped: 0,
    /** Escalations past a contact who could not be reached (or did not acknowledge in time). */
    unreachable: 0,
    /** Active alarms found at start without their ticket, raised then (ADR 0091). */
    reconciled: 0,
    /** Cluster mode: due escalations not made at a tick (shared view unreachable, fenced, changed meanwhile). */
    escalationsHeld: 0,
    /** Cluster mode: tickets closed as duplicates of their condition's kept ticket (ADR 0160). */
    merged: 0,
  };

  constructor(private readonly deps: WorkOrderServiceDeps) {
    this.cfg = deps.config ?? workordersSchema.parse({});
    this.store = deps.store ?? new TicketStore(deps.db);
    this.now = deps.now ?? Date.now;
    this.log = deps.log;
    this.confirmMs = deps.confirmTimeoutMs ?? 2000;
    this.alarmContext = {
      cfg: this.cfg,
      now: () => this.now(),
      tickets: (changes) => this.ticketsSeenBy(changes),
      create: (e, incidentId, changes) => this.createFromAlarm(e, incidentId, changes),
    };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.seq = this.store.nextSeq();
    for (const t of this.store.unclosed()) this.open.set(t.id, t);
    this.log?.info({ open: this.open.size }, 'work orders restored');
  }

  async stop(): Promise<void> {
    this.flush();
    this.started = false;
    for (const t of this.snapshotTimers) clearTimeout(t);
    this.snapshotTimers.clear();
  }

  health(): ComponentHealth {
    let active = 0;
    for (const t of this.open.values()) if (isActive(t.status)) active++;
    return { state: this.started ? 'ok' : 'stopped', open: this.open.size, active, ...this.counts };
  }

  onChange(fn: (e: TicketEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * An AlarmService listener. Events are handled at the end of the event-loop turn, as one batch:
   * an alarm's `group` event follows its `raise`, and the batch lets the raise join the incident's ticket.
   */
  onAlarmEvent = (e: AlarmEvent): void => {
    if (!this.started) {
      // Alarms stop after work orders: their last transitions find the database closed.
      this.counts.missedWhileStopped++;
      return;
    }
    this.queue.push(e);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  };

  /** Handles queued alarm events now. */
  flush(): void {
    this.scheduled = false;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      this.applyAlarmEvents(batch);
    } catch (err) {
      // Alarms are already stored; a failed ticket write is logged and counted, never thrown at the alarms.
      this.counts.errors++;
      this.log?.error({ err }, 'work orders: alarm events not applied');
    }
  }

  /** Applies alarm events (in order) to tickets in one transaction. */
  applyAlarmEvents(events: readonly AlarmEvent[]): TicketEvent[] {
    const incidentOf = new Map<string, string>();
    for (const e of events) if (e.type === 'group' && e.incident) incidentOf.set(e.alarm.id, e.incident.id);
    const changes = new Changes();
    for (const e of events) {
      this.counts.alarmEvents++;
      applyAlarmEvent(this.alarmContext, e, incidentOf, changes);
    }
    return this.commit(changes);
  }

  /**
   * Cluster mode (ADR 0170): alarms the shared grouping joined to `incidentId`, on whichever member
   * they are held, are added to the incident's ticket when it is held here (`incident-joined`
   * lines). Returns the alarm ids the ticket lists now, or undefined when the ticket is not here.
   */
  joinIncidentTicket(
    incidentId: string,
    joins: readonly { alarmId: string; device: string; ts: number }[],
  ): string[] | undefined {
    // The anchor alarm's `group` event, if still queued, makes the incident ticket first.
    this.flush();
    const changes = new Changes();
    const it = incidentTicket(this.ticketsSeenBy(changes), incidentId);
    if (!it) return undefined;
    const fresh = joins.filter((j) => !it.alarmIds.includes(j.alarmId));
    if (fresh.length > 0) {
      const t = changes.edit(it);
      for (const j of fresh) joinIncident(t, j.device, j.alarmId, j.ts, incidentId);
      this.commit(changes);
    }
    return joins.map((j) => j.alarmId);
  }

  /**
   * The contact chain from now on (an operator changed it, or the on-call rota turned): the next
   * escalation reaches the new contacts; escalations already sent keep the contact they named.
   */
  setContacts(contacts: WorkordersConfig['contacts']): void {
    this.cfg = { ...this.cfg, contacts };
  }

  /**
   * At start, after the alarms are restored: an active alarm that the policy tickets, not held back
   * by a shelf or window, and listed by no ticket, gets its ticket now. workorders.db commits the
   * changes made from alarm events without an fsync on the event loop (ADR 0091): a power cut may take
   * the last ticket while its alarm survived (or the alarm's event reached a stopped service), and
   * nothing else would raise it again. Returns how many were raised.
   */
  reconcileAlarms(active: Iterable<Alarm>): number {
    const missing: AlarmEvent[] = [];
    for (const a of active) {
      if (isQuiet(a) || !createsTicket(this.cfg, a)) continue;
      if (this.store.listsAlarm(a.site, a.rule, a.id)) continue;
      missing.push({ type: 'raise', ts: a.raisedAt, alarm: { ...a } });
    }
    if (missing.length === 0) return 0;
    const before = this.counts.created;
    this.applyAlarmEvents(missing);
    const raised = this.counts.created - before;
    this.counts.reconciled += raised;
    this.log?.warn({ alarms: missing.length, raised }, 'active alarms without their ticket: raised now');
    return raised;
  }

  /** Runs `fn`, which may open its own transaction on workorders.db, with its commits on disk when it returns. */
  durably<T>(fn: () => T): T {
    return this.store.durably(fn);
  }

  /**
   * Escalates every ticket whose deadline has passed. With `confirm` (cluster mode) the escalations
   * are made by `tickThrough` in the background and this returns nothing.
   */
  tick(now = this.now()): TicketEvent[] {
    if (this.deps.confirm) {
      void this.tickThrough(now);
      return [];
    }
    const due = this.dueChanges(now);
    const events = this.commit(due.changes);
    this.counted(due);
    return events;
  }

  /**
   * Cluster mode (ADR 0160 addendum): an escalation is written through. The due tickets' new rows
   * go to the shared view first (`confirm`, the fenced upsert); only those it accepted are committed
   * here (queueing their notifications), and only if nothing changed them meanwhile. The rest stay
   * as they are and are tried again at the next tick, by whoever holds them then: an instance cut off
   * from PostgreSQL escalates nothing, so the next holder cannot adopt an older level and notify a
   * level twice. One write-through at a time; a tick meanwhile does nothing. Resolves to what committed.
   */
  async tickThrough(now = this.now()): Promise<TicketEvent[]> {
    const confirm = this.deps.confirm;
    if (!confirm || this.confirming || !this.started) return [];
    this.retryFailures();
    const due = this.dueChanges(now);
    if (due.changes.size === 0) return [];
    // The live tickets the changes were made from: a change made from an older one is not committed.
    const from = new Map(due.changes.tickets().map((t) => [t.id, this.open.get(t.id)]));
    this.confirming = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${this.confirmMs} ms`)), this.confirmMs);
      });
      let accepted: Set<string>;
      try {
        accepted = await Promise.race([confirm(due.changes.tickets(), due.changes.firstEntries()), late]);
      } catch (err) {
        this.held(due.changes.size, (err as Error).message);
        return [];
      }
      if (this.holding) this.log?.info('shared view reachable again: escalations go on');
      this.holding = false;
      const stale = due.changes.keepOnly((id) => accepted.has(id) && this.open.get(id) === from.get(id));
      // Fenced (another instance holds the row) or changed meanwhile: not escalated here now.
      this.counts.escalationsHeld += stale;
      if (!this.started) return [];
      const events = this.commit(due.changes);
      this.counted(due, accepted);
      return events;
    } catch (err) {
      this.counts.errors++;
      this.log?.error({ err }, 'escalation not stored');
      return [];
    } finally {
      clearTimeout(timer);
      this.confirming = false;
    }
  }

  /** Escalations held back because the shared view could not confirm them (logged once per outage). */
  private held(tickets: number, why: string): void {
    this.counts.escalationsHeld += tickets;
    if (this.holding) return;
    this.holding = true;
    this.log?.warn(
      { tickets, err: why },
      'escalations held back: the shared view cannot be written (tried again every tick)',
    );
  }

  /** The escalations due by `now`, as working copies (nothing counted or logged yet). */
  private dueChanges(now: number): Due {
    const changes = new Changes();
    const breaches = new Map<string, Breach[]>();
    const unreachable = new Set<string>();
    for (const live of this.open.values()) {
      if (!isActive(live.status) || !escalationDue(live, now)) continue;
      const t = changes.edit(live, 'escalated');
      breaches.set(t.id, escalate(t, now, this.cfg));
    }
    for (const live of this.open.values()) {
      if (!isActive(live.status)) continue;
      const cur = changes.get(live.id) ?? live;
      const level = ackOverdueLevel(cur, now, this.cfg);
      if (level === undefined) continue;
      const min = this.cfg.escalation.ackTimeoutMin;
      if (
        skipUnreachable(
          changes.edit(live, 'escalated'),
          level,
          now,
          this.cfg,
          `not acknowledged within ${min} min`,
        )
      )
        unreachable.add(live.id);
    }
    return { changes, breaches, unreachable };
  }

  /** Counts and logs the escalations of `due` that committed (`only`: those ids). */
  private counted(due: Due, only?: Set<string>): void {
    for (const [id, list] of due.breaches) {
      if (only && !only.has(id)) continue;
      const t = due.changes.get(id);
      if (!t) continue;
      this.counts.escalations += list.length;
      this.counts.breaches += list.length;
      this.log?.warn(
        { ticket: id, level: t.escalationLevel, breaches: list.map((b) => b.kind) },
        'work order escalated',
      );
    }
    for (const id of due.unreachable)
      if ((!only || only.has(id)) && due.changes.get(id)) this.counts.unreachable++;
  }

  /**
   * A NotificationService failure listener: news of an escalation that cannot be delivered to the
   * contact of the ticket's level (parked as dead, or failed `escalation.afterFailures` times) moves
   * the ticket to the next level at once. Failures are never thrown back at the delivery worker.
   */
  onDeliveryFailure = (f: DeliveryFailure): void => {
    const esc = this.cfg.escalation;
    if (!this.started || f.level === undefined) return;
    if (!((f.dead && esc.onDead) || (esc.afterFailures > 0 && f.attempts >= esc.afterFailures))) return;
    const live = this.open.get(f.ticketId);
    if (!live || !isActive(live.status) || live.escalationLevel !== f.level) return;
    const changes = new Changes();
    const why = f.dead
      ? `${f.channel} gave up after ${f.attempts} attempts: ${f.error}`
      : `${f.channel} failed ${f.attempts} times: ${f.error}`;
    if (
      !skipUnreachable(changes.edit(live, 'escalated'), f.level, this.now(), this.cfg, why, {
        channel: f.channel,
      })
    )
      return;
    if (this.deps.confirm) {
      void this.failureThrough(f, changes, live, this.deps.confirm);
      return;
    }
    this.commitFailure(f, changes);
  };

  private commitFailure(f: DeliveryFailure, changes: Changes): void {
    try {
      this.commit(changes);
      this.counts.unreachable++;
      this.log?.warn(
        { ticket: f.ticketId, from: f.level, channel: f.channel },
        'contact not reached: escalated',
      );
    } catch (err) {
      this.counts.errors++;
      this.log?.error({ err, ticket: f.ticketId }, 'escalation past an unreachable contact not stored');
    }
  }

  /**
   * Cluster mode (ADR 0173): an escalation past an unreachable contact is written through like one
   * made by the tick: the shared view first, then the local commit (which queues its notification).
   * PostgreSQL unreachable or the ticket changed meanwhile: held (counted in `escalationsHeld`) and
   * tried again at the next tick, where the level check drops it once the ticket has moved on, so it
   * fires at most once. Fenced: another instance holds the ticket, which escalates it there.
   */
  private async failureThrough(
    f: DeliveryFailure,
    changes: Changes,
    from: Ticket,
    confirm: NonNullable<WorkOrderServiceDeps['confirm']>,
  ): Promise<void> {
    this.failuresHeld.delete(f.ticketId);
    let accepted: Set<string>;
    try {
      accepted = await this.within(confirm(changes.tickets(), changes.firstEntries()));
    } catch (err) {
      this.failuresHeld.set(f.ticketId, f);
      this.held(1, (err as Error).message);
      return;
    }
    if (!accepted.has(f.ticketId)) {
      this.counts.escalationsHeld++;
      return;
    }
    if (this.open.get(f.ticketId) !== from) {
      // Changed meanwhile: the next tick looks again at the ticket as it is then.
      this.counts.escalationsHeld++;
      this.failuresHeld.set(f.ticketId, f);
      return;
    }
    if (this.started) this.commitFailure(f, changes);
  }

  /** Delivery failures held back (cluster mode), handled again now. */
  private retryFailures(): void {
    if (this.failuresHeld.size === 0) return;
    const list = [...this.failuresHeld.values()];
    this.failuresHeld.clear();
    for (const f of list) this.onDeliveryFailure(f);
  }

  /** `p`, or a rejection after `confirmTimeoutMs` (a PostgreSQL cut without a reset would hang). */
  private async within<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.confirmMs} ms`)), this.confirmMs);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A person's action on a ticket (CONTRACT.md actions). Made on a copy: the ticket in memory
   * changes only once the change has committed, so a failed write leaves both as they were.
   */
  act(id: string, req: ActionRequest, alsoInTransaction?: () => void): Ticket {
    const cur = this.actable(id);
    const changes = new Changes();
    const t = changes.edit(cur);
    applyAction(t, req, this.now(), this.cfg);
    this.commit(changes, alsoInTransaction, true);
    return structuredClone(t);
  }

  /** Whether a person's action is written through to the shared view first (cluster mode, ADR 0173). */
  get writesThrough(): boolean {
    return this.deps.confirm !== undefined;
  }

  /**
   * Cluster mode (ADR 0173): a person's action answered only once the shared view has it. The
   * changed ticket's row and its new audit entries go to PostgreSQL first (the writer's fenced
   * upsert), then it commits here (with `alsoInTransaction`). Fenced (another instance holds the
   * ticket now): 503 GW_ERR_HOLDER_UNAVAILABLE, nothing committed, and the ticket is let go of here
   * so that a retry is forwarded to its holder. PostgreSQL not reachable: 503 GW_ERR_UNAVAILABLE,
   * nothing committed. An invalid action is refused before anything is written. Without `confirm`:
   * `act`.
   */
  async actThrough(id: string, req: ActionRequest, alsoInTransaction?: () => void): Promise<Ticket> {
    const confirm = this.deps.confirm;
    if (!confirm) return this.act(id, req, alsoInTransaction);
    this.actable(id);
    // An earlier action on this ticket refused for want of an answer may still land: it is put
    // right first (see below), so that its late correction cannot overwrite this one.
    const earlier = this.lateWrites.get(id);
    if (earlier)
      await this.within(earlier).catch((err: Error) => {
        throw new TicketError(
          'GW_ERR_UNAVAILABLE',
          `ticket ${id}: the action was not made, an earlier action's write to the cluster's shared view (PostgreSQL) is still unanswered: ${err.message}`,
          503,
        );
      });
    const cur = this.actable(id);
    if (this.deps.leaseFresh && !this.deps.leaseFresh())
      throw new TicketError(
        'GW_ERR_HOLDER_UNAVAILABLE',
        `ticket ${id}: this cluster instance's lease is about to run out; the action was not made; try again`,
        503,
      );
    const now = this.now();
    const changes = new Changes();
    const t = changes.edit(cur);
    applyAction(t, req, now, this.cfg);
    let accepted: Set<string>;
    const written = confirm([t], changes.firstEntries());
    try {
      accepted = await this.within(written);
    } catch (err) {
      // A write that lands after the refusal would show an action nobody made: once it does, the
      // row and the trail from the action's line on are written again as the ticket is here then
      // (lines past the local trail are dropped); the next action on it waits for that.
      const from = cur.history.length;
      const late: Promise<void> = written
        .then(async (got) => {
          const back = got.has(id) ? (this.open.get(id) ?? this.store.get(id)) : undefined;
          if (back) await confirm([back], new Map([[id, from]]));
        })
        .catch((e: Error) =>
          this.log?.warn(
            { ticket: id, err: e.message },
            'refused action left in the shared view; its next change copies it',
          ),
        )
        .finally(() => {
          if (this.lateWrites.get(id) === late) this.lateWrites.delete(id);
        });
      this.lateWrites.set(id, late);
      throw new TicketError(
        'GW_ERR_UNAVAILABLE',
        `ticket ${id}: the action was not made, the cluster's shared view (PostgreSQL) cannot be written now: ${(err as Error).message}`,
        503,
      );
    }
    if (!accepted.has(id)) {
      this.letGo(id);
      const ask = this.deps.holderOf;
      const holder = ask ? await this.within(ask(id)).catch(() => undefined) : undefined;
      throw new TicketError(
        'GW_ERR_HOLDER_UNAVAILABLE',
        `ticket ${id} is held by ${holder ? `cluster instance "${holder}"` : 'another cluster instance'} now; the action was not made here; try again`,
        503,
        holder ? { holder } : undefined,
      );
    }
    const live = this.open.get(id) ?? (this.away.has(id) ? undefined : this.store.get(id));
    // Handed on meanwhile: the view has the action, and the next holder adopts it from there.
    if (!live) return structuredClone(t);
    let done = changes;
    let out = t;
    // A ticket held in memory is replaced on every commit: the same object is the same ticket.
    if (live !== cur && (this.open.has(id) || !sameTicket(live, cur))) {
      // Changed meanwhile (an alarm event, an escalation): the action is made on what is here now.
      done = new Changes();
      out = done.edit(live);
      try {
        applyAction(out, req, now, this.cfg);
      } catch (err) {
        this.restoreView(confirm, live);
        throw err;
      }
    }
    try {
      this.commit(done, alsoInTransaction, true);
    } catch (err) {
      this.restoreView(confirm, live);
      throw err;
    }
    // Made again on a newer copy: the view's row and the trail lines written from the older one are
    // corrected (the queue does not overwrite a line already there).
    if (done !== changes) this.restoreView(confirm, out, cur.history.length);
    return structuredClone(out);
  }

  /** The ticket a person's action applies to, or why there is none here. */
  private actable(id: string): Ticket {
    if (!this.open.has(id) && this.away.has(id))
      throw new TicketError(
        'GW_ERR_HOLDER_UNAVAILABLE',
        `ticket ${id} is being handed over to another cluster instance; try again`,
        503,
      );
    const cur = this.open.get(id) ?? this.store.get(id);
    if (!cur) throw new TicketError('GW_ERR_TICKET_NOT_FOUND', `ticket ${id} not found`, 404);
    return cur;
  }

  /**
   * The view's row (and trail lines from `from`) made the local ticket `t` again: after an action
   * written through was not committed here, or was made again on a newer copy.
   */
  private restoreView(confirm: NonNullable<WorkOrderServiceDeps['confirm']>, t: Ticket, from?: number): void {
    confirm([t], from === undefined ? undefined : new Map([[t.id, from]])).catch((err: Error) =>
      this.log?.warn(
        { ticket: t.id, err: err.message },
        'shared view row not restored; the next change copies it',
      ),
    );
  }

  /**
   * Cluster mode: the shared view says another instance holds `id` now (a write was fenced): it is
   * dropped from memory as at a hand-over, so that an action on it is forwarded to the holder.
   */
  private letGo(id: string): void {
    if (!this.open.delete(id)) return;
    this.away.add(id);
    this.log?.warn({ ticket: id }, 'ticket held by another cluster instance now: let go of here');
  }

  /** A ticket raised by hand (CONTRACT.md `POST /api/tickets`). */
  create(m: ManualTicket, actor: string): Ticket {
    const now = this.now();
    const cls = m.class ?? 'routine';
    const priority = m.priority ?? priorityOf(this.cfg, { class: cls, severity: null, critical: false });
    const changes = new Changes();
    const t = this.newTicket(changes, {
      now,
      title: m.title,
      site: m.site,
      device: m.device ?? null,
      rule: null,
      cls,
      severity: null,
      priority,
      critical: false,
      requester: actor,
      serviceItem: m.serviceItem ?? m.title,
      standard: m.standard ?? null,
      location: m.location ?? null,
      readings: null,
      alarmId: null,
    });
    t.history.push({ ts: now, actor, action: 'create', from: null, to: 'open', note: m.note ?? null });
    this.commit(changes, undefined, true);
    return structuredClone(t);
  }

  /**
   * One occurrence of a preventive-maintenance schedule, due at `dueAt`: a ticket whose deadlines
   * count from then. `alsoInTransaction` runs in the ticket's transaction (the planner's next due time).
   */
  createMaintenance(
    s: Schedule,
    target: { site: string; device: string | null; location?: string },
    dueAt: number,
    alsoInTransaction?: () => void,
    /** The series' time of an occurrence an operator moved to `dueAt`. */
    movedFrom?: number,
  ): Ticket {
    const now = this.now();
    const changes = new Changes();
    const t = this.newTicket(changes, {
      now,
      title: `${s.title} (${target.site}${target.device ? `/${target.device}` : ''})`,
      site: target.site,
      device: target.device,
      rule: `pm:${s.id}`,
      cls: 'routine',
      severity: null,
      priority: s.priority,
      critical: false,
      requester: SYSTEM,
      serviceItem: s.title,
      standard: s.standard ?? null,
      location: target.location ?? null,
      readings: null,
      alarmId: null,
    });
    t.responseDueAt = addSlaTime(this.cfg, s.priority, dueAt, this.cfg.sla[s.priority].respondMin * 60_000);
    t.resolveDueAt = dueAt + s.windowHours * 3_600_000;
    t.nextResponseCheckAt = t.responseDueAt;
    t.nextResolveCheckAt = t.resolveDueAt;
    t.maintenance = { schedule: s.id, dueAt, form: s.form, record: null, missedAt: null };
    t.history.push({
      ts: now,
      actor: SYSTEM,
      action: 'create',
      from: null,
      to: 'open',
      note:
        `preventive maintenance ${s.id} due ${new Date(dueAt).toISOString()}` +
        (movedFrom === undefined ? '' : ` (moved from ${new Date(movedFrom).toISOString()})`),
    });
    this.commit(changes, alsoInTransaction);
    return structuredClone(t);
  }

  get(id: string): Ticket | undefined {
    const t = this.open.get(id);
    if (t) return structuredClone(t);
    return this.away.has(id) ? undefined : this.store.get(id);
  }

  /**
   * Cluster mode (ADR 0160): drops from memory the unclosed tickets `which` selects (their device's
   * partition is no longer processed here). Alarm events already queued are applied first. The
   * escalation and SLA tick, alarm events and delivery failures no longer touch them here.
   * Notifications already queued in workorders.db for them are still delivered from here.
   */
  evict(which: (t: Ticket) => boolean): Ticket[] {
    this.flush();
    const out: Ticket[] = [];
    for (const t of this.open.values()) {
      if (!which(t)) continue;
      this.open.delete(t.id);
      this.away.add(t.id);
      out.push(t);
    }
    if (out.length > 0) this.log?.info({ tickets: out.length }, 'tickets handed on with their partition');
    return out;
  }

  /**
   * Cluster mode (ADR 0160): takes unclosed tickets, with their whole audit trail, the same id,
   * number, escalation level and due times, from the previous holder (the shared view's copy) or
   * from workorders.db: stored here (replacing this file's older copy) and held in memory, so that
   * the escalation tick carries on from the level reached and alarm events find them.
   */
  adopt(list: readonly Ticket[]): void {
    if (list.length === 0) return;
    this.flush();
    this.store.tx(() => {
      for (const t of list) this.store.replace(t);
    });
    for (const t of list) {
      this.away.delete(t.id);
      if (t.status === 'closed') continue;
      this.open.set(t.id, structuredClone(t));
    }
  }

  /**
   * Cluster mode (ADR 0160 addendum): after an adoption closed alarms as duplicates of others of their
   * condition, a ticket standing only for a duplicate is merged into the kept alarm's ticket (closed
   * by `system`, its alarm ids moved, a line in both trails), so one ticket per condition remains.
   * Without a ticket for the kept alarm here, the duplicate's ticket stays and stands for it. One
   * durable transaction; returns how many tickets were merged away.
   */
  mergeDuplicates(pairs: readonly DuplicateAlarm[]): number {
    if (pairs.length === 0) return 0;
    this.flush();
    const now = this.now();
    const changes = new Changes();
    let merged = 0;
    const unclosed = () => [...this.ticketsSeenBy(changes)].filter((t) => t.status !== 'closed');
    for (const dup of pairs) {
      const from = unclosed().find((t) => onlyFor(t, dup));
      if (!from) continue;
      const k = dup.kept;
      const others = unclosed().filter((t) => t.id !== from.id);
      const into =
        others.find((t) => t.alarmIds.includes(k.id)) ??
        others.find((t) => t.site === k.site && t.device === k.device && t.rule === k.rule);
      if (!into) {
        adoptKeptAlarm(changes.edit(from), dup, now);
        continue;
      }
      mergeTicket(changes.edit(from), changes.edit(into), dup, now, this.cfg);
      merged++;
      this.log?.warn({ ticket: from.id, into: into.id }, 'duplicate ticket of one condition merged');
    }
    this.commit(changes, undefined, true);
    this.counts.merged += merged;
    return merged;
  }

  /** workorders.db's copy of a ticket with its audit trail, held here or not (ADR 0160). */
  stored(id: string): Ticket | undefined {
    return this.store.get(id);
  }

  /** Whether this instance holds the ticket now (in memory: not closed, not handed on). */
  holds(id: string): boolean {
    return this.open.has(id);
  }

  /** The most tickets a page holds (`workorders.listLimit`). */
  get listLimit(): number {
    return this.cfg.listLimit;
  }

  /** Every ticket not closed, with its audit trail (copies): what the cluster view copies at start. */
  unclosed(): Ticket[] {
    return [...this.open.values()].map((t) => structuredClone(t));
  }

  list(f: TicketQuery): Ticket[] {
    return this.page(f).tickets;
  }

  /**
   * A page of tickets, how many match, and the page size used (the asked one, at most
   * `workorders.listLimit`); `overdue` is judged by the service's clock.
   */
  page(f: TicketQuery): {
    tickets: Ticket[];
    total: number;
    limit: number;
  } {
    const limit = Math.min(f.limit ?? this.cfg.listLimit, this.cfg.listLimit);
    return { ...this.store.page({ ...f, limit, now: f.now ?? this.now() }), limit };
  }

  /** Tickets created before `to`, with their `escalate` and `close` lines only (the monthly report). */
  reportTickets(to: number): Ticket[] {
    return this.store.createdBefore(to);
  }

  /** Preventive-maintenance tickets due in `[from, to)` (the maintenance calendar). */
  maintenanceDue(from: number, to: number): Ticket[] {
    return this.store.maintenanceDue(from, to);
  }

  /** The unclosed tickets as an operation sees them: its working copies first, then the rest. */
  private *ticketsSeenBy(changes: Changes): Iterable<Ticket> {
    for (const t of this.open.values()) yield changes.get(t.id) ?? t;
    yield* changes.created();
  }

  private createFromAlarm(e: AlarmEvent, incidentId: string | null, changes: Changes): void {
    const a = e.alarm;
    const now = this.now();
    const rule = this.deps.ruleInfo?.(a.rule);
    const dev = this.deps.deviceInfo?.(a.site, a.device);
    const readings: ReadingsSnapshot = {
      alarmValue: a.value,
      metric: rule?.metric ?? null,
      latest: dev?.latest ?? {},
      takenAt: now,
    };
    const t = this.newTicket(changes, {
      now,
      title: `${a.message} (${a.site}/${a.device})`,
      site: a.site,
      device: a.device,
      rule: a.rule,
      cls: a.class,
      severity: a.severity,
      priority: priorityOf(this.cfg, a),
      critical: a.critical,
      requester: SYSTEM,
      serviceItem: rule?.description ?? a.rule,
      standard: standardOf(rule?.description),
      location: dev?.location ?? null,
      readings,
      alarmId: a.id,
    });
    t.incidentId = incidentId;
    const since = now - this.cfg.repeatWindowDays * 86_400_000;
    t.repeatOf = this.store.lastResolved(a.site, a.device, a.rule, since) ?? null;
    t.history.push({
      ts: now,
      actor: SYSTEM,
      action: 'create',
      from: null,
      to: 'open',
      note: `raised by alarm ${a.id}: ${a.message}${t.repeatOf ? `; repeat of ${t.repeatOf}` : ''}${heldBack(e)}`,
      data: { alarmId: a.id, value: a.value, severity: a.severity, repeatOf: t.repeatOf },
    });
    if (this.deps.history && readings.metric !== null) this.readHistory(t.id, a, readings.metric);
  }

  /** Adds the metric's last hour before the alarm to the ticket's snapshot, later and off the alarm path. */
  private readHistory(id: string, a: AlarmEvent['alarm'], metric: string): void {
    const snap = this.cfg.snapshot;
    const from = a.raisedAt - snap.historyMin * 60_000;
    const to = a.raisedAt;
    const timer = setTimeout(() => {
      this.snapshotTimers.delete(timer);
      this.deps.history!({
        site: a.site,
        device: a.device,
        kind: a.kind,
        metric,
        from,
        to,
        limit: snap.maxPoints,
      })
        .then(
          (points) => this.attachHistory(id, { history: points, historyFrom: from, historyTo: to }),
          (err: Error) =>
            this.attachHistory(id, { historyError: err.message, historyFrom: from, historyTo: to }),
        )
        .catch((err: unknown) => {
          this.counts.errors++;
          this.log?.error({ err, ticket: id }, 'readings snapshot not stored');
        });
    }, snap.delayMs);
    timer.unref();
    this.snapshotTimers.add(timer);
  }

  private attachHistory(id: string, part: Partial<ReadingsSnapshot>): void {
    const live = this.open.get(id);
    // Stopped meanwhile, or closed within seconds: the snapshot keeps its latest values only.
    if (!this.started || !live || !live.readings) return;
    const changes = new Changes();
    Object.assign(changes.edit(live).readings!, part);
    this.commit(changes);
  }

  private newTicket(
    changes: Changes,
    p: {
      now: number;
      title: string;
      site: string;
      device: string | null;
      rule: string | null;
      cls: RuleClass;
      severity: Ticket['severity'];
      priority: Priority;
      critical: boolean;
      requester: string;
      serviceItem: string;
      standard: string | null;
      location: string | null;
      readings: ReadingsSnapshot | null;
      alarmId: string | null;
    },
  ): Ticket {
    const d = deadlinesOf(this.cfg, p.priority, p.now);
    const seq = this.deps.numbers ? this.deps.numbers.next() : this.seq++;
    const t: Ticket = {
      id: `WO-${String(seq).padStart(6, '0')}`,
      title: p.title,
      status: 'open',
      priority: p.priority,
      openedPriority: p.priority,
      class: p.cls,
      severity: p.severity,
      site: p.site,
      device: p.device,
      rule: p.rule,
      alarmId: p.alarmId,
      alarmIds: p.alarmId ? [p.alarmId] : [],
      incidentId: null,
      devices: p.device ? [p.device] : [],
      serviceItem: p.serviceItem,
      standard: p.standard,
      location: p.location,
      requester: p.requester,
      critical: p.critical,
      readings: p.readings,
      conditionCleared: false,
      createdAt: p.now,
      updatedAt: p.now,
      ...d,
      respondedAt: null,
      resolvedAt: null,
      resolvedBy: null,
      verifiedAt: null,
      verifiedBy: null,
      closedAt: null,
      assignee: null,
      escalationLevel: 0,
      nextResponseCheckAt: d.responseDueAt,
      nextResolveCheckAt: d.resolveDueAt,
      breaches: { response: 0, resolve: 0 },
      repeatOf: null,
      onHold: false,
      heldSince: null,
      holdReason: null,
      clockPaused: false,
      heldMs: 0,
      heldSlaMs: 0,
      cycle: 1,
      cycleStartedAt: p.now,
      sla: { response: null, resolve: null },
      history: [],
    };
    changes.add(t, seq);
    return t;
  }

  /**
   * Writes an operation's changes in one transaction (with the notifications queued for them),
   * then makes its working copies the tickets in memory and tells the listeners. A failed write
   * changes nothing in memory and gives the new tickets' numbers back.
   */
  private commit(changes: Changes, alsoInTransaction?: () => void, durable = false): TicketEvent[] {
    if (changes.size === 0) return [];
    const events = changes.events();
    const write = () => {
      changes.save(this.store);
      alsoInTransaction?.();
      this.deps.inTransaction?.(events);
    };
    try {
      // A person's action is answered as done: on disk first. Alarm- and timer-made changes can be
      // made again after a power cut (reconcileAlarms, the next tick), so they skip the fsync (ADR 0091).
      if (durable) this.store.txDurable(write);
      else this.store.tx(write);
    } catch (err) {
      const seqs = changes.seqs();
      // A leased number is not given back: a gap is harmless, a number given twice is not.
      if (seqs.length > 0 && !this.deps.numbers) this.seq = Math.min(...seqs);
      throw err;
    }
    for (const t of changes.tickets()) {
      if (t.status === 'closed') this.open.delete(t.id);
      else this.open.set(t.id, t);
    }
    this.counts.created += changes.seqs().length;
    for (const e of events) {
      for (const fn of this.listeners) {
        try {
          fn(e);
        } catch (err) {
          this.counts.listenerErrors++;
          this.log?.error({ err, ticket: e.ticket.id }, 'ticket listener failed');
        }
      }
    }
    return events;
  }
}

/** Whether the stored (closed) ticket `b` is still the one `a` was (no change committed in between). */
function sameTicket(a: Ticket, b: Ticket): boolean {
  return (
    a === b || (a.updatedAt === b.updatedAt && a.status === b.status && a.history.length === b.history.length)
  );
}

/** Why a ticket comes later than its alarm: it was held back until now (audit trail). */
function heldBack(e: AlarmEvent): string {
  if (e.type === 'unshelve') return '; held back by a shelf until it ended';
  if (e.type === 'unsuppress') return '; held back by a maintenance window until it ended';
  return '';
}

/** The standard a rule cites in its description, e.g. "(std: GB 5749-2022 ...)". */
function standardOf(description: string | undefined): string | null {
  const m = description ? /\(((?:std|rule)[^)]*)\)/.exec(description) : null;
  return m ? m[1]! : null;
}

export type { TicketStatus };
