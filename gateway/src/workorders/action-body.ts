import { z } from 'zod';
import { TICKET_ACTIONS } from './types.js';

/**
 * The fields of an action on a ticket, the same whether it comes over HTTP
 * (`POST /api/tickets/:id/actions`) or from a CMMS through the inbound webhook.
 */
export const actionFields = {
  action: z.enum(TICKET_ACTIONS),
  assignee: z.string().min(1).max(200).optional(),
  note: z.string().max(4000).optional(),
  /** A maintenance ticket's completion form, at resolve (tank disinfection: disinfectedAt, amount, unit). */
  form: z.record(z.string(), z.union([z.string().max(500), z.number(), z.boolean()])).optional(),
  /** Why a ticket goes on hold (`workorders.pause`), e.g. waiting_for_parts. */
  reason: z
    .string()
    .regex(/^[a-z0-9_]{1,64}$/, 'must match [a-z0-9_]{1,64}, e.g. waiting_for_parts')
    .optional(),
};

/** What an action needs beside its name, each missing piece reported with its key. */
export function checkAction(
  b: {
    action: string;
    assignee?: string | undefined;
    note?: string | undefined;
    reason?: string | undefined;
  },
  ctx: z.RefinementCtx,
): void {
  if (b.action === 'assign' && b.assignee === undefined)
    ctx.addIssue({ code: 'custom', path: ['assignee'], message: 'needed with action assign' });
  if ((b.action === 'comment' || b.action === 'hold') && !b.note)
    ctx.addIssue({ code: 'custom', path: ['note'], message: `needed with action ${b.action}` });
  if (b.reason !== undefined && b.action !== 'hold')
    ctx.addIssue({ code: 'custom', path: ['reason'], message: 'only with action hold' });
}

export const actionBody = z.strictObject(actionFields).superRefine(checkAction);
