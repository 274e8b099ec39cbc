import { randomUUID } from 'node:crypto';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { Db } from '../storage/db.js';
import type { EngineSnapshot, RuleStateRow } from '../rules/snapshot.js';
import { severityRank, type Transition } from '../rules/types.js';
import { IncidentGrouper } from './grouping.js';
import { alarmsSchema, type AlarmsConfig } from './schema.js';
import { AlarmStore } from './store.js';
import {
  AlarmError,
  type Alarm,
  type AlarmEvent,
  type AlarmEventType,
  type DuplicateAlarm,
  type Incident,
  type ListQuery,
  type Shelf,
  type ShelveRequest,
  type WindowRequest,
} from './types.js';
import { buildShelf, buildWindow } from './quiet-requests.js';
import { coveringWindow, isFinished, type MaintenanceWindow } from './windows.js';

export interface AlarmServiceDeps {
  /** Opened by the caller with `openDb(file, ALARM_MIGRATIONS)`. */
  db: Db;
  config?: AlarmsConfig;
  log?: Logger;
  now?: () => number;
  newId?: () => string;
  /**
   * Cluster mode (ADR 0170): incidents are grouped over the whole cluster by the shared grouping
   * (view/incident-sync.ts), which hears every raise and hands results back through `applyGroup`;
   * this service then neither groups nor closes incidents by itself (only `groupLocally` when
   * PostgreSQL is out of reach). Absent: grouped here, as on a single instance.
   */
  sharedGrouping?: boolean;
  /**
   * Cluster mode (ADR 0173): writes an operator's change (an ack) to the shared view before it
   * commits here; resolves to the ids it accepted (the others are held by another instance now),
   * rejects when PostgreSQL cannot be reached. Absent: `ackThrough` is `ack`.
   */
  confirm?: (alarms: readonly Alarm[], events?: readonly AlarmEvent[]) => Promise<Set<string>>;
  /** Cluster mode: false while this member's leases are about to run out (people's changes refused, ADR 0173). */
  leaseFresh?: () => boolean;
  /**
   * How long an ack waits for `confirm` before it is refused (503, default 2000 ms): a PostgreSQL
   * cut without a reset would otherwise hold the request (and its pooled connection) for minutes.
   */
  confirmTimeoutMs?: number;
  /** Cluster mode: the instance the shared view names as the alarm's holder (a fenced ack names it). */
  holderOf?: (id: string) => Promise<string | undefined>;
}

export type AlarmEventListener = (e: AlarmEvent) => void;

const activeKey = (site: string, device: string, rule: string) => `${site}/${device}|${rule}`;
const isActive = (a: Alarm) => a.state === 'active-unacknowledged' || a.state === 'active-acknowledged';

/**
 * Turns rule transitions into alarms: one active alarm per (device, rule), its lifecycle,
 * shelving, grouping into incidents, and their persistence. Transitions handed to `handle()` are
 * written in one transaction per event-loop turn; listeners hear about every change after commit.
 */
export class AlarmService implements Component {
  readonly name = 'alarms';
  private cfg: AlarmsConfig;
  private readonly store: AlarmStore;
  private readonly now: () => number;
  private readonly newId: () => string;
  private readonly log: Logger | undefined;
  private readonly confirm: AlarmServiceDeps['confirm'];
  private readonly leaseFresh: () => boolean;
  private readonly confirmMs: number;
  private readonly askHolder: AlarmServiceDeps['holderOf'];
  /** Acks refused while their write to the shared view was unanswered: its correction, by alarm id. */
  private readonly lateWrites = new Map<string, Promise<void>>();
  /** Alarms not yet in their final state, by id. */
  private readonly open = new Map<string, Alarm>();
  /** The active alarm of each (device, rule). */
  private readonly active = new Map<string, Alarm>();
  private readonly incidents = new Map<string, Incident>();
  /**
   * Cluster mode (ADR 0160): alarms this instance held and handed on with their device's partition.
   * alarms.db still has their last local state, which is not the record any more: `get` does not
   * answer with it and `ack` refuses them, so a change reaches the holder.
   */
  private readonly away = new Set<string>();
  private shelves: Shelf[] = [];
  /** Maintenance windows that may still cover something (ended and finished ones stay in the database only). */
  private windows: MaintenanceWindow[] = [];
  private readonly grouper: IncidentGrouper;
  private readonly listeners = new Set<AlarmEventListener>();
  private queue: Transition[] = [];
  private scheduled = false;
  private started = false;
  private counts = { transitions: 0, ignored: 0, listenerErrors: 0 };

