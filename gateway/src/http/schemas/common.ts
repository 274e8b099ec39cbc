import { z } from 'zod';
import { catalogueTable, ERROR_CODES } from '../errors.js';
import { named } from './registry.js';

/** A site, device, alarm or ticket id as routes take it. */
export const id = z.string().min(1).max(200);
/** An RFC 3339 time as the API writes it. */
export const isoTime = z.string();
export const roleEnum = z.enum(['viewer', 'engineer', 'admin']);
export const metricValue = z.union([z.number(), z.boolean()]);

/** Every failure: `{"error": {code, message, retryable}}`, sometimes with more fields (`issues`, `problems`). */
export const errorSchema = named(
  z.object({
    error: z.looseObject({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      retryable: z.boolean().optional(),
      /** Schema failures: each failing field with its path, e.g. `body.untilMs`. */
      issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    }),
  }),
  'Error',
  `An error from the catalogue:\n\n${catalogueTable()}`,
);
export type ApiErrorBody = z.infer<typeof errorSchema>;

/** Failures every route behind a token can answer with; routes add their own (400, 404, 409, 503). */
export const authErrors = { 401: errorSchema, 403: errorSchema, 500: errorSchema } as const;
