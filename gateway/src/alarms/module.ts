import { join } from 'node:path';
import type { GatewayConfig } from '../config/schema.js';
import type { Bus } from '../core/events.js';
import type { Lifecycle } from '../core/lifecycle.js';
import type { Logger } from '../core/log.js';
import { DbComponent } from '../storage/db-component.js';
import type { CheckpointHost } from '../storage/outbox.js';
import { WalCheckpointer } from '../storage/wal-checkpointer.js';
import { ALARM_MIGRATIONS } from './store.js';
import { AlarmService } from './service.js';
import { alarmEventLine } from './line-protocol.js';
import type { Alarm, AlarmEvent } from './types.js';

export interface AlarmsModuleDeps {
  cfg: GatewayConfig;
  log: Logger;
  lifecycle: Lifecycle;
  bus: Bus<{ alarm: AlarmEvent }>;
  /** Where alarm transitions go as line protocol: the outbox, so they are as durable as readings. */
  sink: { append(line: string): void };
  /** Runs alarms.db's WAL checkpoints on its thread (the outbox's commit thread), saving a thread. */
  checkpointHost?: CheckpointHost;
  /** Cluster mode: incidents are grouped over the cluster (ADR 0170), not by this service alone. */
  sharedGrouping?: boolean;
  /** Cluster mode: an operator's ack written to the shared view before it commits here (ADR 0173). */
  confirm?: (alarms: readonly Alarm[], events?: readonly AlarmEvent[]) => Promise<Set<string>>;
  /** Cluster mode: false while this member's leases are about to run out (ADR 0173). */
  leaseFresh?: () => boolean;
  /** Cluster mode: the holder the shared view names for an alarm (a fenced ack names it). */
  holderOf?: (id: string) => Promise<string | undefined>;
}

/**
 * The alarms: their own database (their history must not share the fate of the outbox, which is
 * emptied as InfluxDB confirms), opened here; the service, returned unstarted because the work
 * orders that hear its events start first (and so stop after it, still handling its last
 * transitions). Every committed transition is published as `alarm` on the bus.
 */
export async function createAlarmsModule(d: AlarmsModuleDeps): Promise<{ service: AlarmService }> {
  const { cfg, lifecycle, bus } = d;
  // With rule state committed with the readings, a rule's raise is durable there and an alarm lost
  // from alarms.db is raised again at start: its transitions commit without an fsync on the event
  // loop (synchronous=NORMAL, checkpoints on a thread); people's actions still wait for the disk (ADR 0082).
  const file = join(cfg.dataDir, 'alarms.db');
  const fast = cfg.alarms.ruleState === 'with-readings';
  const db = new DbComponent('alarms.db', file, ALARM_MIGRATIONS, fast ? 'normal' : 'full');
  await lifecycle.start(db, { report: false });
  if (fast)
    await lifecycle.start(
      new WalCheckpointer(db.db, file, d.log.child({ module: 'alarms' }), undefined, d.checkpointHost),
    );
  const service = new AlarmService({
    db: db.db,
    config: cfg.alarms,
    log: d.log.child({ module: 'alarms' }),
    sharedGrouping: d.sharedGrouping,
    confirm: d.confirm,
    leaseFresh: d.leaseFresh,
    holderOf: d.holderOf,
  });
  lifecycle.onStopped(
    bus.on('alarm', (e) => d.sink.append(alarmEventLine(e))),
    service.onEvent((e) => bus.emit('alarm', e)),
  );
  return { service };
}
