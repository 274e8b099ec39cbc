import type { Source } from '../../gateway/src/core/source.js';
import type { OpcuaEndpointConfig } from './schema.js';
import { OpcuaSource } from './source.js';

/** One source per configured OPC UA endpoint; each connects and retries on its own. */
export function createOpcuaSources(endpoints: readonly OpcuaEndpointConfig[]): Source[] {
  return endpoints.map((ep) => new OpcuaSource(ep));
}
