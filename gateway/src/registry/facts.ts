import type { DeviceFacts, DeviceFactsLookup } from '../rules/types.js';
import type { DeviceEntry, DeviceRegistry } from './registry.js';

/** The rule engine's view of a device; registry entries call the device `id`, facts call it `device`. */
export function factsOf(e: DeviceEntry): DeviceFacts {
  const f: DeviceFacts = {
    site: e.site,
    device: e.id,
    kind: e.kind,
    critical: e.critical,
    reportIntervalSec: e.reportIntervalSec,
  };
  if (e.ratedMaxFlow !== undefined) f.ratedMaxFlow = e.ratedMaxFlow;
  if (e.meterClass !== undefined) f.meterClass = e.meterClass;
  return f;
}

/**
 * Adapts the registry to the engine's DeviceFactsLookup. The engine asks only when it binds a
 * device's rules (first sight, reload) and for read rates, never per reading, so building a
 * small object per call is fine.
 */
export class RegistryFacts implements DeviceFactsLookup {
  constructor(private readonly registry: DeviceRegistry) {}

  get(site: string, device: string): DeviceFacts | undefined {
    const e = this.registry.lookup(site, device);
    return e ? factsOf(e) : undefined;
  }

  *list(): Iterable<DeviceFacts> {
    for (const e of this.registry.entries()) yield factsOf(e);
  }
}
