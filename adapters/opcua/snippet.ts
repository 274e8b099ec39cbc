import { BUILTIN_KINDS } from '../../gateway/src/ingest/catalogue.js';
import type { OpcuaAuth } from './identity.js';

/** One variable found by browsing: its node id and the browse names from Objects down to it. */
export interface FoundVariable {
  nodeId: string;
  /** Browse names below Objects, e.g. ['plant', 'tank-1', 'ph']. */
  path: string[];
  /** The DeviceKind property of its parent object, when the server has one. */
  deviceKind?: string;
  /** Display name of its EngineeringUnits, when the server has them (analogue items). */
  unit?: string;
}

/** How discovery connected: written into the snippet so the gateway connects the same way. */
export interface SnippetOptions {
  name?: string;
  securityMode?: string;
  securityPolicy?: string;
  auth?: OpcuaAuth;
}

interface Guess {
  v: FoundVariable;
  site?: string;
  device?: string;
  kind?: string;
  metric?: string;
}

const ID = /^[A-Za-z0-9_-]{1,64}$/;

/** `Free Chlorine (mg/L)` → `free_chlorine_mg_l`: the shape of our metric names. */
export function normalise(name: string): string {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** A known metric of `kind` (or of any built-in kind) that this browse name stands for. */
export function guessMetric(name: string, kind?: string): string | undefined {
  const n = normalise(name);
  const kinds = kind && BUILTIN_KINDS[kind] ? [kind] : Object.keys(BUILTIN_KINDS);
  for (const k of kinds) if (BUILTIN_KINDS[k]!.metrics[n]) return n;
  // `temperature` for `temperature_c`, `level` for `level_pct`: the name without its unit suffix.
  for (const k of kinds) {
    const hit = Object.keys(BUILTIN_KINDS[k]!.metrics).find((m) => m.startsWith(n + '_'));
    if (hit) return hit;
  }
  return undefined;
}

/** The built-in kind whose metric names cover most of a device's variables. */
export function guessKind(names: string[]): string | undefined {
  let best: string | undefined;
  let bestHits = 0;
  for (const [kind, def] of Object.entries(BUILTIN_KINDS)) {
    const hits = names.filter((n) => {
      const m = guessMetric(n, kind);
      return m !== undefined && def.metrics[m] !== undefined;
    }).length;
    if (hits > bestHits) {
      best = kind;
      bestHits = hits;
    }
  }
  return best;
}

function idOf(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const s = name.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return ID.test(s) ? s : undefined;
}

/** `°F` against `°C`: worth a hint. `%RH` against `%`, `m³` against `m3`: the same unit. */
function unitsDiffer(server: string, ours: string): boolean {
  const n = (u: string): string => u.toLowerCase().replace(/\s+/g, '').replace('³', '3');
  const a = n(server);
  const b = n(ours);
  return !(a.startsWith(b) || b.startsWith(a));
}

function authLine(auth: OpcuaAuth | undefined, q: (s: string) => string): string {
  if (!auth || auth.type === 'anonymous') return '    auth: { type: anonymous }';
  if (auth.type === 'username')
    return `    auth: { type: username, username: ${q(auth.username)}, password: ${q('CHANGE-ME')} }  # not printed: put the password here`;
  return `    auth: { type: certificate, certificateFile: ${q(auth.certificateFile)}, privateKeyFile: ${q(auth.privateKeyFile)} }`;
}

/**
 * A YAML snippet for the gateway config: every variable whose site, device, kind and metric could
 * be guessed as a node entry, the others as commented entries to fill in by hand. Security and
 * sign-in are those discovery used (a password is never printed).
 */
export function configSnippet(endpointUrl: string, vars: FoundVariable[], opts: SnippetOptions = {}): string {
  const byDevice = new Map<string, FoundVariable[]>();
  for (const v of vars) {
    const key = v.path.slice(0, -1).join('/');
    byDevice.set(key, [...(byDevice.get(key) ?? []), v]);
  }
  const guesses: Guess[] = [];
  for (const list of byDevice.values()) {
    const declared = list[0]!.deviceKind;
    const kind =
      declared && BUILTIN_KINDS[declared] ? declared : guessKind(list.map((v) => v.path[v.path.length - 1]!));
    for (const v of list) {
      const p = v.path;
      guesses.push({
        v,
        site: idOf(p.length >= 3 ? p[p.length - 3] : undefined),
        device: idOf(p.length >= 2 ? p[p.length - 2] : undefined),
        kind: declared ?? kind,
        metric: kind ? guessMetric(p[p.length - 1]!, kind) : undefined,
      });
    }
  }
  const q = (s: string): string => JSON.stringify(s);
  const head = [
    `# OPC UA nodes found on ${endpointUrl} (npm run opcua:discover).`,
    '# Commented entries: site, device, kind or metric could not be guessed; fill in and uncomment.',
    '# Node ids name their namespace by URI (nsu=), which survives a server renumbering its namespaces.',
    'opcua:',
    `  - name: ${opts.name ?? 'plc-1'}`,
    `    endpointUrl: ${endpointUrl}`,
    `    securityMode: ${opts.securityMode ?? 'None'}`,
    `    securityPolicy: ${opts.securityPolicy ?? 'None'}`,
    authLine(opts.auth, q),
  ];
  const body: string[] = [];
  let complete = 0;
  for (const g of guesses) {
    const ok = g.site && g.device && g.kind && g.metric;
    const c = ok ? '' : '# ';
    if (ok) complete++;
    const ours = g.kind && g.metric ? BUILTIN_KINDS[g.kind]?.metrics[g.metric]?.unit : undefined;
    const unit = g.v.unit
      ? ` [${g.v.unit}]` +
        (ours && unitsDiffer(g.v.unit, ours) ? `; the metric is in ${ours}: set scale and offset` : '')
      : '';
    body.push(`      ${c}- nodeId: ${q(g.v.nodeId)}  # ${g.v.path.join('/')}${unit}`);
    body.push(`      ${c}  site: ${g.site ?? 'SITE'}`);
    body.push(`      ${c}  device: ${g.device ?? 'DEVICE'}`);
    body.push(`      ${c}  kind: ${g.kind ?? 'KIND'}`);
    body.push(
      `      ${c}  metric: ${g.metric ?? normalise(g.v.path[g.v.path.length - 1]!) + '  # not a known metric'}`,
    );
  }
  // A config with no active node would not validate: keep the key, with a hint, instead.
  const nodes = complete === 0 ? '    nodes: []  # none guessed; see below' : '    nodes:';
  return [...head, nodes, ...body].join('\n') + '\n';
}
