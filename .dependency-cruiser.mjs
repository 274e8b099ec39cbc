/**
 * Module boundaries, enforced by `npm run lint` (dependency-cruiser). They write down the direction of
 * flow of ARCHITECTURE.md:
 *
 *   adapters ─▶ ingest ─▶ sinks / rules ─▶ alarms ─▶ workorders ─▶ notifications ─▶ live ─▶ http
 *
 * A stage never imports a stage after it (it knows it only through an interface handed over by the
 * composition root: gateway/src/gateway.ts, main.ts, demo.ts, which may import anything). Types a
 * later stage declares for an earlier one to fill (rules/types.ts' DeviceFactsLookup, say) are the
 * one way back: they live in a `types.ts` and are imported as types. Explained in
 * docs/adr/0020-module-boundaries.md; proved to fire by test/unit/boundaries.test.ts.
 */

/** The stages in flow order: each may import the ones before it, none after it. */
const FLOW = ['ingest', 'sinks', 'rules', 'alarms', 'workorders', 'notifications', 'live', 'http'];

const GW = '^gateway/src/';
/**
 * The composition root wires every module together: gateway.ts with the files it is split into
 * (gateway-parts, access, reports, events), main.ts, demo.ts, and each domain's module.ts, the small
 * factory that builds that domain's parts and is handed its neighbours.
 */
const ROOT = `${GW}((gateway|gateway-parts|main|demo|access|reports|events)\\.ts|[a-z-]+/module\\.ts)$`;

/**
 * Adapter files that may import one more gateway file than the Source contract, each for a reason:
 * the MQTT adapter's config types live in the gateway's config schema (the client, the broker and
 * the sources' factory read them); the MQTT source hands raw messages to the pipeline's types; an
 * adapter's config schema and the OPC UA snippet generator check ids and metric names against the
 * kind catalogue.
 */
const ADAPTER_EXCEPTIONS = [
  { file: 'adapters/mqtt/source\\.ts', allowed: ['config/schema\\.ts', 'ingest/pipeline\\.ts'] },
  { file: 'adapters/mqtt/client\\.ts', allowed: ['config/schema\\.ts'] },
  { file: 'adapters/mqtt/index\\.ts', allowed: ['config/schema\\.ts'] },
  { file: 'adapters/broker/embedded\\.ts', allowed: ['config/schema\\.ts'] },
  { file: 'adapters/opcua/snippet\\.ts', allowed: ['ingest/catalogue\\.ts'] },
  { file: 'adapters/[a-z]+/schema\\.ts', allowed: ['ingest/catalogue\\.ts'] },
];

/** One rule per stage: nothing downstream of it. */
const flowRules = FLOW.slice(0, -1).map((stage, i) => ({
  name: `flow-${stage}`,
  comment: `${stage} is upstream of ${FLOW.slice(i + 1).join(', ')}: it must not import them (ARCHITECTURE.md, one direction of flow)`,
  severity: 'error',
  from: { path: `${GW}${stage}/`, pathNot: ROOT },
  to: {
    path: `${GW}(${FLOW.slice(i + 1).join('|')})/`,
    // A later stage's declared interface (types.ts, imported as a type) is how a stage is handed work.
    pathNot: `${GW}(${FLOW.slice(i + 1).join('|')})/types\\.ts$`,
  },
}));

export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle makes two modules one: neither can be understood, tested or replaced alone.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-knows-no-domain',
      comment:
        'gateway/src/core holds the contracts every module shares (types, errors, log, metrics registry, ' +
        'Source, backoff); it imports nothing of the domain, adapters or simulators.',
      severity: 'error',
      from: { path: `${GW}core/` },
      to: { path: [`${GW}(?!core/)`, '^adapters/', '^simulators/'] },
    },
    ...flowRules,
    {
      name: 'ingest-nothing-downstream',
      comment:
        'ingest hands readings on through interfaces; it knows no registry, storage, adapter or the ' +
        'composition root (the hot path stays free of everything after it).',
      severity: 'error',
      from: { path: `${GW}ingest/` },
      to: { path: [`${GW}(registry|storage)/`, ROOT, '^adapters/', '^simulators/'] },
    },
    {
      name: 'sinks-are-a-branch',
      comment:
        'sinks/influx is a branch of the flow beside rules: nothing after ingest reaches into it but ' +
        'http (reading history) and the composition root.',
      severity: 'error',
      from: { path: `${GW}(rules|alarms|workorders|notifications|live|registry)/`, pathNot: ROOT },
      to: { path: `${GW}sinks/` },
    },
    {
      name: 'domain-not-http',
      comment: 'http depends on the domain, never the reverse: routes read stores and call services.',
      severity: 'error',
      from: {
        path: '^(gateway/src|adapters|simulators)/',
        pathNot: [`${GW}http/`, ROOT],
      },
      to: { path: `${GW}http/` },
    },
    {
      name: 'http-only-in-http',
      comment:
        'fastify (and its plugins) only under gateway/src/http; the composition root may name the ' +
        'app type to start and stop it.',
      severity: 'error',
      from: {
        path: '^(gateway/src|adapters|simulators)/',
        pathNot: [`${GW}http/`, ROOT],
      },
      to: { path: 'node_modules/(fastify|@fastify/|fastify-[^/]+/)' },
    },
    {
      name: 'adapters-core-contract-only',
      comment:
        'A protocol adapter sees the gateway only through the Source contract in gateway/src/core ' +
        '(source.ts, types.ts, log.ts, backoff.ts); the gateway hands it everything else at start.',
      severity: 'error',
      from: { path: '^adapters/', pathNot: ADAPTER_EXCEPTIONS.map((e) => e.file) },
      to: { path: `${GW}(?!core/)` },
    },
    // Each adapter exception may import, besides gateway/src/core, exactly the files named, nothing more.
    ...ADAPTER_EXCEPTIONS.map(({ file, allowed }) => ({
      name: 'adapters-core-contract-only',
      comment: `${file} may import, besides gateway/src/core, only ${allowed.join(', ')}`,
      severity: 'error',
      from: { path: `^${file}$` },
      to: { path: `${GW}(?!core/)`, pathNot: allowed.map((a) => `^${GW.slice(1)}${a}$`) },
    })),
    {
      name: 'cluster-beside-the-flow',
      comment:
        'gateway/src/cluster (membership, partition leases, the ownership gate, the leader; ADR 0150) ' +
        'sits beside the flow: it sees core and the shared state store only, and is handed the pipeline, ' +
        'the outbox counters and the singletons through small interfaces by its module.ts.',
      severity: 'error',
      from: { path: `${GW}cluster/`, pathNot: ROOT },
      to: { path: `${GW}(?!core/|cluster/|storage/sql/)` },
    },
    {
      name: 'cluster-only-from-the-root',
      comment: 'Only the composition root wires cluster mode in; no stage of the flow knows it is clustered.',
      severity: 'error',
      from: { path: `${GW}(?!cluster/)`, pathNot: ROOT },
      to: { path: `${GW}cluster/` },
    },
    {
      name: 'simulators-no-gateway-internals',
      comment:
        'Simulators stand in for hardware: they speak the wire protocols, and share no gateway code but ' +
        'its pure reading types.',
      severity: 'error',
      from: { path: '^simulators/' },
      to: { path: GW, pathNot: `${GW}core/types\\.ts$` },
    },
    {
      name: 'no-dev-deps-in-service',
      comment: 'The service image installs production dependencies only (npm ci --omit=dev).',
      severity: 'error',
      from: { path: '^(gateway/src|adapters|simulators)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports are dependencies too: a boundary holds for types as well.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
