import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import { sendError } from '../auth.js';

/** 400 naming every problem with its key path, e.g. `body.untilMs: expected number`. */
export function badRequest(reply: FastifyReply, error: z.ZodError, where: 'query' | 'body' | 'params') {
  const msg = error.issues
    .map((i) => {
      const keys =
        i.code === 'unrecognized_keys' ? `: unknown key ${(i as { keys: string[] }).keys.join(', ')}` : '';
      return `${[where, ...i.path.map(String)].join('.')}: ${i.message}${keys}`;
    })
    .join('; ');
  return sendError(reply, 400, 'bad_request', msg);
}
