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
