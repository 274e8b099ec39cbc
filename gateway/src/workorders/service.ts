import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { Db } from '../storage/db.js';
import type { AlarmEvent } from '../alarms/types.js';
import type { RuleClass } from '../rules/types.js';
import { escalate, type Breach } from './escalation.js';
import {
  addSlaTime,
  createsTicket,
  deadlinesOf,
  higherPriority,
  isTransientAutoResolve,
  priorityOf,
  slaTimeBetween,
} from './policy.js';
import type { Schedule } from './maintenance-schema.js';
import { workordersSchema, type WorkordersConfig } from './schema.js';
import { applyAction, isActive, markResolved, type ActionRequest } from './state-machine.js';
import { TicketStore, type TicketFilter } from './store.js';
import {
  TicketError,
  type HistoryEntry,
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
}

export type TicketEventType = 'created' | 'updated' | 'escalated';

/** Every change of a ticket after it was committed: for the live stream and, later, webhooks. */
export interface TicketEvent {
  type: TicketEventType;
  /** The ticket after the change, with an empty `history`. */
  ticket: Ticket;
  /** The audit entries this change added. */
  entries: HistoryEntry[];
}

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

const SYSTEM = 'system';

/**
 * Work orders: turns alarms into tickets by the configured policy (one open ticket per device and
 * rule), runs people's actions through the state machine, escalates missed deadlines on tick and
 * keeps everything in its own SQLite database. Listeners hear about every change after commit.
 */
export class WorkOrderService implements Component {
  readonly name = 'workorders';
  private readonly cfg: WorkordersConfig;
  private readonly store: TicketStore;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  /** Tickets not closed, by id: the ones alarms and the clock can still change. */
  private readonly open = new Map<string, Ticket>();
  /** How many history entries of each ticket are already stored. */
  private readonly stored = new Map<string, number>();
  private readonly listeners = new Set<(e: TicketEvent) => void>();
  private queue: AlarmEvent[] = [];
  private scheduled = false;
  private seq = 1;
  private readonly snapshotTimers = new Set<NodeJS.Timeout>();
  private started = false;
  private counts = {
    created: 0,
    alarmEvents: 0,
    escalations: 0,
    breaches: 0,
    listenerErrors: 0,
    errors: 0,
    missedWhileStopped: 0,
  };

  constructor(private readonly deps: WorkOrderServiceDeps) {
    this.cfg = deps.config ?? workordersSchema.parse({});
    this.store = new TicketStore(deps.db);
    this.now = deps.now ?? Date.now;
    this.log = deps.log;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.seq = this.store.nextSeq();
    for (const t of this.store.unclosed()) {
      this.open.set(t.id, t);
      this.stored.set(t.id, t.history.length);
    }
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
    const changes = new Changes(this.open, this.stored);
    for (const e of events) {
      this.counts.alarmEvents++;
      this.applyAlarmEvent(e, incidentOf, changes);
    }
    return this.commit(changes);
  }

  /** Escalates every ticket whose deadline has passed. */
  tick(now = this.now()): TicketEvent[] {
    const changes = new Changes(this.open, this.stored);
    for (const t of this.open.values()) {
      if (!isActive(t.status)) continue;
      const before = t.history.length;
      const breaches: Breach[] = escalate(t, now, this.cfg);
      if (breaches.length === 0) continue;
      this.counts.escalations += breaches.length;
      this.counts.breaches += breaches.length;
      changes.touch(t, before, 'escalated');
      this.log?.warn(
        { ticket: t.id, level: t.escalationLevel, breaches: breaches.map((b) => b.kind) },
        'work order escalated',
      );
    }
    return this.commit(changes);
  }

