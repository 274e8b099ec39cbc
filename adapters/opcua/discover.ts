/**
 * `npm run opcua:discover -- <endpoint> [--user <name> --password <pw>] [--security-mode <mode>
 * --security-policy <policy>] [--data-dir <dir>] [--max-depth <n>] [--name <endpoint-name>]`
 *
 * Browses Objects on an OPC UA server and prints a config snippet (YAML) for the numeric and
 * boolean variables it finds. Output goes to stdout so it can be redirected into a file.
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
  UserTokenType,
  type ClientSession,
  type UserIdentityInfo,
} from 'node-opcua';
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

/** Depth-first from Objects, skipping the standard Server object (ns=0), one browse per object. */
export async function discover(session: ClientSession, maxDepth = 6): Promise<FoundVariable[]> {
  const out: FoundVariable[] = [];
  const seen = new Set<string>();
  const walk = async (nodeId: string, path: string[], depth: number): Promise<void> => {
    if (depth > maxDepth || seen.has(nodeId)) return;
    seen.add(nodeId);
    const res = await session.browse({
      nodeId,
      browseDirection: BrowseDirection.Forward,
      referenceTypeId: 'HierarchicalReferences',
      includeSubtypes: true,
      nodeClassMask: NodeClassMask.Object | NodeClassMask.Variable,
      resultMask: 63,
    });
    const refs = res.references ?? [];
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
          out.push({ nodeId: r.nodeId.toString(), path: [...path, r.browseName.name ?? ''], deviceKind });
      });
    }
    for (const r of refs) {
      if (r.nodeClass !== 1 || r.nodeId.namespace === 0) continue;
      await walk(r.nodeId.toString(), [...path, r.browseName.name ?? ''], depth + 1);
    }
  };
  await walk('i=85', [], 0);
  return out;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      user: { type: 'string' },
      password: { type: 'string' },
      'security-mode': { type: 'string', default: 'None' },
      'security-policy': { type: 'string', default: 'None' },
      'data-dir': { type: 'string', default: process.env.GATEWAY_DATA_DIR ?? './data' },
      'max-depth': { type: 'string', default: '6' },
      name: { type: 'string', default: 'plc-1' },
    },
  });
  const endpoint = positionals[0];
  const mode = values['security-mode'];
  const policy = values['security-policy'];
  if (!endpoint || !/^opc\.tcp:\/\//.test(endpoint)) {
    process.stderr.write('usage: npm run opcua:discover -- opc.tcp://host:4840 [--user u --password p]\n');
    return 2;
  }
  if (
    !['None', 'Sign', 'SignAndEncrypt'].includes(mode) ||
    !(SECURITY_POLICIES as readonly string[]).includes(policy)
  ) {
    process.stderr.write(`unknown security mode or policy: ${mode} ${policy}\n`);
    return 2;
  }
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
  const identity: UserIdentityInfo =
    values.user !== undefined
      ? { type: UserTokenType.UserName, userName: values.user, password: values.password ?? '' }
      : { type: UserTokenType.Anonymous };
  try {
    await client.connect(endpoint);
    const session = await client.createSession(identity);
    try {
      const vars = await discover(session, Number(values['max-depth']));
      process.stdout.write(configSnippet(endpoint, vars, values.name));
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

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main();
  // node-opcua keeps timers (certificate watchers) that would hold the process open.
  process.exit();
}
