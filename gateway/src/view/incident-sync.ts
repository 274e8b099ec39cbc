import type { AlarmsConfig } from '../alarms/schema.js';
import type { Alarm, AlarmEvent, Incident } from '../alarms/types.js';
import type { Logger } from '../core/log.js';
import type { Component, ComponentHealth } from '../core/types.js';
import type { PendingJoin, SharedIncidentStore } from './incident-store.js';

/** How often the raises that can count no more are deleted. */
const PRUNE_MS = 60_000;

/** How long a join waits for the view writer before it is left unmarked for the next poll. */
const COPY_WAIT_MS = 1000;

/** What the shared grouping needs of the alarm service (AlarmService, built with `sharedGrouping`). */
export interface GroupedAlarms {
  applyGroup(incident: Incident, ids: readonly string[], anchor?: string): string[];
  groupLocally(id: string): Incident | undefined;
  updateIncidents(list: readonly Incident[]): void;
  incidentAlarms(incidentId: string): Alarm[];
}

/** What it needs of the work orders (WorkOrderService): adding joined alarms to the incident ticket. */
export interface IncidentTickets {
  joinIncidentTicket(
    incidentId: string,
    joins: readonly { alarmId: string; device: string; ts: number }[],
  ): string[] | undefined;
}

export interface IncidentSyncOptions {
  store: SharedIncidentStore;
  alarms: GroupedAlarms;
  /** Absent with work orders off. */
  tickets?: IncidentTickets;
  /** The grouping's window and counts now (a config reload changes them). */
  grouping: () => AlarmsConfig['grouping'];
  log: Logger;
  /**
   * Resolves true once this member's changes so far are in the shared view (the view writer's
   * `flushed`). A join is marked seen only then: marked before, a SIGKILL in the writer's batch
   * window lost the join for good (the next holder adopts the older copy, and nobody looks again).
   * Absent: marked at once.
   */
  copied?: (waitMs: number) => Promise<boolean>;
  /** Joins looked at per poll and side (default 500). */
  pendingLimit?: number;
  /** How often joins made elsewhere, quiet incidents and outage leftovers are looked at (default 1 s). */
  pollMs?: number;
  now?: () => number;
}

/**
 * Incidents grouped over the whole cluster (ADR 0170). Every raise of this member goes to the
 * shared grouping (one transaction, after the alarm and its ticket are already made here: an alarm
 * never waits on PostgreSQL); the result comes back to the alarm service as `group` events. A poll
 * brings what other members' raises decided: alarms held here that joined an incident, alarms to
 * add to the incident ticket held here, incidents that closed because no member has an alarm of
 * them active. With PostgreSQL out of reach a raise is grouped by this member alone, and that
 * incident is reconciled with the shared ones once PostgreSQL answers again.
 */
export class IncidentSync implements Component {
  readonly name = 'cluster incidents';
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private readonly inflight = new Set<Promise<void>>();
  /** Alarms that cleared here, not yet reported (kept across a failed report). */
  private clears: string[] = [];
  /** The raises' transactions, one after the other. */
  private chain: Promise<void> = Promise.resolve();
  /** Incidents made here alone while PostgreSQL was out of reach, to reconcile. */
  private readonly apart = new Map<string, Incident>();
  private lastError?: string;
  private counts = {
    raises: 0,
    created: 0,
    joinedHere: 0,
    ticketJoins: 0,
    closed: 0,
    /** Raises grouped by this member alone (PostgreSQL out of reach). */
    groupedLocally: 0,
    /** Incidents made apart that met the shared table, and of those, duplicates merged into the kept one. */
    reconciled: 0,
    merged: 0,
    failures: 0,
    /** Raises forgotten: past any window, or of an incident that is over. */
    pruned: 0,
  };
  private prunedAt = 0;
  /** Stopped: raises heard at the alarms' own stop are left ungrouped (the shared store may be closing). */
  private stopped = false;

  constructor(private readonly o: IncidentSyncOptions) {}

  /** A bus listener for `alarm`: queue only, the I/O runs beside the event loop's other work. */
  onAlarm = (e: AlarmEvent): void => {
    // One raise transaction at a time: a burst holding many pooled connections while they wait on
    // one (site, rule)'s lock would starve the lease renewals that share the pool.
    if (this.stopped) return;
    if (e.type === 'raise')
      this.track(
        (this.chain = this.chain
          .then(() => this.raise(e.alarm))
          .catch((err: unknown) => {
            // A fault here (not an outage: that is handled) must not reach the process.
            this.counts.failures++;
            this.o.log.error({ err, alarm: e.alarm.id }, 'alarm raise not grouped');
          })),
      );
    else if (e.type === 'clear' || e.type === 'duplicate') this.clears.push(e.alarm.id);
  };

  async start(): Promise<void> {
    const every = this.o.pollMs ?? 1000;
    this.timer = setInterval(() => {
      this.polling ??= this.poll().finally(() => (this.polling = undefined));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.inflight]);
    await this.polling;
  }

  health(): ComponentHealth {
    if (this.lastError !== undefined)
      return { state: 'degraded', detail: `incident grouping: ${this.lastError}`, ...this.counts };
    return { state: 'ok', apart: this.apart.size, ...this.counts };
  }