  /** A person's action on a ticket (CONTRACT.md actions). */
  act(id: string, req: ActionRequest): Ticket {
    const t = this.open.get(id) ?? this.store.get(id);
    if (!t) throw new TicketError('GW_ERR_TICKET_NOT_FOUND', `ticket ${id} not found`, 404);
    const now = this.now();
    const before = t.history.length;
    const heldSince = t.heldSince ?? null;
    applyAction(t, req, now);
    if (!this.stored.has(t.id)) this.stored.set(t.id, before);
    if (req.action === 'resume' && heldSince !== null) this.moveResolveClock(t, heldSince, now);
    if (req.action === 'reopen') {
      this.restartClocks(t, now);
      this.open.set(t.id, t);
    }
    const changes = new Changes(this.open, this.stored);
    changes.touch(t, before, 'updated');
    this.commit(changes);
    if (t.status === 'closed') {
      this.open.delete(t.id);
      this.stored.delete(t.id);
    }
    return structuredClone(t);
  }

  /** A ticket raised by hand (CONTRACT.md `POST /api/tickets`). */
  create(m: ManualTicket, actor: string): Ticket {
    const now = this.now();
    const cls = m.class ?? 'routine';
    const priority = m.priority ?? priorityOf(this.cfg, { class: cls, severity: null, critical: false });
    const t = this.newTicket({
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
    const changes = new Changes(this.open, this.stored);
    changes.add(t);
    this.commit(changes);
    return structuredClone(t);
  }

  /** One occurrence of a preventive-maintenance schedule, due at `dueAt`: a ticket whose deadlines count from then. */
  createMaintenance(
    s: Schedule,
    target: { site: string; device: string | null; location?: string },
    dueAt: number,
  ): Ticket {
    const now = this.now();
    const t = this.newTicket({
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
    t.maintenance = { schedule: s.id, dueAt, form: s.form, record: null };
    t.history.push({
      ts: now,
      actor: SYSTEM,
      action: 'create',
      from: null,
      to: 'open',
      note: `preventive maintenance ${s.id} due ${new Date(dueAt).toISOString()}`,
    });
    const changes = new Changes(this.open, this.stored);
    changes.add(t);
    this.commit(changes);
    return structuredClone(t);
  }

  get(id: string): Ticket | undefined {
    const t = this.open.get(id);
    return t ? structuredClone(t) : this.store.get(id);
  }

  list(f: Omit<TicketFilter, 'limit'> & { limit?: number }): Ticket[] {
    const limit = Math.min(f.limit ?? this.cfg.listLimit, this.cfg.listLimit);
    return this.store.list({ ...f, limit });
  }

  /** Tickets created before `to`, with their `escalate` lines only (the monthly report). */
  reportTickets(to: number): Ticket[] {
    return this.store.createdBefore(to);
  }

  /** Preventive-maintenance tickets due in `[from, to)` (the maintenance calendar). */
  maintenanceDue(from: number, to: number): Ticket[] {
    return this.store.maintenanceDue(from, to);
  }

  private applyAlarmEvent(e: AlarmEvent, incidentOf: Map<string, string>, changes: Changes): void {
    const a = e.alarm;
    const t = this.ticketOf(a.site, a.device, a.rule);
    const before = t?.history.length ?? 0;
    const note = (what: string) => `${what}: ${a.message} (value ${String(a.value)})`;
    const alarmData = { alarmId: a.id, value: a.value, severity: a.severity };
    switch (e.type) {
      case 'raise': {
        if (!createsTicket(this.cfg, a)) return;
        if (t) {
          // One condition, one ticket: a returning alarm adds to it.
          if (!t.alarmIds.includes(a.id)) t.alarmIds.push(a.id);
          t.conditionCleared = false;
          t.priority = higherPriority(t.priority, priorityOf(this.cfg, a));
          this.entry(t, e.ts, 'alarm-returned', note('alarm returned'), alarmData);
          if (t.status === 'resolved') {
            // The fix did not hold: the ticket needs work again, with fresh deadlines.
            t.history.push({
              ts: e.ts,
              actor: SYSTEM,
              action: 'reopen',
              from: 'resolved',
              to: 'reopened',
              note: 'alarm returned after resolution',
            });
            t.status = 'reopened';
            t.resolvedAt = null;
            t.resolvedBy = null;
            t.verifiedBy = null;
            t.verifiedAt = null;
            this.restartClocks(t, this.now());
          }
          changes.touch(t, before, 'updated');
          return;
        }
        const incident = incidentOf.get(a.id);
        const it = incident ? this.incidentTicket(incident) : undefined;
        if (it) {
          const b = it.history.length;
          this.joinIncident(it, a.device, a.id, e.ts, incident!);
          changes.touch(it, b, 'updated');
          return;
        }
        this.createFromAlarm(e, incident ?? null, changes);
        return;
      }
      case 'escalate': {
        if (!t) {
          // The milder alarm did not qualify; the worse one may.
          if (createsTicket(this.cfg, a)) this.createFromAlarm(e, incidentOf.get(a.id) ?? null, changes);
          return;
        }
        t.priority = higherPriority(t.priority, priorityOf(this.cfg, a));
        t.severity = a.severity;
        this.entry(t, e.ts, 'alarm-escalated', note(`alarm now ${a.severity}`), alarmData);
        changes.touch(t, before, 'updated');
        return;
      }
      case 'clear': {
        if (!t) return;
        t.conditionCleared = true;
        // Closing needs verification: a cleared condition is a note, not a resolution.
        this.entry(t, e.ts, 'alarm-cleared', note('alarm cleared'), alarmData);
        if (isActive(t.status) && t.rule === a.rule && isTransientAutoResolve(this.cfg, t.rule)) {
          const from = t.status;
          markResolved(t, SYSTEM, e.ts);
          t.status = 'resolved';
          t.history.push({
            ts: e.ts,
            actor: SYSTEM,
            action: 'auto-resolve',
            from,
            to: 'resolved',
            note: `transient rule ${a.rule}: resolved when the condition cleared; verify before close`,
          });
        }
        changes.touch(t, before, 'updated');
        return;
      }
      case 'group': {
        if (!e.incident || !t) return;
        const it = this.incidentTicket(e.incident.id);
        if (!it) {
          t.incidentId = e.incident.id;
          this.entry(t, e.ts, 'incident-joined', `alarm grouped into incident ${e.incident.id}`, {
            incidentId: e.incident.id,
          });
          changes.touch(t, before, 'updated');
        } else if (it !== t) {
          // Both tickets already exist (the incident formed after them): link, never merge away work.
          const b = it.history.length;
          this.joinIncident(it, a.device, a.id, e.ts, e.incident.id);
          changes.touch(it, b, 'updated');
          this.entry(t, e.ts, 'incident-joined', `incident ${e.incident.id} is handled in ticket ${it.id}`, {
            incidentId: e.incident.id,
            ticket: it.id,
          });
          changes.touch(t, before, 'updated');
        }
        return;
      }
      default:
        return;
    }
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
    const t = this.newTicket({
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
      note: `raised by alarm ${a.id}: ${a.message}${t.repeatOf ? `; repeat of ${t.repeatOf}` : ''}`,
      data: { alarmId: a.id, value: a.value, severity: a.severity, repeatOf: t.repeatOf },
    });
    changes.add(t);
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
    const t = this.open.get(id);
    // Stopped meanwhile, or closed within seconds: the snapshot keeps its latest values only.
    if (!this.started || !t || !t.readings) return;
    Object.assign(t.readings, part);
    const changes = new Changes(this.open, this.stored);
    changes.touch(t, t.history.length, 'updated');
    this.commit(changes);
  }

  private newTicket(p: {
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
  }): Ticket {
    const d = deadlinesOf(this.cfg, p.priority, p.now);
    const seq = this.seq++;
    this.counts.created++;
    return {
      id: `WO-${String(seq).padStart(6, '0')}`,
      title: p.title,
      status: 'open',
      priority: p.priority,
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
      history: [],
    };
  }

  /**
   * After a hold the resolution deadline (and a pending resolution check) moves out by the time
   * held, counted in working time where the calendar applies.
   */
  private moveResolveClock(t: Ticket, heldSince: number, now: number): void {
    const held = slaTimeBetween(this.cfg, t.priority, heldSince, now);
    if (held <= 0) return;
    t.resolveDueAt = addSlaTime(this.cfg, t.priority, t.resolveDueAt, held);
    if (t.nextResolveCheckAt !== null)
      t.nextResolveCheckAt = addSlaTime(this.cfg, t.priority, t.nextResolveCheckAt, held);
    const last = t.history[t.history.length - 1];
    if (last?.action === 'resume')
      last.data = { ...last.data, resolveDueAt: new Date(t.resolveDueAt).toISOString() };
  }

  /** A reopened ticket gets fresh response and resolution deadlines from now. */
  private restartClocks(t: Ticket, now: number): void {
    t.onHold = false;
    t.heldSince = null;
    const d = deadlinesOf(this.cfg, t.priority, now);
    t.responseDueAt = d.responseDueAt;
    t.resolveDueAt = d.resolveDueAt;
    t.respondedAt = null;
    t.nextResponseCheckAt = d.responseDueAt;
    t.nextResolveCheckAt = d.resolveDueAt;
  }

  /** The unclosed ticket of a device and rule: its own, or the incident ticket listing the device. */
  private ticketOf(site: string, device: string, rule: string): Ticket | undefined {
    let found: Ticket | undefined;
    for (const t of this.open.values()) {
      if (t.site !== site || t.rule !== rule) continue;
      if (t.device === device) return t;
      if (t.devices.includes(device)) found = t;
    }
    return found;
  }

  private incidentTicket(incidentId: string): Ticket | undefined {
    for (const t of this.open.values()) if (t.incidentId === incidentId) return t;
    return undefined;
  }

  private joinIncident(t: Ticket, device: string, alarmId: string, ts: number, incidentId: string): void {
    if (!t.devices.includes(device)) t.devices.push(device);
    if (!t.alarmIds.includes(alarmId)) t.alarmIds.push(alarmId);
    t.incidentId = incidentId;
    this.entry(t, ts, 'incident-joined', `${device} joined incident ${incidentId}`, {
      incidentId,
      device,
      alarmId,
    });
  }

  private entry(
    t: Ticket,
    ts: number,
    action: HistoryEntry['action'],
    note: string,
    data?: Record<string, unknown>,
  ): void {
    const e: HistoryEntry = { ts, actor: SYSTEM, action, from: t.status, to: t.status, note };
    if (data) e.data = data;
    t.history.push(e);
    t.updatedAt = Math.max(t.updatedAt, ts);
  }

  private commit(changes: Changes): TicketEvent[] {
    if (changes.size === 0) return [];
    const events = changes.events();
    this.store.tx(() => {
      changes.save(this.store);
      this.deps.inTransaction?.(events);
    });
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

/** The tickets one operation touched, with the history each had before it (what is new to store). */
class Changes {
  private readonly touched = new Map<
    string,
    { t: Ticket; from: number; type: TicketEventType; seq: number | null }
  >();

  constructor(
    private readonly open: Map<string, Ticket>,
    private readonly stored: Map<string, number>,
  ) {}

  get size(): number {
    return this.touched.size;
  }

  add(t: Ticket): void {
    this.open.set(t.id, t);
    this.stored.set(t.id, 0);
    this.touched.set(t.id, { t, from: 0, type: 'created', seq: Number(t.id.slice(3)) });
  }

  touch(t: Ticket, historyBefore: number, type: TicketEventType): void {
    const cur = this.touched.get(t.id);
    if (cur) {
      if (cur.type === 'updated' && type === 'escalated') cur.type = type;
      return;
    }
    this.touched.set(t.id, { t, from: historyBefore, type, seq: null });
  }

  events(): TicketEvent[] {
    return [...this.touched.values()].map((c) => ({
      type: c.type,
      // Without its history (the new lines are in `entries`): cloning a long trail on every change would cost O(n²).
      ticket: structuredClone({ ...c.t, history: [] }),
      entries: c.t.history.slice(c.from),
    }));
  }

  save(store: TicketStore): void {
    for (const c of this.touched.values()) {
      const stored = this.stored.get(c.t.id) ?? 0;
      store.save(c.t, c.seq, c.t.history.length - stored);
      this.stored.set(c.t.id, c.t.history.length);
    }
  }
}

/** The standard a rule cites in its description, e.g. "(std: GB 5749-2022 ...)". */
function standardOf(description: string | undefined): string | null {
  const m = description ? /\(((?:std|rule)[^)]*)\)/.exec(description) : null;
  return m ? m[1]! : null;
}

export type { TicketStatus };
