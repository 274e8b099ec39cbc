import type { Contact } from '../workorders/escalation.js';
import type { DeliveryFailure } from '../workorders/types.js';

export type { DeliveryFailure };
import type { NotifyPayload, QueueRow } from './queue.js';

/** Which escalation contact (if any) a queued row was carrying the news to. Pure. */
export function contactOfRow(row: QueueRow): { level: number; contact: Contact } | undefined {
  let body: NotifyPayload;
  let to: string[] = [];
  try {
    body = JSON.parse(row.body) as NotifyPayload;
    if (row.target) to = (JSON.parse(row.target) as { to?: string[] }).to ?? [];
  } catch {
    return undefined;
  }
  let out: { level: number; contact: Contact } | undefined;
  for (const c of body.changes) {
    if (c.action !== 'escalate') continue;
    const d = c.data as { level?: number; contact?: Contact } | undefined;
    if (!d?.contact || typeof d.level !== 'number') continue;
    const reaches =
      (d.contact.webhook !== undefined && row.channel === `webhook:${d.contact.webhook}`) ||
      (d.contact.email !== undefined && row.channel === 'email' && to.includes(d.contact.email));
    if (reaches && (out === undefined || d.level > out.level)) out = { level: d.level, contact: d.contact };
  }
  return out;
}
