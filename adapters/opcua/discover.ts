/**
 * Browses Objects on an OPC UA server and prints a config snippet (YAML) for the numeric and
 * boolean variables it finds. The command is discover-cli.ts.
 */
import { parseArgs } from 'node:util';
import {
  AttributeIds,
  BrowseDirection,
  DataType,
  MessageSecurityMode,
  NodeClassMask,
  OPCUAClient,
  SecurityPolicy,
  makeBrowsePath,
  type BrowseDescriptionLike,
  type ClientSession,
  type NodeId,
  type ReferenceDescription,
} from 'node-opcua';
import { identityOf, signInError, type OpcuaAuth } from './identity.js';
import { createCertificateManager } from './pki.js';
import { configSnippet, type FoundVariable } from './snippet.js';
import { SECURITY_POLICIES } from './schema.js';

const NUMERIC = new Set<number>([
  DataType.Boolean,
  DataType.SByte,
  DataType.Byte,
  DataType.Int16,
  DataType.UInt16,
  DataType.Int32,
  DataType.UInt32,
  DataType.Int64,
  DataType.UInt64,
  DataType.Float,
  DataType.Double,
]);

/** Every reference of one browse, following continuation points: servers cap references per answer. */
async function browseAll(
  session: ClientSession,
  desc: BrowseDescriptionLike,
): Promise<ReferenceDescription[]> {
  let res = await session.browse(desc);
  const refs = [...(res.references ?? [])];
  while (res.continuationPoint && res.continuationPoint.length > 0) {
    res = await session.browseNext(res.continuationPoint, false);
    if (!res.statusCode.isGood()) throw new Error(`BrowseNext failed: ${res.statusCode.toString()}`);
    refs.push(...(res.references ?? []));
  }
  return refs;
}

/**
 * A node id naming its namespace by URI (`nsu=`), which survives a server renumbering its
 * namespaces; the index form when the URI cannot be written that way. Written here rather than by
 * node-opcua's `toString({ namespaceArray })`: browse references carry ExpandedNodeIds, whose
 * toString ignores that option.
 */
function portableNodeId(nodeId: NodeId, namespaces: readonly string[]): string {
  const s = nodeId.toString();
  const uri = namespaces[nodeId.namespace];
  if (nodeId.namespace === 0 || !uri || uri.includes(';')) return s;
  return `nsu=${uri};${s.replace(/^ns=\d+;/, '')}`;
}

/** Depth-first from Objects, skipping the standard Server object (ns=0). */
export async function discover(session: ClientSession, maxDepth = 6): Promise<FoundVariable[]> {
  const namespaces = await session.readNamespaceArray();
  const out: Array<FoundVariable & { id: NodeId }> = [];
  const seen = new Set<string>();
  const walk = async (nodeId: string, path: string[], depth: number): Promise<void> => {
    if (depth > maxDepth || seen.has(nodeId)) return;
    seen.add(nodeId);
    const refs = await browseAll(session, {
      nodeId,
      browseDirection: BrowseDirection.Forward,
      referenceTypeId: 'HierarchicalReferences',
      includeSubtypes: true,
      nodeClassMask: NodeClassMask.Object | NodeClassMask.Variable,
      resultMask: 63,
    });
    const kindRef = refs.find((r) => r.browseName.name === 'DeviceKind');
    let deviceKind: string | undefined;
    if (kindRef) {
      const dv = await session.read({ nodeId: kindRef.nodeId, attributeId: AttributeIds.Value });
      if (typeof dv.value.value === 'string') deviceKind = dv.value.value;
    }
    const vars = refs.filter((r) => r.nodeClass === 2 && r !== kindRef);
    if (vars.length > 0) {
      const types = await session.read(
        vars.map((r) => ({ nodeId: r.nodeId, attributeId: AttributeIds.DataType })),
      );
      vars.forEach((r, i) => {
        const t = types[i]?.value.value as { namespace: number; value: unknown } | undefined;
        if (t && t.namespace === 0 && NUMERIC.has(Number(t.value)))
          out.push({
            id: r.nodeId,
            nodeId: portableNodeId(r.nodeId, namespaces),
            path: [...path, r.browseName.name ?? ''],
            deviceKind,
          });
      });
    }
    for (const r of refs) {
      if (r.nodeClass !== 1 || r.nodeId.namespace === 0) continue;
      await walk(r.nodeId.toString(), [...path, r.browseName.name ?? ''], depth + 1);
    }
  };
  await walk('i=85', [], 0);
  await addUnits(session, out);
  return out.map(({ id: _id, ...v }) => v);
}

