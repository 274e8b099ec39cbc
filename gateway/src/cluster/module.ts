import type { Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from '../config/schema.js';
import type { Logger } from '../core/log.js';
import type { Component } from '../core/types.js';
import type { SharedDb } from '../storage/sql/shared-db.js';
import { CONSUMPTION_PREFIX } from '../ingest/derive.js';
import { RULE_STATE_PREFIX } from '../rules/runtime.js';
import { DeviceStateTracker, type LocalStateStore } from './device-state.js';
import { OwnershipGate } from './gate.js';
import { partitionOfDevice } from './partition.js';
import { LeaderDuties } from './leader.js';
import { ClusterMember, type PartitionRecordsHook } from './member.js';
import { DurableWatermark, type OutboxCounters } from './watermark.js';

import { ClusterStore, leasedTo } from './store.js';

export { CLUSTER_MIGRATIONS } from './store.js';

export interface ClusterModule {
  /** Put between the sources and the ingest pipeline (`gate.attach(pipeline)`). */
  gate: OwnershipGate;
  member: ClusterMember;
  /** Wraps a cluster-wide singleton so it runs only on the leader. */
  lead: <C extends Component>(c: C) => Component;
  /**
   * The state store the consumption deriver and the rules use in cluster mode, in front of the
   * outbox: their per-device state moves with the partition (ADR 0151). Attach its targets before
   * the member starts.
   */
  state: DeviceStateTracker;
  /** Whether this member processes a device now (the rules park the others). */
  owns: (site: string, device: string) => boolean;
  /** The partition of a device (what the shared view records beside each alarm and ticket). */
  partitionOf: (site: string, device: string) => number;
  /**
   * The alarms and tickets that move with their partition (ADR 0160), built after the services:
   * attach before the member starts.
   */
  attachRecords: (records: PartitionRecordsHook) => void;
  /** The partitions of `parts` this member holds the lease of now, locked within `db`'s transaction. */
  leased: (db: Kysely<object>, parts: readonly number[]) => Promise<number[]>;
  /** The ids of the members whose heartbeat is younger than the failover time (read within `db`). */
  live: (db: Kysely<object>) => Promise<ReadonlySet<string>>;
}

/**
 * Cluster mode (ADR 0150) when `storage.postgres` is set; undefined otherwise, and then the
 * composition root wires everything exactly as a single instance.
 */
export function createCluster(d: {
  cfg: GatewayConfig;
  log: Logger;
  metrics: Registry;
  outbox: OutboxCounters & LocalStateStore;
  shared: () => SharedDb;
  httpUrl: () => string | undefined;
}): ClusterModule | undefined {
  const { cfg } = d;
  if (cfg.storage.postgres === undefined) return undefined;
  const c = cfg.cluster;
  // The schema requires it in cluster mode; checked again for the type.
  if (c.instanceId === undefined) throw new Error('cluster.instanceId is required in cluster mode');
  const instanceId = c.instanceId;
  const log = d.log.child({ module: 'cluster' });
  const gate = new OwnershipGate(c.partitions, {
    bytes: c.replayBytes,
    windowMs: c.replayWindowMs ?? 4 * c.failoverMs,
  });
  const duties = new LeaderDuties(log);
  const state = new DeviceStateTracker(d.outbox, c.partitions, {
    meter: CONSUMPTION_PREFIX,
    rules: RULE_STATE_PREFIX,
  });
  let records: PartitionRecordsHook | undefined;
  const member = new ClusterMember({
    settings: {
      instanceId: c.instanceId,
      clientId: cfg.mqtt.clientId,
      partitions: c.partitions,
      failoverMs: c.failoverMs,
      replaySlackMs: c.replaySlackMs,
    },
    db: () => d.shared().db,
    gate,
    watermark: new DurableWatermark(d.outbox, Date.now()),
    duties,
    log,
    metrics: d.metrics,
    httpUrl: d.httpUrl,
    state,
    records: {
      adopt: (db, parts) => records?.adopt(db, parts) ?? Promise.resolve(),
      evict: (parts) => records?.evict(parts),
      flush: (ms) => records?.flush(ms) ?? Promise.resolve(),
    },
  });
  return {
    gate,
    member,
    lead: (x) => duties.bind(x),
    state,
    owns: (site, device) => gate.owned[partitionOfDevice(site, device, c.partitions)] === 1,
    partitionOf: (site, device) => partitionOfDevice(site, device, c.partitions),
    attachRecords: (r) => {
      records = r;
    },
    leased: (db, parts) => leasedTo(db, instanceId, parts),
    live: async (db) =>
      new Set((await new ClusterStore(db).liveMembers(c.failoverMs)).map((m) => m.instance_id)),
  };
}
