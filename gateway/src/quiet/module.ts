import type { AlarmService } from '../alarms/service.js';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { SharedDb } from '../storage/sql/shared-db.js';
import { ClusterQuiet } from './service.js';
import { QuietStore } from './store.js';
import { QuietSync } from './sync.js';
import type { SharedQuiet } from './types.js';

export { QUIET_STEPS } from './tables.js';

export interface ClusterQuietModule {
  /** Applies the cluster's shelves and windows here; start it after the alarm service, before the rules. */
  sync: QuietSync;
  /** What the shelf and window routes call. */
  service: SharedQuiet;
}

/**
 * Shelves and maintenance windows shared by the cluster (ADR 0163), in cluster mode only
 * (`storage.postgres` set); undefined otherwise, and the routes then use the alarm service alone.
 */
export function createClusterQuiet(d: {
  cfg: GatewayConfig;
  log: Logger;
  shared: () => SharedDb;
  alarms: AlarmService;
}): ClusterQuietModule | undefined {
  const url = d.cfg.storage.postgres;
  const instanceId = d.cfg.cluster.instanceId;
  if (url === undefined || instanceId === undefined) return undefined;
  const log = d.log.child({ module: 'cluster-quiet' });
  const store = new QuietStore(() => d.shared().db, instanceId);
  return {
    sync: new QuietSync({ instanceId, postgresUrl: url, store, alarms: d.alarms, log }),
    service: new ClusterQuiet(store, d.alarms, log),
  };
}
