import { stringify } from 'yaml';
import type { GatewayConfig } from '../../config/schema.js';

/** Keys whose values are secrets: never exported (the file keeps them, or the environment). */
const SECRET_KEY = /(password|secret|token)$/i;
const SECRET_KEYS = new Set(['secrets', 'tokenSha256', 'adminTokenSha256', 'pass']);

/**
 * The config in force as YAML for version control: every default spelled out, operators' changes
 * included, secrets left out (a `# secret` placeholder). Loadable again once the secrets are put back.
 */
export function exportYaml(cfg: GatewayConfig): string {
  const head =
    '# The effective configuration of the gateway: the config file with the runtime changes\n' +
    '# made from the dashboard (docs/fleet.md). Secrets are replaced by "(secret)".\n';
  return head + stringify(redact(cfg));
}

function redact(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redact);
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined) continue;
    out[k] =
      (SECRET_KEY.test(k) || SECRET_KEYS.has(k)) && x !== null && typeof x !== 'object'
        ? '(secret)'
        : redact(x);
    if (SECRET_KEYS.has(k) && Array.isArray(x)) out[k] = x.map(() => '(secret)');
    // A webhook's header values are secrets (an API key of the receiver); their names are not.
    if (k === 'headers' && typeof x === 'object' && x !== null && !Array.isArray(x))
      out[k] = Object.fromEntries(Object.keys(x).map((h) => [h, '(secret)']));
  }
  return out;
}
