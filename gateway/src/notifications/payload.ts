import type { HistoryEntry, Language } from '../workorders/types.js';
import type { NotifyEventType } from './schema.js';

/** The payload of one ticket event (documented in docs/workorders.md). */
export interface NotifyPayload {
  id: string;
  type: NotifyEventType;
  occurredAt: string;
  ticket: Record<string, unknown>;
  changes: Array<Omit<HistoryEntry, 'ts'> & { ts: string }>;
  /** The event in words, in the receiver's language (`language`): what a chat room or pager shows. */
  language?: Language;
  text?: { subject: string; body: string };
}
