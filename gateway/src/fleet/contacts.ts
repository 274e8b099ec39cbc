import { z } from 'zod';
import type { GatewayConfig } from '../config/schema.js';
import { contactSchema } from '../workorders/schema.js';

export type Contact = z.infer<typeof contactSchema>;
export const chainSchema = z.array(contactSchema).min(1);
export const WEEK_PATTERN = /^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$/;

/** The ISO 8601 week of an instant, `2026-W49` (weeks start on Monday; UTC). */
export function isoWeek(ms: number): string {
  const d = new Date(ms);
  const day = (d.getUTCDay() + 6) % 7; // Monday 0
  // The Thursday of this week decides the year.
  const thu = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3);
  const year = new Date(thu).getUTCFullYear();
  const jan4 = Date.UTC(year, 0, 4);
  const jan4Day = (new Date(jan4).getUTCDay() + 6) % 7;
  const week1 = jan4 - jan4Day * 86_400_000;
  const n = Math.floor((thu - week1) / (7 * 86_400_000)) + 1;
  return `${year}-W${String(n).padStart(2, '0')}`;
}

/**
 * The escalation chain in force: the operators' chain (or the file's), with this week's on-call
 * contact at level 1 when the rota names one.
 */
export function layerContacts(
  file: GatewayConfig['workorders']['contacts'],
  chain: Contact[] | undefined,
  onCall: Contact | undefined,
): Contact[] {
  const base = chain ?? file;
  return onCall ? [onCall, ...base.slice(1)] : base;
}

/** What the config file's own check says of a contact: its webhook must exist, its email be on. */
export function contactProblems(cfg: GatewayConfig, contacts: readonly Contact[], at: string): string[] {
  const hooks = new Set(cfg.notifications.webhooks.map((w) => w.name));
  const out: string[] = [];
  contacts.forEach((k, i) => {
    if (k.webhook !== undefined && !hooks.has(k.webhook))
      out.push(`${at}.${i}.webhook: no webhook named ${k.webhook} under notifications.webhooks`);
    if (k.email !== undefined && !cfg.notifications.email.enabled)
      out.push(`${at}.${i}.email: needs notifications.email.enabled (and its smtp settings)`);
  });
  return out;
}
