import { BUILTIN_KINDS } from '../../gateway/src/ingest/catalogue.js';

/** One variable found by browsing: its node id and the browse names from Objects down to it. */
export interface FoundVariable {
  nodeId: string;
  /** Browse names below Objects, e.g. ['plant', 'tank-1', 'ph']. */
  path: string[];
  /** The DeviceKind property of its parent object, when the server has one. */
  deviceKind?: string;
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

/**
 * A YAML snippet for the gateway config: every variable whose site, device, kind and metric could
 * be guessed as a node entry, the others as commented entries to fill in by hand.
 */
export function configSnippet(endpointUrl: string, vars: FoundVariable[], name = 'plc-1'): string {
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
  const lines = [
    `# OPC UA nodes found on ${endpointUrl} (npm run opcua:discover).`,
    '# Commented entries: site, device, kind or metric could not be guessed; fill in and uncomment.',
    'opcua:',
    `  - name: ${name}`,
    `    endpointUrl: ${endpointUrl}`,
    '    securityMode: None',
    '    securityPolicy: None',
    '    nodes:',
  ];
  const q = (s: string): string => JSON.stringify(s);
  let complete = 0;
  for (const g of guesses) {
    const ok = g.site && g.device && g.kind && g.metric;
    const c = ok ? '' : '# ';
    if (ok) complete++;
    lines.push(`      ${c}- nodeId: ${q(g.v.nodeId)}  # ${g.v.path.join('/')}`);
    lines.push(`      ${c}  site: ${g.site ?? 'SITE'}`);
    lines.push(`      ${c}  device: ${g.device ?? 'DEVICE'}`);
    lines.push(`      ${c}  kind: ${g.kind ?? 'KIND'}`);
    lines.push(
      `      ${c}  metric: ${g.metric ?? normalise(g.v.path[g.v.path.length - 1]!) + '  # not a known metric'}`,
    );
  }
  // A config with no active node would not validate: keep the key, with a hint, instead.
  if (complete === 0)
    lines[lines.length - guesses.length * 5 - 1] = '    nodes: []  # none guessed; see below';
  return lines.join('\n') + '\n';
}
