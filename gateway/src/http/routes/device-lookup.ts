import type { DeviceEntry, DeviceRegistry } from '../../registry/registry.js';
import { HttpError } from '../errors.js';

/**
 * Resolves the `:id` of a device route (`site/device`, or a bare id only one site uses); throws
 * 404 when no device has it and 409 when several sites do.
 */
export function lookupDevice(registry: DeviceRegistry, rawId: string): DeviceEntry {
  const id = decodeURIComponent(rawId);
  const r = registry.resolve(id);
  if (r.ok) return r.entry;
  if (r.error === 'ambiguous')
    throw new HttpError('GW_ERR_CONFLICT', `device id ${id} exists at several sites: ${r.keys.join(', ')}`);
  throw new HttpError('GW_ERR_NOT_FOUND', `no device ${id}`);
}
