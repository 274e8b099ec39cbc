/** Engine state as plain JSON, to survive a restart (an on-delay does not start over). */
export interface EngineSnapshot {
  version: 1;
  devices: DeviceSnapshot[];
  /** `site|ruleId` → raised severity rank of read-rate alarms. */
  readRate: Record<string, number>;
}

export interface DeviceSnapshot {
  site: string;
  device: string;
  kind: string;
  lastTs: number | null;
  /** When the engine first knew the device (read rate); absent in older snapshots. */
  since?: number;
  rules: Record<string, { hash: string; state: unknown }>;
}

/** One device's state, serialised once: `json` is a DeviceSnapshot. */
export interface RuleStateRow {
  site: string;
  device: string;
  json: string;
}

/** What changed since the last save: the devices, and the read-rate alarms if they changed. */
export interface RuleStateDelta {
  rows: RuleStateRow[];
  /** JSON of EngineSnapshot['readRate'], or undefined when unchanged. */
  readRate: string | undefined;
}

/**
 * Copies a saved state into a freshly created one of the same shape. JSON turns NaN into null,
 * so the fresh state's types decide: a number field that comes back null is NaN again.
 */
export function restoreInto(target: object, saved: unknown): void {
  if (typeof saved !== 'object' || saved === null) return;
  const t = target as Record<string, unknown>;
  const s = saved as Record<string, unknown>;
  for (const k of Object.keys(t)) {
    t[k] = restoreValue(t[k], s[k]);
  }
}

function restoreValue(fresh: unknown, saved: unknown): unknown {
  if (typeof fresh === 'number') return typeof saved === 'number' ? saved : NaN;
  if (typeof fresh === 'boolean') return typeof saved === 'boolean' ? saved : fresh;
  if (Array.isArray(fresh)) {
    if (Array.isArray(saved))
      for (let i = 0; i < fresh.length; i++) fresh[i] = restoreValue(fresh[i], saved[i]);
    return fresh;
  }
  if (typeof fresh === 'object' && fresh !== null) {
    restoreInto(fresh, saved);
    return fresh;
  }
  return fresh;
}
