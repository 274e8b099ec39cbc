import { FleetError } from '../../fleet/service.js';
import { HttpError, type ErrorCode } from '../errors.js';

/** The catalogue code of each kind of refused runtime-configuration change. */
export const FLEET_ERROR_CODES: Record<FleetError['kind'], ErrorCode> = {
  invalid: 'GW_ERR_BAD_REQUEST',
  'not-found': 'GW_ERR_NOT_FOUND',
  pinned: 'GW_ERR_PINNED',
  'in-use': 'GW_ERR_CHANNEL_IN_USE',
};

/**
 * A refused runtime-configuration change as the catalogue answers it (400, 404, 409). With `where`
 * (the part of the request checked field by field: `body`, `query`), an invalid value's problems
 * carry the request's paths (`body.every.days`) in `issues`; a not-found or pinned one names the
 * setting (a schedule id, the pin), not a field of the request. Anything else is rethrown.
 */
export function refused(err: unknown, where?: 'body' | 'query'): never {
  if (!(err instanceof FleetError)) throw err;
  // A change that would remove or disable a webhook contacts still use: which contacts.
  if (err.kind === 'in-use')
    throw new HttpError(FLEET_ERROR_CODES[err.kind], err.message, { contacts: err.users });
  if (where === undefined) throw new HttpError(FLEET_ERROR_CODES[err.kind], err.message);
  const at = (path: string) => (err.kind !== 'invalid' ? path : path ? `${where}.${path}` : where);
  const issues = err.problems.map((p) => ({ path: at(p.path), message: p.message }));
  throw new HttpError(FLEET_ERROR_CODES[err.kind], issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
    issues,
  });
}
