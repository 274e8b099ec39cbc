import type { AlarmEvent } from './types.js';

/**
 * InfluxDB line protocol for alarm events (measurement `alarm_event`). Readings are built by the
 * ingest path from ids that cannot hold special characters; alarm messages and notes are free
 * text, so everything here is escaped. Line breaks are replaced: the outbox and the 413 splitter
 * treat a newline as the end of a point.
 */

const LINE_BREAKS = /[\r\n]+/g;

/** Tag keys and values: comma, equals sign and space are escaped with a backslash. */
export function escapeTag(v: string): string {
  // A trailing backslash would escape the separator after it; double it so it stays literal.
  return v.replace(LINE_BREAKS, ' ').replace(/[,= ]/g, '\\$&').replace(/\\$/, '\\\\');
}

/** A string field value, quoted: backslash and double quote are escaped. */
export function quoteField(v: string): string {
  return '"' + v.replace(LINE_BREAKS, ' ').replace(/["\\]/g, '\\$&') + '"';
}

function numberField(v: number | boolean): string | undefined {
  if (typeof v === 'boolean') return v ? '1' : '0';
  // Written as a float always (no `i` suffix), so the field keeps one type across events.
  return Number.isFinite(v) ? String(v) : undefined;
}

/** One `alarm_event` line with its trailing newline, timestamped in ms (the outbox precision). */
export function alarmEventLine(e: AlarmEvent): string {
  const a = e.alarm;
  let line = 'alarm_event';
  const tags: [string, string][] = [
    ['device', a.device],
    ['event', e.type],
    ['rule', a.rule],
    ['severity', a.severity],
    ['site', a.site],
  ];
  // Sorted by key, as InfluxDB recommends; an empty tag value is not allowed, so it is left out.
  for (const [k, v] of tags) if (v !== '') line += `,${k}=${escapeTag(v)}`;
  const fields = [`alarm_id=${quoteField(a.id)}`, `state=${quoteField(a.state)}`];
  const value = a.value === null ? undefined : numberField(a.value);
  if (value !== undefined) fields.push(`value=${value}`);
  fields.push(`message=${quoteField(e.note ?? a.message)}`);
  if (e.user !== undefined) fields.push(`user=${quoteField(e.user)}`);
  if (a.incidentId !== null) fields.push(`incident_id=${quoteField(a.incidentId)}`);
  fields.push(`shelved=${a.shelved ? 'true' : 'false'}`);
  // Only when set: lines of alarms outside any window stay as they were.
  if (a.suppressed) fields.push('suppressed=true');
  return `${line} ${fields.join(',')} ${Math.round(e.ts)}\n`;
}
