import {
  AttributeIds,
  DataChangeFilter,
  DataChangeTrigger,
  DeadbandType,
  StatusCode,
  StatusCodes,
  TimestampsToReturn,
  type ClientMonitoredItemGroup,
  type ClientSubscription,
  type DataValue,
} from 'node-opcua';
import type { OpcuaNodeConfig } from './schema.js';
import type { OpcuaDeadband, OpcuaEndpointConfig } from './schema.js';
import type { Monitored } from './resolve.js';

export interface MonitoredGroup {
  group: ClientMonitoredItemGroup;
  items: Monitored[];
}

export interface Refused {
  item: Monitored;
  status: StatusCode;
}

/**
 * Statuses that mean the node cannot be read at all: polling would fail the same way, so such
 * a node is reported as failed. Any other refusal (too many monitored items, a server without
 * monitoring for that node) leaves the node to be polled.
 */
const UNREADABLE = new Set<number>([
  StatusCodes.BadNodeIdUnknown.value,
  StatusCodes.BadNodeIdInvalid.value,
  StatusCodes.BadAttributeIdInvalid.value,
  StatusCodes.BadNotReadable.value,
  StatusCodes.BadUserAccessDenied.value,
]);

export function isUnreadable(status: StatusCode): boolean {
  return UNREADABLE.has(status.value);
}

/** A deadband the server refuses for this node (a Boolean, percent without EURange): retried without. */
const FILTER_REFUSED = new Set<number>([
  StatusCodes.BadFilterNotAllowed.value,
  StatusCodes.BadMonitoredItemFilterUnsupported.value,
  StatusCodes.BadDeadbandFilterInvalid.value,
]);

/**
 * Creates the monitored items of one subscription: nodes sharing a sampling interval and deadband
 * share monitoring parameters, and each CreateMonitoredItems request carries at most `batchSize`
 * items. Returns the groups the server accepted items into and the items it refused.
 */
export async function monitorAll(
  subscription: ClientSubscription,
  nodes: Monitored[],
  cfg: OpcuaEndpointConfig['subscription'],
  onValue: (node: OpcuaNodeConfig, dv: DataValue) => void,
): Promise<{ groups: MonitoredGroup[]; refused: Refused[] }> {
  const sets = new Map<string, Monitored[]>();
  for (const m of nodes) {
    const key = JSON.stringify([
      m.node.samplingIntervalMs ?? cfg.samplingIntervalMs,
      m.node.deadband ?? cfg.deadband,
    ]);
    const list = sets.get(key) ?? [];
    list.push(m);
    sets.set(key, list);
  }
  const groups: MonitoredGroup[] = [];
  const refused: Refused[] = [];
  for (const list of sets.values()) {
    const first = list[0]!.node;
    const sampling = first.samplingIntervalMs ?? cfg.samplingIntervalMs;
    const deadband = first.deadband ?? cfg.deadband;
    const round = await monitorBatches(subscription, list, sampling, deadband, cfg, onValue);
    groups.push(...round.groups);
    const retry =
      deadband.type === 'none' ? [] : round.refused.filter((r) => FILTER_REFUSED.has(r.status.value));
    refused.push(...round.refused.filter((r) => !retry.includes(r)));
    if (retry.length === 0) continue;
    const again = await monitorBatches(
      subscription,
      retry.map((r) => r.item),
      sampling,
      { type: 'none', value: 0 },
      cfg,
      onValue,
    );
    groups.push(...again.groups);
    refused.push(...again.refused);
  }
  return { groups, refused };
}

async function monitorBatches(
  subscription: ClientSubscription,
  items: Monitored[],
  samplingInterval: number,
  deadband: OpcuaDeadband,
  cfg: OpcuaEndpointConfig['subscription'],
  onValue: (node: OpcuaNodeConfig, dv: DataValue) => void,
): Promise<{ groups: MonitoredGroup[]; refused: Refused[] }> {
  const filter =
    deadband.type === 'none'
      ? null
      : new DataChangeFilter({
          trigger: DataChangeTrigger.StatusValue,
          deadbandType: deadband.type === 'absolute' ? DeadbandType.Absolute : DeadbandType.Percent,
          deadbandValue: deadband.value,
        });
  const groups: MonitoredGroup[] = [];
  const refused: Refused[] = [];
  for (let i = 0; i < items.length; i += cfg.batchSize) {
    const batch = items.slice(i, i + cfg.batchSize);
    const group = await subscription.monitorItems(
      batch.map((m) => ({ nodeId: m.nodeId, attributeId: AttributeIds.Value })),
      { samplingInterval, queueSize: cfg.queueSize, discardOldest: cfg.discardOldest, filter },
      TimestampsToReturn.Both,
    );
    group.on('changed', (_item, dv: DataValue, index: number) => {
      const m = batch[index];
      if (m) onValue(m.node, dv);
    });
    batch.forEach((m, j) => {
      const st = group.monitoredItems[j]?.statusCode;
      if (st && !st.isGood()) refused.push({ item: m, status: st });
    });
    groups.push({ group, items: batch });
  }
  return { groups, refused };
}

/** Monitored items of these groups the server accepted. */
export function liveItemCount(groups: readonly MonitoredGroup[]): number {
  let n = 0;
  for (const g of groups) for (const m of g.group.monitoredItems) if (m.statusCode.isGood()) n++;
  return n;
}
