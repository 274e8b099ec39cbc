import type { FastifyReply } from 'fastify';
import type { DeviceEntry, DeviceRegistry } from '../../registry/registry.js';
import { sendError } from '../auth.js';

/**
 * Resolves the `:id` of a device route (`site/device`, or a bare id only one site uses).
 * Answers 404 or 409 itself and returns undefined when the id does not name one device.
 */
export function lookupDevice(
  registry: DeviceRegistry,
  rawId: string,
  reply: FastifyReply,
): DeviceEntry | undefined {
  const id = decodeURIComponent(rawId);
  const r = registry.resolve(id);
  if (r.ok) return r.entry;
  if (r.error === 'ambiguous') {
    void sendError(reply, 409, 'ambiguous', `device id ${id} exists at several sites: ${r.keys.join(', ')}`);
  } else {
    void sendError(reply, 404, 'not_found', `no device ${id}`);
  }
  return undefined;
}
