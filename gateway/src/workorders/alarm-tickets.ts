import type { AlarmEvent } from '../alarms/types.js';
import type { Changes } from './changes.js';
import { createsTicket, isTransientAutoResolve, priorityOf } from './policy.js';
import type { WorkordersConfig } from './schema.js';
import { raisePriority, startCycle } from './sla.js';
import { isActive, markResolved } from './state-machine.js';
import type { HistoryEntry, Ticket } from './types.js';

const SYSTEM = 'system';

/** What applying alarm events needs of the work-order service. */
export interface AlarmTicketContext {
  cfg: WorkordersConfig;
  now(): number;
  /** The unclosed tickets as this operation sees them: its working copies where it has them. */
  tickets(changes: Changes): Iterable<Ticket>;
  /** A new ticket for the alarm (the policy said yes and no ticket stands for it yet). */
  create(e: AlarmEvent, incidentId: string | null, changes: Changes): void;
}

/**
 * One alarm event against the tickets: a raise makes a ticket or adds to the one of its device and
 * rule (reopening it when resolved: the fix did not hold), an escalation may raise its priority, a
 * clear adds a note (and resolves a transient rule's ticket), a group joins the incident's ticket.
 * Changes are made on the operation's working copies.
 */
export function applyAlarmEvent(
  ctx: AlarmTicketContext,
  e: AlarmEvent,
  incidentOf: Map<string, string>,
  changes: Changes,
): void {
  const { cfg } = ctx;
  const a = e.alarm;
  const found = ticketOf(ctx.tickets(changes), a.site, a.device, a.rule);
  const note = (what: string) => `${what}: ${a.message} (value ${String(a.value)})`;
  const alarmData = { alarmId: a.id, value: a.value, severity: a.severity };
  // Shelved or inside a maintenance window: recorded by the alarms, but no ticket and nobody paged.
  // When the shelf or window ends with the alarm still active, its `unshelve`/`unsuppress` raises it.
  if (isQuiet(a) && e.type !== 'clear') return;
  switch (e.type) {
    case 'unshelve':
    case 'unsuppress':
    case 'raise': {
      if (!createsTicket(cfg, a)) return;
      // Raised now, once: a ticket already made for this very alarm (before the shelf) is left alone.
      if (e.type !== 'raise' && found?.alarmIds.includes(a.id)) return;
      if (found) {
        // One condition, one ticket: a returning alarm adds to it.
        const t = changes.edit(found);
        if (!t.alarmIds.includes(a.id)) t.alarmIds.push(a.id);
        t.conditionCleared = false;
        entry(t, e.ts, 'alarm-returned', note('alarm returned'), alarmData);
        raise(ctx, t, e);
        if (t.status === 'resolved') {
          // The fix did not hold: the ticket needs work again, in a new cycle with fresh deadlines.
          startCycle(t, ctx.now(), cfg);
          t.history.push({
            ts: e.ts,
            actor: SYSTEM,
            action: 'reopen',
            from: 'resolved',
            to: 'reopened',
            note: 'alarm returned after resolution',
            data: { cycle: t.cycle },
          });
          t.status = 'reopened';
        }
        return;
      }
      // An alarm grouped while held back joins its incident's ticket when it is raised.
      const incident = incidentOf.get(a.id) ?? (e.type === 'raise' ? undefined : (a.incidentId ?? undefined));
      const it = incident ? incidentTicket(ctx.tickets(changes), incident) : undefined;
      if (it) {
        joinIncident(changes.edit(it), a.device, a.id, e.ts, incident!);
        return;
      }
      ctx.create(e, incident ?? null, changes);
      return;
    }
    case 'escalate': {
      if (!found) {
        // The milder alarm did not qualify; the worse one may.
        if (createsTicket(cfg, a)) ctx.create(e, incidentOf.get(a.id) ?? null, changes);
        return;
      }
      const t = changes.edit(found);
      t.severity = a.severity;
      entry(t, e.ts, 'alarm-escalated', note(`alarm now ${a.severity}`), alarmData);
      raise(ctx, t, e);
      return;
    }
    case 'clear': {
      if (!found) return;
      const t = changes.edit(found);
      t.conditionCleared = true;
      // Closing needs verification: a cleared condition is a note, not a resolution.
      entry(t, e.ts, 'alarm-cleared', note('alarm cleared'), alarmData);
      if (isActive(t.status) && t.rule === a.rule && isTransientAutoResolve(cfg, t.rule)) {
        const from = t.status;
        markResolved(t, SYSTEM, e.ts, cfg);
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
      return;
    }
    case 'group': {
      if (!e.incident || !found) return;
      const it = incidentTicket(ctx.tickets(changes), e.incident.id);
      if (!it && e.remoteIncident) {
        // Cluster mode (ADR 0170): the incident's ticket is another alarm's, here or on another
        // member; its holder adds this alarm to it. This ticket only notes the incident.
        if (found.incidentId === e.incident.id) return;
        entry(
          changes.edit(found),
          e.ts,
          'incident-joined',
          `alarm grouped into incident ${e.incident.id}, handled in the incident's ticket`,
          { incidentId: e.incident.id },
        );
        return;
      }
      if (!it) {
        const t = changes.edit(found);
        t.incidentId = e.incident.id;
        entry(t, e.ts, 'incident-joined', `alarm grouped into incident ${e.incident.id}`, {
          incidentId: e.incident.id,
        });
      } else if (it.id !== found.id) {
        // Both tickets already exist (the incident formed after them): link, never merge away work.
        joinIncident(changes.edit(it), a.device, a.id, e.ts, e.incident.id);
        entry(
          changes.edit(found),
          e.ts,
          'incident-joined',
          `incident ${e.incident.id} is handled in ticket ${it.id}`,
          { incidentId: e.incident.id, ticket: it.id },
        );
      }
      return;
    }
    default:
      return;
  }
}

/** Whether the alarm is held back from tickets and paging (a shelf or maintenance window covers it). */
export function isQuiet(a: { shelved: boolean; suppressed?: boolean }): boolean {
  return a.shelved || a.suppressed === true;
}

/** A worse alarm raises the ticket's priority; its deadlines tighten with it (recorded in the trail). */
function raise(ctx: AlarmTicketContext, t: Ticket, e: AlarmEvent): void {
  const from = t.priority;
  const data = raisePriority(t, priorityOf(ctx.cfg, e.alarm), ctx.now(), ctx.cfg);
  if (!data) return;
  const moved = [
    data.responseDueAt ? `respond by ${String(data.responseDueAt)}` : '',
    data.resolveDueAt ? `resolve by ${String(data.resolveDueAt)}` : '',
  ].filter(Boolean);
  entry(
    t,
    e.ts,
    'priority-raised',
    `priority ${from} → ${t.priority} (alarm ${e.alarm.severity})${moved.length ? `: ${moved.join(', ')}` : ': deadlines unchanged'}`,
    data,
  );
}

/** The unclosed ticket of a device and rule: its own, or the incident ticket listing the device. */
function ticketOf(tickets: Iterable<Ticket>, site: string, device: string, rule: string): Ticket | undefined {
  let found: Ticket | undefined;
  for (const t of tickets) {
    if (t.site !== site || t.rule !== rule) continue;
    if (t.device === device) return t;
    if (t.devices.includes(device)) found = t;
  }
  return found;
}

export function incidentTicket(tickets: Iterable<Ticket>, incidentId: string): Ticket | undefined {
  for (const t of tickets) if (t.incidentId === incidentId) return t;
  return undefined;
}

export function joinIncident(
  t: Ticket,
  device: string,
  alarmId: string,
  ts: number,
  incidentId: string,
): void {
  if (!t.devices.includes(device)) t.devices.push(device);
  if (!t.alarmIds.includes(alarmId)) t.alarmIds.push(alarmId);
  t.incidentId = incidentId;
  entry(t, ts, 'incident-joined', `${device} joined incident ${incidentId}`, { incidentId, device, alarmId });
}

function entry(
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
