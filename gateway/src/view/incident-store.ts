import { randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { decideGroup, keptIncident, type WindowRaise } from '../alarms/incident-window.js';
import type { AlarmsConfig } from '../alarms/schema.js';
import type { Incident } from '../alarms/types.js';
import type { RuleClass } from '../rules/types.js';
import type { ViewTables } from './tables.js';

/** A raise as the alarm service made it, for the shared count. */
export interface SharedRaise {
  id: string;
  site: string;
  device: string;
  rule: string;
  class: RuleClass;
  critical: boolean;
  raisedAt: number;
}

/** What one raise did to the cluster's incidents. */
export interface SharedGroupResult {
  incident: Incident;
  /** The alarms that joined it now (all of the window's when it opened). */
  joined: string[];
  created: boolean;
}

/** A raise joined to an incident that a member has yet to act on. */
export interface PendingJoin {
  alarmId: string;
  device: string;
  ts: number;
  incidentId: string;
  alarmSeen: boolean;
  ticketSeen: boolean;
}

/** Result of reconciling an incident made apart (PostgreSQL was out of reach) with the shared ones. */
export interface Reconciled {
  /** The incident every alarm of the (site, rule) is in from now on. */
  kept: Incident;
  /** The other one, closed as its duplicate (null: none was open, the local one became shared). */
  merged: Incident | null;
}

type Tx = Transaction<ViewTables>;
type GroupRow = ViewTables['incident_groups'];

/** Incident states that are not over: `open` (joinable) and `settling` (waits for its alarms). */
const LIVE = ['open', 'settling'];

/** Alarm states past the condition (`view_alarms.state`): such an alarm keeps no incident open. */
const CLEARED = ['cleared-unacknowledged', 'cleared'];

/**
 * The cluster's incident grouping in PostgreSQL (ADR 0170). Each raise is one short transaction
 * under a transaction-scoped advisory lock of its (site, rule), so that two members' raises of one
 * (site, rule) are counted one after the other: the raise is recorded, the window counted over every
 * member's raises, and the open incident joined or created. Every change also writes the incident's
 * row of the shared view (`view_incidents`), which `GET /api/incidents` reads on every member.
 */
export class SharedIncidentStore {
  constructor(
    private readonly handle: () => Kysely<object>,
    private readonly instanceId: string,
  ) {}

  private get db(): Kysely<ViewTables> {
    return this.handle().withTables<ViewTables>();
  }

  async raise(r: SharedRaise, cfg: AlarmsConfig['grouping']): Promise<SharedGroupResult | null> {
    return this.db.transaction().execute(async (tx) => {
      await lock(tx, r.site, r.rule);
      const me: WindowRaise = { alarmId: r.id, ts: r.raisedAt, critical: r.critical };
      await tx
        .insertInto('incident_raises')
        .values({
          alarm_id: r.id,
          site: r.site,
          rule: r.rule,
          device: r.device,
          ts: r.raisedAt,
          critical: r.critical ? 1 : 0,
          incident_id: null,
          active: 1,
          alarm_seen: 0,
          ticket_seen: 0,
        })
        .onConflict((oc) => oc.column('alarm_id').doNothing())
        .execute();
      const open = await this.openOf(tx, r.site, r.rule);
      const waiting = await tx
        .selectFrom('incident_raises')
        .select(['alarm_id', 'ts', 'critical'])
        .where('site', '=', r.site)
        .where('rule', '=', r.rule)
        .where('incident_id', 'is', null)
        .where('ts', '>=', r.raisedAt - cfg.windowMs)
        .where('ts', '<=', r.raisedAt + cfg.windowMs)
        .execute();
      const d = decideGroup(
        cfg,
        r.class,
        me,
        open ? { id: open.id, lastAlarmAt: Number(open.last_alarm_at) } : undefined,
        waiting.map((w) => ({ alarmId: w.alarm_id, ts: Number(w.ts), critical: w.critical === 1 })),
      );
      if (d.kind === 'none') return null;
      if (d.kind === 'join') {
        const row = await tx
          .updateTable('incident_groups')
          .set((eb) => ({
            alarm_count: eb('alarm_count', '+', 1),
            last_alarm_at: sql<number>`greatest(last_alarm_at, ${r.raisedAt})`,
          }))
          .where('id', '=', d.incidentId)
          .returningAll()
          .executeTakeFirstOrThrow();
        await this.join(tx, d.incidentId, [r.id]);
        const incident = toIncident(row);
        await this.show(tx, incident);
        return { incident, joined: [r.id], created: false };
      }
      // A window's worth without a joinable incident: the one still open is past its window, and it
      // only waits for its alarms now (it stays listed as open, as on a single instance).
      if (open)
        await tx
          .updateTable('incident_groups')
          .set({ state: 'settling' })
          .where('id', '=', open.id)
          .execute();
      const incident: Incident = {
        id: randomUUID(),
        site: r.site,
        rule: r.rule,
        class: r.class,
        openedAt: d.members[0]!.ts,
        lastAlarmAt: d.members[d.members.length - 1]!.ts,
        alarmCount: d.members.length,
        state: 'open',
        closedAt: null,
      };
      await tx.insertInto('incident_groups').values(toRow(incident, 'open')).execute();
      const joined = d.members.map((m) => m.alarmId);
      await this.join(tx, incident.id, joined);
      await this.show(tx, incident);
      return { incident, joined, created: true };
    });
  }

  /** The alarm cleared (or closed as a duplicate) on whichever member holds it now. */
  async cleared(alarmIds: readonly string[]): Promise<void> {
    if (alarmIds.length === 0) return;
    await this.db
      .updateTable('incident_raises')
      .set({ active: 0 })
      .where('alarm_id', 'in', alarmIds)
      .execute();
  }

  /**
   * Closes, once across the cluster, each incident past its window with no active alarm left on
   * any member. The update's condition decides: two members running it at once close it once. An
   * alarm counts as active while its raise says so and the shared view does not show it cleared.
   */
  async closeQuiet(now: number, windowMs: number): Promise<Incident[]> {
    return this.db.transaction().execute(async (tx) => {
      const rows = await tx
        .updateTable('incident_groups')
        .set({ state: 'closed', closed_at: now })
        .where('state', 'in', LIVE)
        .where('last_alarm_at', '<=', now - windowMs)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('incident_raises')
                .select('alarm_id')
                .whereRef('incident_raises.incident_id', '=', 'incident_groups.id')
                .where('incident_raises.active', '=', 1)
                // A clear reported only in the holder's memory is lost with it (SIGKILL, stop, a
                // crash during an outage): the alarm's row in the shared view, written by whichever
                // member holds it, says it cleared all the same.
                .where(({ not, exists, selectFrom }) =>
                  not(
                    exists(
                      selectFrom('view_alarms')
                        .select('view_alarms.id')
                        .whereRef('view_alarms.id', '=', 'incident_raises.alarm_id')
                        .where('view_alarms.state', 'in', CLEARED),
                    ),
                  ),
                ),
            ),
          ),
        )
        .returningAll()
        .execute();
      const out = rows.map(toIncident);
      for (const i of out) await this.show(tx, i);
      return out;
    });
  }

  /**
   * Forgets raises that can count no more: older than `keepMs` and in no incident (past any
   * window) or in one that is over. Returns how many rows went.
   */
  async prune(now: number, keepMs: number): Promise<number> {
    const r = await this.db
      .deleteFrom('incident_raises')
      .where('ts', '<', now - keepMs)
      .where((eb) =>
        eb.or([
          eb('incident_id', 'is', null),
          eb(
            'incident_id',
            'in',
            eb.selectFrom('incident_groups').select('id').where('state', 'in', ['closed', 'merged']),
          ),
        ]),
      )
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /**
   * Joins not yet acted on by the alarm's holder or by the incident ticket's holder (oldest first),
   * each side on its own: rows one side never marks (no member keeps work orders, so no ticket
   * holder; an alarm gone before its holder saw the join) must not fill the other side's page.
   * `tickets: false`: this member holds no tickets, the ticket side is not asked for.
   */
  async pending(limit = 500, tickets = true): Promise<PendingJoin[]> {
    const side = (which: 'alarm_seen' | 'ticket_seen') =>
      this.db
        .selectFrom('incident_raises')
        .select(['alarm_id', 'device', 'ts', 'incident_id', 'alarm_seen', 'ticket_seen'])
        .where('incident_id', 'is not', null)
        .where(which, '=', 0)
        // Joins of an incident that is over are not waited for any longer (its ticket may be closed).
        .where('incident_id', 'in', (eb) =>
          eb.selectFrom('incident_groups').select('id').where('state', 'in', LIVE),
        )
        .orderBy('ts')
        .limit(limit)
        .execute();
    const rows = [...(await side('alarm_seen')), ...(tickets ? await side('ticket_seen') : [])];
    const byId = new Map(rows.map((r) => [r.alarm_id, r]));
    return [...byId.values()]
      .sort((x, y) => Number(x.ts) - Number(y.ts))
      .map((r) => ({
        alarmId: r.alarm_id,
        device: r.device,
        ts: Number(r.ts),
        incidentId: r.incident_id!,
        alarmSeen: r.alarm_seen === 1,
        ticketSeen: r.ticket_seen === 1,
      }));
  }

  async markSeen(which: 'alarm_seen' | 'ticket_seen', alarmIds: readonly string[]): Promise<void> {
    if (alarmIds.length === 0) return;
    await this.db
      .updateTable('incident_raises')
      .set({ [which]: 1 })
      .where('alarm_id', 'in', alarmIds)
      .execute();
  }

  /** The shared copies of these incidents (a member's memory is refreshed from them). */
  async incidents(ids: readonly string[]): Promise<Incident[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.selectFrom('incident_groups').selectAll().where('id', 'in', ids).execute();
    return rows.map(toIncident);
  }

  /**
   * An incident a member made alone while PostgreSQL was out of reach, with its alarms (held by that
   * member), meets the shared table: with no open incident of its (site, rule) it becomes the
   * shared one; with one, the earlier is kept (`keptIncident`) and the other closed as `merged`
   * into it, its alarms joined to the kept one for their holders and the kept ticket's holder.
   */
  async reconcile(
    local: Incident,
    alarms: readonly { id: string; device: string; raisedAt: number; critical: boolean; active: boolean }[],
  ): Promise<Reconciled> {
    return this.db.transaction().execute(async (tx) => {
      await lock(tx, local.site, local.rule);
      const known = await tx
        .selectFrom('incident_groups')
        .selectAll()
        .where('id', '=', local.id)
        .executeTakeFirst();
      if (known) return { kept: toIncident(known), merged: null };
      const open = await this.openOf(tx, local.site, local.rule);
      const row = (a: (typeof alarms)[number], incidentId: string, seen: number) => ({
        alarm_id: a.id,
        site: local.site,
        rule: local.rule,
        device: a.device,
        ts: a.raisedAt,
        critical: a.critical ? 1 : 0,
        incident_id: incidentId,
        active: a.active ? 1 : 0,
        alarm_seen: seen,
        ticket_seen: seen,
      });
      const upsert = async (rows: ReturnType<typeof row>[]) => {
        if (rows.length === 0) return;
        await tx
          .insertInto('incident_raises')
          .values(rows)
          .onConflict((oc) =>
            oc.column('alarm_id').doUpdateSet((eb) => ({
              incident_id: eb.ref('excluded.incident_id'),
              alarm_seen: eb.ref('excluded.alarm_seen'),
              ticket_seen: eb.ref('excluded.ticket_seen'),
            })),
          )
          .execute();
      };
      if (!open) {
        // Its alarms and its ticket are this member's: nothing for anyone to act on.
        await tx.insertInto('incident_groups').values(toRow(local, 'open')).execute();
        await upsert(alarms.map((a) => row(a, local.id, 1)));
        await this.show(tx, local);
        return { kept: local, merged: null };
      }
      const shared = toIncident(open);
      const { kept, merged } = keptIncident(shared, local);
      const now = Date.now();
      const closed: Incident = { ...merged, state: 'closed', closedAt: now };
      const sum = { ...kept, alarmCount: kept.alarmCount + merged.alarmCount };
      sum.lastAlarmAt = Math.max(kept.lastAlarmAt, merged.lastAlarmAt);
      if (kept === local) {
        // The shared one gives way: its row is merged, the local one opens in its place, and its
        // alarms (on whichever members) join the kept one when their holders next look.
        await tx
          .updateTable('incident_groups')
          .set({ state: 'merged', merged_into: local.id, closed_at: now })
          .where('id', '=', shared.id)
          .execute();
        await tx.insertInto('incident_groups').values(toRow(sum, 'open')).execute();
        await tx
          .updateTable('incident_raises')
          .set({ incident_id: local.id, alarm_seen: 0, ticket_seen: 0 })
          .where('incident_id', '=', shared.id)
          .execute();
        await upsert(alarms.map((a) => row(a, local.id, 1)));
      } else {
        await tx
          .insertInto('incident_groups')
          .values({ ...toRow(merged, 'merged'), merged_into: kept.id, closed_at: now })
          .execute();
        await tx
          .updateTable('incident_groups')
          .set({ alarm_count: sum.alarmCount, last_alarm_at: sum.lastAlarmAt })
          .where('id', '=', kept.id)
          .execute();
        await upsert(alarms.map((a) => row(a, kept.id, 0)));
      }
      await this.show(tx, sum);
      await this.show(tx, closed);
      return { kept: sum, merged: closed };
    });
  }

  private async openOf(tx: Tx, site: string, rule: string): Promise<GroupRow | undefined> {
    return tx
      .selectFrom('incident_groups')
      .selectAll()
      .where('site', '=', site)
      .where('rule', '=', rule)
      .where('state', '=', 'open')
      .executeTakeFirst();
  }

  private async join(tx: Tx, incidentId: string, alarmIds: readonly string[]): Promise<void> {
    await tx
      .updateTable('incident_raises')
      .set({ incident_id: incidentId })
      .where('alarm_id', 'in', alarmIds)
      .execute();
  }

  /** The incident's row in the shared view (`GET /api/incidents` on every member). */
  private async show(tx: Tx, i: Incident): Promise<void> {
    await tx
      .insertInto('view_incidents')
      .values({
        id: i.id,
        instance_id: this.instanceId,
        site: i.site,
        state: i.state,
        opened_at: i.openedAt,
        body: JSON.stringify(i),
      })
      .onConflict((oc) =>
        oc.column('id').doUpdateSet((eb) => ({
          state: eb.ref('excluded.state'),
          body: eb.ref('excluded.body'),
          instance_id: eb.ref('excluded.instance_id'),
        })),
      )
      .execute();
  }
}

/** Serialises the raises of one (site, rule) across the cluster, for this transaction only. */
async function lock(tx: Tx, site: string, rule: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(hashtext(${`${site}|${rule}`}))`.execute(tx);
}

function toIncident(r: GroupRow): Incident {
  const over = r.state === 'closed' || r.state === 'merged';
  return {
    id: r.id,
    site: r.site,
    rule: r.rule,
    class: r.class as RuleClass,
    openedAt: Number(r.opened_at),
    lastAlarmAt: Number(r.last_alarm_at),
    alarmCount: Number(r.alarm_count),
    state: over ? 'closed' : 'open',
    closedAt: over ? Number(r.closed_at ?? r.last_alarm_at) : null,
  };
}

function toRow(i: Incident, state: string): GroupRow {
  return {
    id: i.id,
    site: i.site,
    rule: i.rule,
    class: i.class,
    state,
    opened_at: i.openedAt,
    last_alarm_at: i.lastAlarmAt,
    alarm_count: i.alarmCount,
    closed_at: null,
    merged_into: null,
  };
}