  constructor(deps: AlarmServiceDeps) {
    this.cfg = deps.config ?? alarmsSchema.parse({});
    this.store = new AlarmStore(deps.db);
    this.now = deps.now ?? Date.now;
    this.newId = deps.newId ?? randomUUID;
    this.log = deps.log;
    this.confirm = deps.confirm;
    this.leaseFresh = deps.leaseFresh ?? (() => true);
    this.confirmMs = deps.confirmTimeoutMs ?? 2000;
    this.askHolder = deps.holderOf;
    this.grouper = new IncidentGrouper(this.cfg.grouping, this.newId);
    this.shared = deps.sharedGrouping === true;
  }

  private readonly shared: boolean;

  /** Loads open alarms, incidents, shelves and grouping memory from the database. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (const a of this.store.openAlarms()) {
      this.open.set(a.id, a);
      if (isActive(a)) this.active.set(activeKey(a.site, a.device, a.rule), a);
    }
    for (const i of this.store.incidents()) if (i.state === 'open') this.incidents.set(i.id, i);
    this.shelves = this.store.shelves().filter((s) => s.endedAt === null);
    this.windows = this.store.windows().filter((w) => !isFinished(w, this.now()));
    this.grouper.restore(this.store.alarmsSince(this.now() - this.cfg.grouping.windowMs), this.incidents);
    this.log?.info({ open: this.open.size, shelves: this.shelves.length }, 'alarms restored');
  }

  async stop(): Promise<void> {
    this.flush();
  }

  health(): ComponentHealth {
    return {
      state: this.started ? 'ok' : 'stopped',
      active: this.active.size,
      open: this.open.size,
      ...this.counts,
    };
  }

  /** A TransitionListener: queue now, write at the end of this event-loop turn. */
  handle = (batch: readonly Transition[]): void => {
    for (const t of batch) this.queue.push(t);
    if (this.queue.length >= this.cfg.maxBatch) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  };

  /** Writes whatever is queued, now. */
  flush(): AlarmEvent[] {
    this.scheduled = false;
    if (this.queue.length === 0) return [];
    const batch = this.queue;
    this.queue = [];
    return this.apply(batch);
  }

