import type { Registry } from 'prom-client';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { LiveHub } from '../live/hub.js';
import type { SharedDb } from '../storage/sql/shared-db.js';
import type { TicketNumbers } from '../workorders/types.js';
import { ViewFeed } from './feed.js';
import { viewMetrics } from './metrics.js';
import { ViewReader } from './reader.js';
import type { ViewTables } from './tables.js';
import { NotifyClaims } from './notify-claims.js';
import { LeasedTicketNumbers } from './ticket-numbers.js';
import { ViewWriter } from './writer.js';

export { VIEW_STEPS } from './tables.js';
export { PartitionRecords } from './records.js';
export type { SharedView } from './types.js';

export interface ClusterViewModule {
  /** Hears the bus (`alarm`, `ticket`) and copies into PostgreSQL. */
  writer: ViewWriter;
  /** Other instances' changes onto this instance's live stream. */
  feed: ViewFeed;
  /** What the HTTP routes read in cluster mode. */
  reader: ViewReader;
  /** Ticket numbers leased from the shared counter; started with the next number workorders.db would use. */
  numbers: (localNext: number) => Promise<TicketNumbers>;
  /** The notification queue's claims in `view_notifications` (ADR 0179). */
  claims: NotifyClaims;
}

/**
 * One view of the cluster's alarms, incidents and tickets (ADR 0155–0158), in cluster mode only
 * (`storage.postgres` set); undefined otherwise, and then nothing of it is built or wired.
 */
export function createClusterView(d: {
  cfg: GatewayConfig;
  log: Logger;
  hub: LiveHub;
  metrics: Registry;
  shared: () => SharedDb;
  /** The partition of a device (cluster mode): written beside each record, ADR 0160. */
  partitionOf?: (site: string, device: string) => number;
}): ClusterViewModule | undefined {
  const url = d.cfg.storage.postgres;
  const instanceId = d.cfg.cluster.instanceId;
  if (url === undefined || instanceId === undefined) return undefined;
  const log = d.log.child({ module: 'cluster-view' });
  const db = () => d.shared().db;
  const writer = new ViewWriter({
    instanceId,
    db,
    dialect: () => d.shared().dialect,
    log,
    partitionOf: d.partitionOf,
  });
  const feed = new ViewFeed({ instanceId, postgresUrl: url, db, hub: d.hub, log });
  viewMetrics(d.metrics, writer, feed);
  return {
    writer,
    feed,
    reader: new ViewReader(instanceId, db),
    claims: new NotifyClaims({ instanceId, db, log }),
    numbers: async (localNext) => {
      const n = new LeasedTicketNumbers(db().withTables<ViewTables>(), log);
      await n.start(localNext);
      return n;
    },
  };
}
