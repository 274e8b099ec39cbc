import { randomUUID } from 'node:crypto';
import { EmailChannel, WebhookChannel, type Outcome } from './channels.js';
import type { QueueRow } from './queue.js';
import type { NotificationsConfig, NotifyEventType } from './schema.js';

const SUBJECT = 'Test notification from the facility gateway';
const TEXT = 'This is a test sent from the dashboard (Fleet → Channels). No ticket was created or changed.';

/**
 * A test notification through one channel in force (`webhook:<name>` or `email`), sent at once and
 * outside the queue: the answer is the channel's verdict on it. The webhook event is `ticket.test`,
 * which no receiver should take for a ticket. Undefined: no such channel in force.
 */
export async function sendTestNotification(
  n: Pick<NotificationsConfig, 'webhooks' | 'email'>,
  channel: string,
  to?: string[],
): Promise<Outcome | undefined> {
  if (channel === 'email') {
    if (!n.email.enabled) return undefined;
    const ch = new EmailChannel(n.email);
    ch.start();
    try {
      const rcpt = to ?? n.email.to;
      if (rcpt.length === 0)
        return { kind: 'dead', status: null, error: 'GW_ERR_EMAIL: no recipient (give `to`)' };
      return await ch.sendTest(rcpt, SUBJECT, TEXT);
    } finally {
      ch.stop();
    }
  }
  const w = n.webhooks.find((x) => `webhook:${x.name}` === channel);
  if (!w) return undefined;
  const ch = new WebhookChannel(w);
  ch.start();
  const now = Date.now();
  const id = `test-${randomUUID()}`;
  const body = JSON.stringify({
    id,
    type: 'ticket.test',
    occurredAt: new Date(now).toISOString(),
    ticket: null,
    changes: [],
    text: { subject: SUBJECT, body: TEXT },
  });
  const row: QueueRow = {
    seq: 0,
    eventId: id,
    channel,
    // Not a ticket event: the header tells a receiver to take it for a test only.
    event: 'ticket.test' as NotifyEventType,
    ticketId: '',
    createdAt: now,
    body,
    target: null,
    state: 'pending',
    attempts: 0,
    nextAt: now,
    queuedAt: now,
    lastStatus: null,
    lastError: null,
    deliveredAt: null,
  };
  return ch.deliver(row, now, new AbortController().signal);
}