/** The EngineeringUnits property of analogue items (OPC UA Part 8), where the server has one. */
async function addUnits(session: ClientSession, vars: Array<FoundVariable & { id: NodeId }>): Promise<void> {
  const CHUNK = 500;
  for (let i = 0; i < vars.length; i += CHUNK) {
    const chunk = vars.slice(i, i + CHUNK);
    const found = await session.translateBrowsePath(
      chunk.map((v) => makeBrowsePath(v.id, '.EngineeringUnits')),
    );
    const withUnit = chunk
      .map((v, j) => ({
        v,
        target: found[j]?.statusCode.isGood() ? found[j]?.targets?.[0]?.targetId : undefined,
      }))
      .filter(
        (x): x is { v: FoundVariable & { id: NodeId }; target: NonNullable<typeof x.target> } => !!x.target,
      );
    if (withUnit.length === 0) continue;
    const dvs = await session.read(
      withUnit.map((x) => ({ nodeId: x.target, attributeId: AttributeIds.Value })),
    );
    withUnit.forEach((x, j) => {
      const eu = dvs[j]?.value.value as { displayName?: { text?: string | null } } | null | undefined;
      const text = eu?.displayName?.text;
      if (text) x.v.unit = text;
    });
  }
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        user: { type: 'string' },
        password: { type: 'string' },
        'user-certificate': { type: 'string' },
        'user-key': { type: 'string' },
        'security-mode': { type: 'string', default: 'None' },
        'security-policy': { type: 'string', default: 'None' },
        'data-dir': { type: 'string', default: process.env.GATEWAY_DATA_DIR ?? './data' },
        'max-depth': { type: 'string', default: '6' },
        'max-references': { type: 'string', default: '1000' },
        name: { type: 'string', default: 'plc-1' },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const endpoint = positionals[0];
  const mode = values['security-mode'];
  const policy = values['security-policy'];
  const maxReferences = Number(values['max-references']);
  if (!endpoint || !/^opc\.tcp:\/\//.test(endpoint)) {
    process.stderr.write(
      'usage: npm run opcua:discover -- opc.tcp://host:4840 [--user u --password p | --user-certificate pem --user-key pem]\n',
    );
    return 2;
  }
  if (
    !['None', 'Sign', 'SignAndEncrypt'].includes(mode) ||
    !(SECURITY_POLICIES as readonly string[]).includes(policy) ||
    (mode === 'None') !== (policy === 'None')
  ) {
    process.stderr.write(`security mode and policy do not go together or are unknown: ${mode} ${policy}\n`);
    return 2;
  }
  if (!Number.isInteger(maxReferences) || maxReferences < 0) {
    process.stderr.write(`--max-references must be a whole number: ${values['max-references']}\n`);
    return 2;
  }
  const auth: OpcuaAuth =
    values['user-certificate'] !== undefined && values['user-key'] !== undefined
      ? {
          type: 'certificate',
          certificateFile: values['user-certificate'],
          privateKeyFile: values['user-key'],
        }
      : values.user !== undefined
        ? { type: 'username', username: values.user, password: values.password ?? '' }
        : { type: 'anonymous' };
  const certs = createCertificateManager(values['data-dir']);
  await certs.initialize();
  const client = OPCUAClient.create({
    applicationName: 'facility-gateway',
    applicationUri: 'urn:facility-gateway:opcua-client',
    endpointMustExist: false,
    securityMode: MessageSecurityMode[mode as 'None' | 'Sign' | 'SignAndEncrypt'],
    securityPolicy: SecurityPolicy[policy as (typeof SECURITY_POLICIES)[number]],
    clientCertificateManager: certs,
    connectionStrategy: { maxRetry: 1, initialDelay: 500 },
  });
  try {
    await client.connect(endpoint);
    const session = await client.createSession(identityOf(auth)).catch((err: Error) => {
      throw signInError(err, auth);
    });
    session.requestedMaxReferencesPerNode = maxReferences;
    try {
      const vars = await discover(session, Number(values['max-depth']));
      process.stdout.write(
        configSnippet(endpoint, vars, {
          name: values.name,
          securityMode: mode,
          securityPolicy: policy,
          auth,
        }),
      );
    } finally {
      await session.close();
    }
    return 0;
  } catch (err) {
    process.stderr.write(`discovery failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.disconnect();
    await certs.dispose();
  }
}
