import { makeBrowsePath, resolveNodeId, type ClientSession, type NodeId } from 'node-opcua';
import type { OpcuaNodeConfig } from './schema.js';

/** A configured node and the NodeId it has on the server of the current session. */
export interface Monitored {
  node: OpcuaNodeConfig;
  nodeId: NodeId;
}

/** A configured node that is neither monitored nor polled, and why (shown in health). */
export interface NodeFailure {
  node: string;
  reason: string;
}

/** How a configured node is named in logs and health: its node id or browse path as written. */
export function nodeLabel(n: OpcuaNodeConfig): string {
  return n.nodeId ?? n.browsePath ?? '?';
}

/**
 * Turns the configured nodes into NodeIds on this session's server. Runs on every new session:
 * `nsu=` ids are resolved against the namespace array the server has now, and browse paths are
 * translated again, because a restarted or updated server may number its namespaces differently.
 */
export async function resolveNodes(
  session: ClientSession,
  nodes: readonly OpcuaNodeConfig[],
): Promise<{ resolved: Monitored[]; failed: NodeFailure[] }> {
  const resolved: Monitored[] = [];
  const failed: NodeFailure[] = [];
  const namespaceArray = nodes.some((n) => n.nodeId?.startsWith('nsu='))
    ? await session.readNamespaceArray()
    : undefined;
  for (const n of nodes) {
    if (n.nodeId === undefined) continue;
    try {
      resolved.push({ node: n, nodeId: resolveNodeId(n.nodeId, { namespaceArray }) });
    } catch (err) {
      failed.push({ node: n.nodeId, reason: `cannot resolve on this server: ${(err as Error).message}` });
    }
  }
  const byPath = nodes.filter((n) => n.browsePath !== undefined);
  if (byPath.length === 0) return { resolved, failed };
  const results = await session.translateBrowsePath(
    byPath.map((n) => makeBrowsePath('RootFolder', n.browsePath as string)),
  );
  results.forEach((r, i) => {
    const node = byPath[i]!;
    const target = r.targets?.[0]?.targetId;
    if (r.statusCode.isGood() && target) resolved.push({ node, nodeId: resolveNodeId(target.toString()) });
    else
      failed.push({ node: node.browsePath as string, reason: `browse path not found: ${r.statusCode.name}` });
  });
  return { resolved, failed };
}
