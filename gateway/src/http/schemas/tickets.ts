import { z } from 'zod';
import { RULE_CLASSES } from '../../rules/types.js';
import { actionBody } from '../../workorders/action-body.js';
import { PRIORITIES, TICKET_ACTIONS, TICKET_STATUSES } from '../../workorders/types.js';
import { id, isoTime } from './common.js';
import { named, open } from './registry.js';

export const ticketStatusEnum = z.enum(TICKET_STATUSES);
export const priorityEnum = z.enum(PRIORITIES);

export const ticketHistorySchema = open({
  ts: isoTime.nullable(),
  actor: z.string(),
  action: z.string(),
  from: z.string().nullable(),
  to: z.string().nullable(),
  note: z.string().nullable(),
});

/** A work order (CONTRACT.md), times in RFC 3339; more fields than listed here may come. */
export const ticketSchema = named(
  open({
    id: z.string(),
    title: z.string(),
    status: ticketStatusEnum,
    priority: priorityEnum,
    site: z.string(),
    device: z.string().nullable(),
    rule: z.string().nullable(),
    alarmId: z.string().nullable(),
    createdAt: isoTime,
    responseDueAt: isoTime.nullable(),
    resolveDueAt: isoTime.nullable(),
    respondedAt: isoTime.nullable(),
    assignee: z.string().nullable(),
    escalationLevel: z.number(),
    repeatOf: z.string().nullable(),
    requester: z.string().optional(),
    resolvedBy: z.string().nullable().optional(),
    verifiedBy: z.string().nullable().optional(),
    maintenance: z
      .looseObject({
        schedule: z.string(),
        dueAt: isoTime.nullable(),
        /** The completion form resolve needs. */
        form: z.string(),
        record: z.record(z.string(), z.unknown()).nullable(),
      })
      .nullable()
      .optional(),
    /** On hold since heldSince; the resolution clock stands still unless clockPaused is false. */
    onHold: z.boolean().optional(),
    heldSince: isoTime.nullable().optional(),
    holdReason: z.string().nullable().optional(),
    clockPaused: z.boolean().optional(),
    heldMs: z.number().optional(),
    /** The audit trail (left out of lists unless `include=history`). */
    history: z.array(ticketHistorySchema).optional(),
    /** What the caller may do next (single-ticket answers). */
    allowedActions: z.array(z.enum(TICKET_ACTIONS)).optional(),
  }),
  'Ticket',
);

export const ticketPageSchema = z.object({
  tickets: z.array(ticketSchema),
  total: z.number(),
  offset: z.number(),
  limit: z.number(),
  nextOffset: z.number().nullable(),
});

export const ticketListQuery = z.strictObject({
  status: ticketStatusEnum.optional(),
  site: id.optional(),
  device: id.optional(),
  priority: priorityEnum.optional(),
  assignee: id.optional(),
  /** Changed at or after (RFC 3339): the answer is then oldest change first, for polling. */
  updatedSince: z.iso
    .datetime({ offset: true, error: 'must be an RFC 3339 time' })
    .transform((v) => Date.parse(v))
    .optional(),
  overdue: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).optional(),
  offset: z.coerce.number().int().min(0).max(10_000_000).optional(),
  /** `history`: each ticket with its audit trail (left out of lists by default, for size). */
  include: z.enum(['history']).optional(),
});

export const newTicketBody = z.strictObject({
  title: z.string().min(1).max(500),
  site: id,
  device: id.optional(),
  class: z.enum(RULE_CLASSES).optional(),
  priority: priorityEnum.optional(),
  serviceItem: z.string().min(1).max(500).optional(),
  standard: z.string().min(1).max(500).optional(),
  location: z.string().min(1).max(500).optional(),
  note: z.string().max(4000).optional(),
});

export const ticketActionBody = actionBody;
export const ticketParams = z.object({ id });

export const calendarEntrySchema = open({
  schedule: z.string(),
  title: z.string(),
  site: z.string(),
  device: z.string().nullable(),
  dueAt: isoTime,
  ticketId: z.string().nullable(),
  status: z.string().nullable(),
  form: z.string().optional(),
});
export const calendarSchema = z.object({
  from: isoTime,
  to: isoTime,
  occurrences: z.array(calendarEntrySchema),
});

export type Ticket = z.infer<typeof ticketSchema>;
export type TicketHistoryEntry = z.infer<typeof ticketHistorySchema>;
export type TicketPage = z.infer<typeof ticketPageSchema>;
export type NewTicket = z.input<typeof newTicketBody>;
export type TicketActionBody = z.input<typeof ticketActionBody>;
export type CalendarEntry = z.infer<typeof calendarEntrySchema>;
export type Calendar = z.infer<typeof calendarSchema>;
