import { z } from 'zod';
import { ID_PATTERN } from '../ingest/catalogue.js';

/**
 * The persisted form of discovered devices. It comes back from disk, possibly written by an
 * older version or damaged, so each entry is checked on its own and a bad one is skipped
 * instead of failing the whole restore.
 */

const entrySchema = z.object({
  site: z.string().regex(ID_PATTERN),
  device: z.string().regex(ID_PATTERN),
  kind: z.string().regex(ID_PATTERN),
  firstSeen: z.number().finite().nullable().default(null),
  lastSeen: z.number().finite().nullable().default(null),
});

export type SnapshotEntry = z.infer<typeof entrySchema>;

export interface RegistrySnapshot {
  version: 1;
  devices: SnapshotEntry[];
}

export function parseSnapshot(data: unknown): RegistrySnapshot {
  const devices: SnapshotEntry[] = [];
  if (typeof data !== 'object' || data === null) return { version: 1, devices };
  const list = (data as { devices?: unknown }).devices;
  if (!Array.isArray(list)) return { version: 1, devices };
  for (const item of list) {
    const r = entrySchema.safeParse(item);
    if (r.success) devices.push(r.data);
  }
  return { version: 1, devices };
}