  /** The counters (health and `/metrics`). */
  stats(): Readonly<IncidentSync['counts']> {
    return this.counts;
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async raise(a: Alarm): Promise<void> {
    this.counts.raises++;
    // PostgreSQL failed and no poll has reached it since: grouped here at once, no attempt queued
    // behind a connection that may hang.
    if (this.lastError !== undefined) return this.groupHere(a);
    let r: Awaited<ReturnType<SharedIncidentStore['raise']>>;
    try {
      r = await this.o.store.raise(a, this.o.grouping());
      this.ok();
    } catch (err) {
      this.failed(err);
      return this.groupHere(a);
    }
    if (!r) return;
    if (r.created) this.counts.created++;
    const mine = this.o.alarms.applyGroup(r.incident, r.joined, r.created ? a.id : undefined);
    this.counts.joinedHere += mine.length;
    // Not marked here: the next poll finds these again, applies them again (a join applied twice
    // changes nothing) and marks them once they are in the shared view; a raise never waits on
    // the view writer.
  }

  /** Safety first: the alarm and its ticket stand; the grouping is this member's for now. */
  private groupHere(a: Alarm): void {
    this.counts.groupedLocally++;
    const inc = this.o.alarms.groupLocally(a.id);
    if (inc) this.apart.set(inc.id, inc);
  }

  /** One look at the shared table (see the class comment); a failure is retried at the next one. */
  async poll(): Promise<void> {
    try {
      await this.reconcile();
      if (this.clears.length > 0) {
        const ids = this.clears;
        this.clears = [];
        await this.o.store.cleared(ids).catch((err: unknown) => {
          this.clears.unshift(...ids);
          throw err;
        });
      }
      await this.joins(await this.o.store.pending(this.o.pendingLimit, this.o.tickets !== undefined));
      const g = this.o.grouping();
      const now = this.o.now?.() ?? Date.now();
      const closed = await this.o.store.closeQuiet(now, g.windowMs);
      if (closed.length > 0) {
        this.counts.closed += closed.length;
        this.o.alarms.updateIncidents(closed);
        this.o.log.info(
          { incidents: closed.map((i) => i.id) },
          'incidents closed: no alarm of them active in the cluster',
        );
      }
      if (now - this.prunedAt >= PRUNE_MS) {
        this.prunedAt = now;
        this.counts.pruned += await this.o.store.prune(now, 2 * g.windowMs);
      }
      this.ok();
    } catch (err) {
      this.failed(err);
    }
  }

  private async joins(pending: readonly PendingJoin[]): Promise<void> {
    if (pending.length === 0) return;
    const ids = [...new Set(pending.map((p) => p.incidentId))];
    const incidents = new Map((await this.o.store.incidents(ids)).map((i) => [i.id, i]));
    const alarmSeen: string[] = [];
    const ticketSeen: string[] = [];
    for (const id of ids) {
      const inc = incidents.get(id);
      if (!inc) continue;
      const rows = pending.filter((p) => p.incidentId === id);
      const waiting = rows.filter((p) => !p.alarmSeen).map((p) => p.alarmId);
      if (waiting.length > 0) {
        const mine = this.o.alarms.applyGroup(inc, waiting);
        this.counts.joinedHere += mine.length;
        alarmSeen.push(...mine);
      }
      const toTicket = rows.filter((p) => !p.ticketSeen);
      if (toTicket.length > 0 && this.o.tickets) {
        const listed = this.o.tickets.joinIncidentTicket(id, toTicket);
        if (listed) {
          this.counts.ticketJoins += listed.length;
          ticketSeen.push(...listed);
        }
      }
    }
    if (alarmSeen.length + ticketSeen.length === 0 || !(await this.copied())) return;
    await this.o.store.markSeen('alarm_seen', alarmSeen);
    await this.o.store.markSeen('ticket_seen', ticketSeen);
  }

  /** Whether the joins applied here so far are in the shared view (see `copied` in the options). */
  private async copied(): Promise<boolean> {
    return this.o.copied ? this.o.copied(COPY_WAIT_MS) : true;
  }

  /** Incidents made apart meet the shared table, once each, when PostgreSQL answers again. */
  private async reconcile(): Promise<void> {
    for (const [id, local] of [...this.apart]) {
      const alarms = this.o.alarms.incidentAlarms(id).map((a) => ({
        id: a.id,
        device: a.device,
        raisedAt: a.raisedAt,
        critical: a.critical,
        active: a.state === 'active-unacknowledged' || a.state === 'active-acknowledged',
      }));
      const r = await this.o.store.reconcile(local, alarms);
      this.apart.delete(id);
      this.counts.reconciled++;
      if (r.merged) {
        this.counts.merged++;
        this.o.alarms.updateIncidents([r.kept, r.merged]);
        this.o.log.warn(
          { kept: r.kept.id, merged: r.merged.id, site: local.site, rule: local.rule },
          'two incidents of one site and rule (PostgreSQL was out of reach): the earlier one kept',
        );
      }
    }
  }

  private ok(): void {
    if (this.lastError !== undefined) this.o.log.info('incident grouping reaches PostgreSQL again');
    this.lastError = undefined;
  }

  private failed(err: unknown): void {
    this.counts.failures++;
    const msg = (err as Error).message;
    if (this.lastError === undefined)
      this.o.log.warn(
        { err: msg },
        'incident grouping cannot reach PostgreSQL; grouping on this member alone',
      );
    this.lastError = msg;
  }
}
