import { escapeTag, quoteField } from '../alarms/line-protocol.js';
import type { TicketEvent } from './service.js';

const MIN = 60_000;

/**
 * One `ticket_event` line (InfluxDB line protocol, ms precision) per committed ticket change, for
 * the KPI panels: tags `site`, `device` (left out when none), `priority`, `class`, `event`,
 * `status` (after the change); fields `ticket_id`, `action` (the change's last audit line),
 * `escalation_level`, `repeat`, and `response_min` / `resolve_min` on the change that responded /
 * resolved, so each is counted once per ticket (again after a reopen).
 */
export function ticketEventLine(e: TicketEvent): string {
  const t = e.ticket;
  const last = e.entries[e.entries.length - 1];
  const tags: [string, string | null][] = [
    ['class', t.class],
    ['device', t.device],
    ['event', e.type],
    ['priority', t.priority],
    ['site', t.site],
    ['status', t.status],
  ];
  let line = 'ticket_event';
  // Sorted by key; an empty tag value is not allowed, so it is left out.
  for (const [k, v] of tags) if (v !== null && v !== '') line += `,${k}=${escapeTag(v)}`;
  const fields = [
    `ticket_id=${quoteField(t.id)}`,
    `action=${quoteField(last?.action ?? e.type)}`,
    `escalation_level=${t.escalationLevel}`,
  ];
  const responded = e.entries.some(
    (h) => (h.action === 'acknowledge' || h.action === 'assign') && h.ts === t.respondedAt,
  );
  if (responded && t.respondedAt !== null) fields.push(`response_min=${(t.respondedAt - t.createdAt) / MIN}`);
  const resolved = e.entries.some(
    (h) => (h.action === 'resolve' || h.action === 'auto-resolve') && h.ts === t.resolvedAt,
  );
  if (resolved && t.resolvedAt !== null) fields.push(`resolve_min=${(t.resolvedAt - t.createdAt) / MIN}`);
  fields.push(`repeat=${t.repeatOf !== null ? 'true' : 'false'}`);
  return `${line} ${fields.join(',')} ${Math.round(last?.ts ?? t.updatedAt)}\n`;
}