  /** Applies transitions in one transaction and returns (and publishes) the resulting events. */
  apply(batch: readonly Transition[]): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    this.store.tx(() => {
      for (const t of batch) this.applyOne(t, events);
      this.persist(events);
    });
    this.publish(events);
    return events;
  }

  /** Ends shelves whose time is up (alarms still active under them are announced again); closes quiet incidents. */
  tick(now = this.now()): AlarmEvent[] {
    const closed: Incident[] = [];
    // Clustered, an incident closes when no member has an alarm of it active (the shared grouping).
    if (!this.shared)
      for (const inc of [...this.incidents.values()]) {
        if (this.closeIncidentIfQuiet(inc, now)) closed.push(inc);
      }
    if (closed.length) this.store.tx(() => closed.forEach((i) => this.store.saveIncident(i)));
    const events = this.releaseSuppressed(now, 'system');
    const expired = this.shelves.filter((s) => s.untilMs <= now);
    if (expired.length === 0) return events;
    return [...events, ...this.endShelves(expired, now, 'system')];
  }

  /** Sets a maintenance window in advance (or one that is already running). */
  createWindow(req: WindowRequest): MaintenanceWindow {
    const w = buildWindow(req, this.now(), this.newId());
    this.applyWindow(w);
    this.log?.info({ window: w.id, user: req.user, reason: req.reason }, 'maintenance window set');
    return { ...w };
  }

  /** Ends a window early (all its later occurrences too); alarms it suppressed that are still active are raised now. */
  endWindow(id: string, user: string, subject?: string): { window: MaintenanceWindow; events: AlarmEvent[] } {
    const w = this.windows.find((x) => x.id === id);
    if (!w) {
      const old = this.store.windows().find((x) => x.id === id);
      if (old) throw new AlarmError('GW_ERR_WINDOW_ENDED', `window ${id} has already ended`, 409);
      throw new AlarmError('GW_ERR_ALARM_NOT_FOUND', `no maintenance window ${id}`, 404);
    }
    const now = this.now();
    w.endedAt = now;
    w.endedBy = user;
    w.endedBySubject = subject ?? null;
    this.store.tx(() => this.store.saveWindow(w));
    this.log?.info({ window: w.id, user }, 'maintenance window ended early');
    const events = this.releaseSuppressed(now, user, subject);
    return { window: { ...w }, events };
  }

  /** Windows that may still cover something, or every one ever set (`all`). */
  listWindows(all = false): MaintenanceWindow[] {
    return all ? this.store.windows() : this.windows.map((w) => ({ ...w }));
  }

  /** The most alarms a list answers with (`alarms.listLimit`). */
  get listLimit(): number {
    return this.cfg.listLimit;
  }

  /** The alarms active now (copies). */
  activeAlarms(): Alarm[] {
    return [...this.active.values()].map((a) => ({ ...a }));
  }

  list(q: ListQuery): Alarm[] {
    const limit = Math.min(q.limit ?? this.cfg.listLimit, this.cfg.listLimit);
    if (q.state === 'all') return this.store.listAlarms({ site: q.site, device: q.device, limit });
    const out: Alarm[] = [];
    for (const a of this.open.values()) {
      if (q.site !== undefined && a.site !== q.site) continue;
      if (q.device !== undefined && a.device !== q.device) continue;
      out.push({ ...a });
    }
    return out.sort((a, b) => b.raisedAt - a.raisedAt).slice(0, limit);
  }

  get(id: string): Alarm | undefined {
    const a = this.open.get(id);
    if (a) return { ...a };
    return this.away.has(id) ? undefined : this.store.getAlarm(id);
  }

  /** alarms.db's copy of an alarm, held here or not (cluster mode: taking back one's own, ADR 0160). */
  stored(id: string): Alarm | undefined {
    return this.store.getAlarm(id);
  }

  /**
   * Cluster mode (ADR 0160): drops from memory the open alarms `which` selects (their device's
   * partition is no longer processed here). Transitions already queued are applied first. Nothing
   * here acts on them afterwards: no dedupe of a raise, no ack, no shelf. Returns copies of them.
   */
  evict(which: (a: Alarm) => boolean): Alarm[] {
    this.flush();
    const out: Alarm[] = [];
    for (const a of this.open.values()) {
      if (!which(a)) continue;
      this.open.delete(a.id);
      const key = activeKey(a.site, a.device, a.rule);
      if (this.active.get(key) === a) this.active.delete(key);
      this.away.add(a.id);
      out.push({ ...a });
    }
    if (out.length > 0) this.log?.info({ alarms: out.length }, 'alarms handed on with their partition');
    return out;
  }

  /**
   * Cluster mode (ADR 0160): takes open alarms, same ids, from the previous holder of their
   * partition (the shared view's copy) or from alarms.db: stored here and held in memory, so that a
   * repeated raise of the condition finds the active alarm and an ack is taken here. `history`:
   * the events of those taken from another holder (the shared view's copy), by alarm id.
   *
   * One condition, one alarm: where an adopted active alarm meets another active alarm of its
   * (site, device, rule), here or in the same list (a member cut off from PostgreSQL raised it while
   * the next owner raised it again), the one raised first is kept (then the lower id: every member
   * decides alike) and the other is closed as its duplicate (`duplicate` event by `system`).
   * Returns those pairs, for the work orders to merge the duplicate's ticket.
   */
  adopt(list: readonly Alarm[], history?: ReadonlyMap<string, readonly AlarmEvent[]>): DuplicateAlarm[] {
    if (list.length === 0) return [];
    this.flush();
    this.store.tx(() => {
      for (const a of list) {
        this.store.saveAlarm(a);
        // Its history from the previous holder: what `GET /api/alarms/:id` shows here from now on.
        const h = history?.get(a.id);
        if (h) this.store.replaceEvents(a.id, h);
      }
    });
    const adopted: Alarm[] = [];
    const dups: { duplicate: Alarm; kept: Alarm }[] = [];
    for (const x of list) {
      this.away.delete(x.id);
      if (x.state === 'cleared') continue;
      const a = { ...x };
      this.open.set(a.id, a);
      if (!isActive(a)) continue;
      const key = activeKey(a.site, a.device, a.rule);
      const cur = this.active.get(key);
      if (cur && cur.id !== a.id) {
        const [kept, duplicate] = raisedFirst(cur, a) ? [cur, a] : [a, cur];
        dups.push({ duplicate, kept });
        this.active.set(key, kept);
        if (kept === a) adopted.push(a);
        continue;
      }
      this.active.set(key, a);
      adopted.push(a);
    }
    const closed = new Set(dups.map((d) => d.duplicate.id));
    this.reshelve(adopted.filter((a) => !closed.has(a.id)));
    return this.closeDuplicates(dups);
  }

  /**
   * Closes each duplicate (final state, acknowledged by `system` with the pointer as its note) in
   * one durable transaction; the `duplicate` events reach the listeners (the shared view among them).
   */
  private closeDuplicates(dups: readonly DuplicateAlarm[]): DuplicateAlarm[] {
    if (dups.length === 0) return [];
    const now = this.now();
    const events: AlarmEvent[] = [];
    for (const { duplicate: d, kept } of dups) {
      const note = `duplicate of ${kept.id}`;
      d.state = 'cleared';
      d.clearedAt ??= now;
      // Acknowledged by someone already: their ack stays; the pointer is in the event's note.
      if (d.acknowledgedAt === null) {
        d.acknowledgedAt = now;
        d.acknowledgedBy = 'system';
        d.ackNote = note;
      }
      d.updatedAt = now;
      this.open.delete(d.id);
      events.push(this.event('duplicate', d, now, 'system', note));
      this.log?.warn(
        { kept: kept.id, duplicate: d.id, key: activeKey(d.site, d.device, d.rule) },
        'two active alarms of one condition: the later one closed as a duplicate',
      );
    }
    this.store.txDurable(() => this.persist(events));
    this.publish(events);
    for (const { duplicate: d } of dups) this.maybeCloseIncident(d.incidentId, now);
    return dups.map((d) => ({ duplicate: { ...d.duplicate }, kept: { ...d.kept } }));
  }

  /**
   * Adopted alarms under the shelves as they run here now (ADR 0160, 0163): a shelf set or ended
   * while an alarm was between holders reached neither (the old one had let go of it, this one did
   * not hold it yet, and a shelf is applied once per instance).
   */
  private reshelve(list: readonly Alarm[]): void {
    const now = this.now();
    const events: AlarmEvent[] = [];
    for (const a of list) {
      const under = this.shelves.find((s) => s.endedAt === null && s.untilMs > now && matches(s, a));
      if (under && !a.shelved) {
        a.shelved = true;
        a.updatedAt = now;
        events.push(this.event('shelve', a, now, under.user, under.reason, under.userSubject ?? undefined));
      } else if (!under && a.shelved) {
        a.shelved = false;
        a.updatedAt = now;
        events.push(this.event('unshelve', a, now, 'system'));
      }
    }
    if (events.length === 0) return;
    this.store.txDurable(() => this.persist(events));
    this.publish(events);
  }

  /** Alarms raised in `[from, to)` (the monthly report). */
  raisedBetween(from: number, to: number): Alarm[] {
    return this.store.raisedBetween(from, to);
  }

  /** The recorded history of one alarm. */
  history(id: string): ReturnType<AlarmStore['events']> {
    return this.store.events(id);
  }

  /** `subject`: an SSO user's identity-provider subject, kept in the alarm's history beside the name. */
  ack(id: string, user: string, note?: string, subject?: string): Alarm {
    const a = this.ackable(id, user);
    const acked = acknowledged(a, this.now(), user, note);
    return this.commitAck(a, acked, note, subject);
  }

  /** Whether an ack is written through to the shared view first (cluster mode, ADR 0173). */
  get writesThrough(): boolean {
    return this.confirm !== undefined;
  }

  /**
   * Cluster mode (ADR 0173): an ack answered only once the shared view has it. The acknowledged
   * alarm's row goes to PostgreSQL first (the writer's fenced upsert); only then is it committed
   * here. Fenced (another instance holds the alarm now): 503 GW_ERR_HOLDER_UNAVAILABLE, nothing
   * committed, and this instance lets go of the alarm so that a retry is forwarded to the holder.
   * PostgreSQL not reachable: 503 GW_ERR_UNAVAILABLE, nothing committed. Without `confirm`: `ack`.
   */
  async ackThrough(id: string, user: string, note?: string, subject?: string): Promise<Alarm> {
    const confirm = this.confirm;
    if (!confirm) return this.ack(id, user, note, subject);
    this.ackable(id, user);
    // An earlier ack of this alarm refused for want of an answer may still land: it is put right
    // first (see below), so that its late correction cannot overwrite this one.
    const earlier = this.lateWrites.get(id);
    if (earlier)
      await within(earlier, this.confirmMs).catch((err: Error) => {
        throw new AlarmError(
          'GW_ERR_UNAVAILABLE',
          `alarm ${id}: the ack was not made, an earlier ack's write to the cluster's shared view (PostgreSQL) is still unanswered: ${err.message}`,
          503,
        );
      });
    const a = this.ackable(id, user);
    if (!this.leaseFresh())
      throw new AlarmError(
        'GW_ERR_HOLDER_UNAVAILABLE',
        `alarm ${id}: this cluster instance's lease is about to run out; the ack was not made; try again`,
        503,
      );
    const now = this.now();
    let accepted: Set<string>;
    const acked = acknowledged(a, now, user, note);
    // Its history line goes with the row (the queue's copy after the commit is the same line).
    const written = confirm([acked], [this.event('ack', acked, now, user, note, subject)]);
    try {
      accepted = await within(written, this.confirmMs);
    } catch (err) {
      // A write that lands after the refusal would show an ack nobody made: once it does, the row
      // is written again as the alarm is here then (the next ack of it waits for that).
      const late: Promise<void> = written
        .then(async (got) => {
          const back = got.has(id) ? (this.open.get(id) ?? this.stored(id)) : undefined;
          if (back) await confirm([back]);
        })
        .catch((e: Error) =>
          this.log?.warn(
            { alarm: id, err: e.message },
            'refused ack left in the shared view; its next change copies it',
          ),
        )
        .finally(() => {
          if (this.lateWrites.get(id) === late) this.lateWrites.delete(id);
        });
      this.lateWrites.set(id, late);
      throw new AlarmError(
        'GW_ERR_UNAVAILABLE',
        `alarm ${id}: the ack was not made, the cluster's shared view (PostgreSQL) cannot be written now: ${(err as Error).message}`,
        503,
      );
    }
    if (!accepted.has(id)) {
      this.letGo(id);
      const holder = await this.holderOf(id);
      throw new AlarmError(
        'GW_ERR_HOLDER_UNAVAILABLE',
        `alarm ${id} is held by ${holder ? `cluster instance "${holder}"` : 'another cluster instance'} now; the ack was not made here; try again`,
        503,
        holder ? { holder } : undefined,
      );
    }
    // Changed meanwhile (cleared, acknowledged, handed on): the ack is made on what is here now.
    const cur = this.open.get(id);
    if (!cur) {
      if (this.away.has(id)) return acknowledged(a, now, user, note);
      throw new AlarmError('GW_ERR_ALARM_ALREADY_ACKED', `alarm ${id} already acknowledged`, 409);
    }
    return this.commitAck(this.ackable(id, user), acknowledged(cur, now, user, note), note, subject);
  }

  /** The holder the shared view names for `id`, if it answers in time (only to name it in a refusal). */
  private async holderOf(id: string): Promise<string | undefined> {
    const ask = this.askHolder;
    return ask ? within(ask(id), this.confirmMs).catch(() => undefined) : undefined;
  }

  /** The open alarm `id` if it can be acknowledged now, else the reason as an AlarmError. */
  private ackable(id: string, user: string): Alarm {
    if (!user) throw new AlarmError('GW_ERR_ALARM_BAD_REQUEST', 'ack needs a user', 400);
    const a = this.open.get(id);
    if (!a) {
      if (this.away.has(id))
        throw new AlarmError(
          'GW_ERR_HOLDER_UNAVAILABLE',
          `alarm ${id} is being handed over to another cluster instance; try again`,
          503,
        );
      if (this.store.getAlarm(id))
        throw new AlarmError('GW_ERR_ALARM_ALREADY_ACKED', `alarm ${id} already acknowledged`, 409);
      throw new AlarmError('GW_ERR_ALARM_NOT_FOUND', `alarm ${id} not found`, 404);
    }
    if (a.state === 'active-acknowledged')
      throw new AlarmError('GW_ERR_ALARM_ALREADY_ACKED', `alarm ${id} already acknowledged`, 409);
    return a;
  }

  /** Makes `a` the acknowledged copy `acked`: on disk, in memory, to the listeners. */
  private commitAck(a: Alarm, acked: Alarm, note?: string, subject?: string): Alarm {
    Object.assign(a, acked);
    if (a.state === 'cleared') this.open.delete(a.id);
    const events = [this.event('ack', a, a.updatedAt, a.acknowledgedBy!, note, subject)];
    this.store.txDurable(() => this.persist(events));
    this.publish(events);
    return { ...a };
  }

  /**
   * Cluster mode: the shared view says another instance holds `id` now (a write was fenced): it is
   * dropped from memory as at a hand-over, so that a change to it is forwarded to the holder.
   */
  private letGo(id: string): void {
    const a = this.open.get(id);
    if (!a) return;
    this.open.delete(id);
    const key = activeKey(a.site, a.device, a.rule);
    if (this.active.get(key) === a) this.active.delete(key);
    this.away.add(id);
    this.log?.warn({ alarm: id }, 'alarm held by another cluster instance now: let go of here');
  }

  shelve(req: ShelveRequest): Shelf {
    const shelf = buildShelf(req, this.now(), this.newId());
    this.applyShelf(shelf);
    return { ...shelf };
  }

  /** Ends a shelf early. */
  unshelve(id: string, user: string, subject?: string): Shelf {
    const shelf = this.shelves.find((s) => s.id === id);
    if (!shelf) throw new AlarmError('GW_ERR_ALARM_NOT_FOUND', `no active shelf ${id}`, 404);
    this.endShelves([shelf], this.now(), user, subject);
    return { ...shelf };
  }

  listShelves(activeOnly = true): Shelf[] {
    return activeOnly ? this.shelves.map((s) => ({ ...s })) : this.store.shelves();
  }

  listIncidents(): Incident[] {
    return this.store.incidents();
  }

  /**
   * A shelf as set or ended anywhere in the cluster (ADR 0163), or here: idempotent by id. A new
   * active shelf holds back the alarms it matches; an ended one releases them; one already known
   * (or already ended here, by time) changes nothing. Every shelf seen is kept in alarms.db.
   */
  applyShelf(s: Shelf): AlarmEvent[] {
    const now = this.now();
    const mine = this.shelves.find((x) => x.id === s.id);
    if (mine) {
      if (s.endedAt === null) return [];
      return this.endShelves([mine], s.endedAt, s.endedBy ?? 'system', s.endedBySubject ?? undefined);
    }
    const stored = this.store.shelf(s.id);
    if (stored || s.endedAt !== null || s.untilMs <= now) {
      // Known already, or over before it reached this instance: a copy of the record only.
      if (!stored || (stored.endedAt === null && s.endedAt !== null))
        this.store.tx(() => this.store.saveShelf(s));
      return [];
    }
    const shelf = { ...s };
    this.shelves.push(shelf);
    const events: AlarmEvent[] = [];
    const subject = shelf.userSubject ?? undefined;
    for (const a of this.active.values()) {
      if (a.shelved || !matches(shelf, a)) continue;
      a.shelved = true;
      a.updatedAt = now;
      events.push(this.event('shelve', a, now, shelf.user, shelf.reason, subject));
    }
    this.store.txDurable(() => {
      this.store.saveShelf(shelf);
      this.persist(events);
    });
    this.publish(events);
    return events;
  }

  /**
   * A maintenance window as set or ended anywhere in the cluster (ADR 0163), or here: idempotent by
   * id. A new one covers alarms raised from now on; an ended one releases the alarms it held back
   * (`unsuppress`, returned). Every window seen is kept in alarms.db.
   */
  applyWindow(w: MaintenanceWindow): AlarmEvent[] {
    const now = this.now();
    const mine = this.windows.find((x) => x.id === w.id);
    if (mine) {
      if (w.endedAt === null || mine.endedAt !== null) return [];
      mine.endedAt = w.endedAt;
      mine.endedBy = w.endedBy;
      mine.endedBySubject = w.endedBySubject ?? null;
      this.store.tx(() => this.store.saveWindow(mine));
      this.log?.info({ window: w.id, user: w.endedBy }, 'maintenance window ended early');
      // Another instance's clock may run a little ahead: release as of its end, not before it.
      return this.releaseSuppressed(
        Math.max(now, w.endedAt),
        w.endedBy ?? 'system',
        w.endedBySubject ?? undefined,
      );
    }
    const stored = this.store.window(w.id);
    if (stored) {
      if (stored.endedAt === null && w.endedAt !== null) this.store.tx(() => this.store.saveWindow(w));
      return [];
    }
    const copy = { ...w };
    this.store.tx(() => this.store.saveWindow(copy));
    if (!isFinished(copy, now)) this.windows.push(copy);
    return [];
  }

  /** Every alarm event, after it was committed. Returns an unsubscribe function. */
  onEvent(fn: AlarmEventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Rule-engine state lives in the same database (table rule_state). */
  saveRuleState(snap: EngineSnapshot): void {
    this.store.saveRuleState(snap, this.now());
  }

  /** The devices whose rule state changed since the last save, already serialised. */
  saveRuleStateRows(rows: readonly RuleStateRow[], readRate: string | undefined): void {
    this.store.saveRuleStateRows(rows, readRate, this.now());
  }

  /** Grouping window and counts from a reloaded config; takes effect with the next alarm. */
  setGrouping(grouping: AlarmsConfig['grouping']): void {
    this.cfg = { ...this.cfg, grouping };
    this.grouper.configure(grouping);
  }

  loadRuleState(): EngineSnapshot | undefined {
    return this.store.loadRuleState();
  }

  ruleStateSavedAt(): number | undefined {
    return this.store.ruleStateSavedAt();
  }

  /** The severity rank of every active alarm by `site/device|rule`: what the rules reconcile their state with at start. */
  activeRanks(): Map<string, number> {
    this.flush();
    const out = new Map<string, number>();
    for (const [k, a] of this.active) out.set(k, severityRank(a.severity));
    return out;
  }

  /**
   * Cluster mode (ADR 0170): the shared grouping put `ids` into `incident`. Those held open here
   * that are not in it yet join it (a `group` event each, in one transaction); `anchor` is the alarm
   * whose ticket becomes the incident's ticket (the raise that opened it), every other one is
   * marked `remoteIncident` so that its ticket only notes the incident. Returns the ids handled here.
   */
  applyGroup(incident: Incident, ids: readonly string[], anchor?: string): string[] {
    this.flush();
    const now = this.now();
    const known = this.incidents.get(incident.id);
    const inc = known ? Object.assign(known, incident) : { ...incident };
    const mine = ids.filter((id) => this.open.has(id));
    if (inc.state === 'open' && mine.length > 0) this.incidents.set(inc.id, inc);
    // The anchor first: its ticket becomes the incident's before the others link to it.
    mine.sort((x, y) => (x === anchor ? -1 : y === anchor ? 1 : 0));
    const events: AlarmEvent[] = [];
    for (const id of mine) {
      const a = this.open.get(id)!;
      if (a.incidentId === inc.id) continue;
      a.incidentId = inc.id;
      a.updatedAt = Math.max(a.updatedAt, now);
      const e: AlarmEvent = { ...this.event('group', a, now), incident: { ...inc } };
      if (id !== anchor) e.remoteIncident = true;
      events.push(e);
    }
    if (events.length > 0) {
      this.store.tx(() => this.persist(events));
      this.publish(events);
    }
    return mine;
  }

  /**
   * Cluster mode with PostgreSQL out of reach (ADR 0170): the raise of `id` is grouped by this
   * member's own grouper, as on a single instance. Returns the incident it is in now (to be
   * reconciled with the shared ones later), if any.
   */
  groupLocally(id: string): Incident | undefined {
    const a = this.open.get(id);
    if (!a || a.incidentId) return undefined;
    const g = this.grouper.onRaise(a, a.raisedAt);
    if (!g) return undefined;
    this.applyGroup(g.incident, g.joined, g.created ? a.id : undefined);
    return this.incidents.get(g.incident.id);
  }

  /** Cluster mode: incidents as the shared grouping has them now (closed, merged or counted on). */
  updateIncidents(list: readonly Incident[]): void {
    const changed: Incident[] = [];
    let stored: Map<string, Incident> | undefined;
    for (const i of list) {
      const cur =
        this.incidents.get(i.id) ??
        (stored ??= new Map(this.store.incidents().map((x) => [x.id, x]))).get(i.id);
      if (!cur) continue;
      Object.assign(cur, i);
      if (i.state !== 'open') this.incidents.delete(i.id);
      changed.push(cur);
    }
    if (changed.length > 0) this.store.tx(() => changed.forEach((i) => this.store.saveIncident(i)));
  }

  /** The alarms of an incident open here, for reconciling an incident made apart (ADR 0170). */
  incidentAlarms(incidentId: string): Alarm[] {
    return [...this.open.values()].filter((a) => a.incidentId === incidentId).map((a) => ({ ...a }));
  }

  private applyOne(t: Transition, events: AlarmEvent[]): void {
    this.counts.transitions++;
    const key = activeKey(t.site, t.device, t.ruleId);
    const cur = this.active.get(key);
    if (t.type === 'clear') {
      if (!cur) return void this.counts.ignored++;
      cur.state = cur.state === 'active-acknowledged' ? 'cleared' : 'cleared-unacknowledged';
      cur.clearedAt = t.ts;
      cur.value = t.value;
      cur.updatedAt = t.ts;
      this.active.delete(key);
      if (cur.state === 'cleared') this.open.delete(cur.id);
      events.push(this.event('clear', cur, t.ts, undefined, t.message));
      this.maybeCloseIncident(cur.incidentId, t.ts);
      return;
    }
    if (cur) {
      // One condition, one alarm: a repeated raise only ever raises the severity of the active one.
      if (severityRank(t.severity) <= severityRank(cur.severity)) return void this.counts.ignored++;
      cur.severity = t.severity;
      cur.value = t.value;
      cur.message = t.message;
      cur.updatedAt = t.ts;
      // A worse condition needs fresh attention even if the milder one was acknowledged.
      if (cur.state === 'active-acknowledged') cur.state = 'active-unacknowledged';
      events.push(this.event('escalate', cur, t.ts));
      return;
    }
    const a: Alarm = {
      id: this.newId(),
      site: t.site,
      device: t.device,
      kind: t.kind,
      rule: t.ruleId,
      class: t.ruleClass,
      severity: t.severity,
      state: 'active-unacknowledged',
      value: t.value,
      message: t.message,
      raisedAt: t.ts,
      clearedAt: null,
      acknowledgedAt: null,
      acknowledgedBy: null,
      ackNote: null,
      incidentId: null,
      shelved: this.shelves.some((s) => s.fromMs <= t.ts && matches(s, t)),
      critical: t.critical,
      updatedAt: t.ts,
    };
    // Inside a maintenance window: recorded, flagged, nobody paged (a window is rare: few to test).
    const w = this.windows.length ? coveringWindow(this.windows, a, t.ts) : undefined;
    a.suppressed = w !== undefined;
    a.windowId = w?.id ?? null;
    this.active.set(key, a);
    this.open.set(a.id, a);
    events.push(this.event('raise', a, t.ts, undefined, t.message));
    if (this.shared) return;
    const g = this.grouper.onRaise(a, t.ts);
    if (!g) return;
    this.incidents.set(g.incident.id, g.incident);
    for (const id of g.joined) {
      const member = id === a.id ? a : (this.open.get(id) ?? this.store.getAlarm(id));
      if (!member) continue;
      member.incidentId = g.incident.id;
      member.updatedAt = t.ts;
      events.push({ ...this.event('group', member, t.ts), incident: { ...g.incident } });
    }
  }

  private maybeCloseIncident(incidentId: string | null, ts: number): void {
    if (this.shared) return;
    const inc = incidentId ? this.incidents.get(incidentId) : undefined;
    if (inc) this.closeIncidentIfQuiet(inc, ts);
  }

  /** Closed once none of its alarms is active and no more can join it (the window has passed). */
  private closeIncidentIfQuiet(inc: Incident, ts: number): boolean {
    if (ts - inc.lastAlarmAt < this.cfg.grouping.windowMs) return false;
    for (const a of this.active.values()) if (a.incidentId === inc.id) return false;
    inc.state = 'closed';
    inc.closedAt = ts;
    this.incidents.delete(inc.id);
    return true;
  }

  /**
   * Active alarms whose window no longer covers them (it ended, or was ended early) and that no
   * other window covers are raised for real now: an `unsuppress` event, which makes their ticket.
   * Forgets windows that can cover nothing more.
   */
  private releaseSuppressed(now: number, user: string, subject?: string): AlarmEvent[] {
    const events: AlarmEvent[] = [];
    for (const a of this.active.values()) {
      if (!a.suppressed) continue;
      const w = coveringWindow(this.windows, a, now);
      if (w) {
        a.windowId = w.id;
        continue;
      }
      a.suppressed = false;
      a.updatedAt = now;
      events.push(
        this.event('unsuppress', a, now, user, `maintenance window ${a.windowId ?? ''} ended`, subject),
      );
    }
    const live = this.windows.filter((w) => !isFinished(w, now));
    if (live.length !== this.windows.length) this.windows = live;
    if (events.length === 0) return events;
    this.store.tx(() => this.persist(events));
    this.publish(events);
    return events;
  }

  private endShelves(ended: Shelf[], now: number, user: string, subject?: string): AlarmEvent[] {
    for (const s of ended) {
      s.endedAt = now;
      s.endedBy = user;
      s.endedBySubject = subject ?? null;
    }
    this.shelves = this.shelves.filter((s) => s.endedAt === null);
    const events: AlarmEvent[] = [];
    for (const a of this.active.values()) {
      if (!a.shelved || this.shelves.some((s) => matches(s, a))) continue;
      a.shelved = false;
      a.updatedAt = now;
      events.push(this.event('unshelve', a, now, user, undefined, subject));
    }
    this.store.txDurable(() => {
      for (const s of ended) this.store.saveShelf(s);
      this.persist(events);
    });
    this.publish(events);
    return events;
  }

  private event(
    type: AlarmEventType,
    a: Alarm,
    ts: number,
    user?: string,
    note?: string,
    subject?: string,
  ): AlarmEvent {
    const e: AlarmEvent = { type, ts, alarm: { ...a } };
    if (user !== undefined) e.user = user;
    if (subject !== undefined) e.userSubject = subject;
    if (note !== undefined) e.note = note;
    const inc = a.incidentId ? this.incidents.get(a.incidentId) : undefined;
    if (inc) e.incident = { ...inc };
    return e;
  }

  /** Writes the final state of each touched alarm once, every event, and touched incidents. */
  private persist(events: AlarmEvent[]): void {
    const last = new Map<string, Alarm>();
    const incidents = new Map<string, Incident>();
    for (const e of events) {
      // The event holds a copy made at the time; the stored row must be the latest.
      last.set(e.alarm.id, this.open.get(e.alarm.id) ?? e.alarm);
      if (e.incident) incidents.set(e.incident.id, this.incidents.get(e.incident.id) ?? e.incident);
      this.store.saveEvent(e);
    }
    for (const a of last.values()) this.store.saveAlarm(a);
    for (const i of incidents.values()) this.store.saveIncident(i);
  }

  private publish(events: AlarmEvent[]): void {
    for (const e of events) {
      for (const fn of this.listeners) {
        try {
          fn(e);
        } catch (err) {
          this.counts.listenerErrors++;
          this.log?.error({ err, type: e.type }, 'alarm event listener failed');
        }
      }
    }
  }
}

/** `p`, or a rejection after `ms` (a PostgreSQL cut without a reset would hang the write). */
async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A copy of `a` acknowledged by `user` at `now` (a cleared alarm reaches its final state). */
function acknowledged(a: Alarm, now: number, user: string, note?: string): Alarm {
  return {
    ...a,
    state: a.state === 'cleared-unacknowledged' ? 'cleared' : 'active-acknowledged',
    acknowledgedAt: now,
    acknowledgedBy: user,
    ackNote: note ?? null,
    updatedAt: now,
  };
}

/** Which of two alarms of one condition was raised first (ties: the lower id), the same on every member. */
function raisedFirst(a: Alarm, b: Alarm): boolean {
  return a.raisedAt !== b.raisedAt ? a.raisedAt < b.raisedAt : a.id < b.id;
}

function matches(s: Shelf, a: { site: string; device: string; rule?: string; ruleId?: string }): boolean {
  const rule = a.rule ?? a.ruleId;
  return (
    (s.site === null || s.site === a.site) &&
    (s.device === null || s.device === a.device) &&
    (s.rule === null || s.rule === rule)
  );
}
