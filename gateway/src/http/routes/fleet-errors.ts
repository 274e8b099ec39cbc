import type { FleetError } from '../../fleet/service.js';
import type { ErrorCode } from '../errors.js';

/** The catalogue code of each kind of refused runtime-configuration change. */
export const FLEET_ERROR_CODES: Record<FleetError['kind'], ErrorCode> = {
  invalid: 'GW_ERR_BAD_REQUEST',
  'not-found': 'GW_ERR_NOT_FOUND',
  pinned: 'GW_ERR_PINNED',
  'in-use': 'GW_ERR_CHANNEL_IN_USE',
};
