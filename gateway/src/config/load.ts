import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { configSchema, type GatewayConfig } from './schema.js';
import { BUILTIN_KINDS } from '../ingest/catalogue.js';

/** A configuration problem: the key path and what is wrong with it. */
export interface ConfigProblem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Environment variables of CONTRACT.md, each mapped onto its key path; they win over the file. */
const ENV_KEYS: Array<[string, string[], 'string' | 'int']> = [
  ['GATEWAY_HTTP_PORT', ['http', 'port'], 'int'],
  ['GATEWAY_DATA_DIR', ['dataDir'], 'string'],
  ['GATEWAY_MQTT_URL', ['mqtt', 'url'], 'string'],
  ['GATEWAY_INFLUX_URL', ['influx', 'url'], 'string'],
  ['GATEWAY_INFLUX_API', ['influx', 'api'], 'string'],
  ['GATEWAY_INFLUX_TOKEN', ['influx', 'token'], 'string'],
  ['GATEWAY_INFLUX_ORG', ['influx', 'org'], 'string'],
  ['GATEWAY_INFLUX_BUCKET', ['influx', 'bucket'], 'string'],
  ['GATEWAY_INFLUX_DB', ['influx', 'db'], 'string'],
  ['GATEWAY_ADMIN_TOKEN', ['http', 'adminToken'], 'string'],
  ['GATEWAY_ADMIN_TOKEN_SHA256', ['http', 'adminTokenSha256'], 'string'],
  ['GATEWAY_LOG_LEVEL', ['logLevel'], 'string'],
  ['GATEWAY_DEMO_CONTROL_URL', ['http', 'demo', 'controlUrl'], 'string'],
  ['GATEWAY_TLS_CERT', ['http', 'tls', 'cert'], 'string'],
  ['GATEWAY_TLS_KEY', ['http', 'tls', 'key'], 'string'],
  ['GATEWAY_TLS_CA', ['http', 'tls', 'ca'], 'string'],
  ['GATEWAY_INSTANCE_ID', ['cluster', 'instanceId'], 'string'],
  ['GATEWAY_POSTGRES_URL', ['storage', 'postgres'], 'string'],
];

/** The default MQTT client id; with an instance id, `<default>-<instanceId>`. */
export const DEFAULT_MQTT_CLIENT_ID = 'facility-gateway';

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (let i = 0; i < path.length - 1; i++) {
    const k = path[i]!;
    const next = cur[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/** Reads the YAML file (if any), applies the environment on top and validates it all. */
export function loadConfig(file: string | undefined, env: Env = process.env): GatewayConfig {
  const problems: ConfigProblem[] = [];
  let raw: unknown = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError([{ path: '(file)', message: `cannot read ${file}: ${(err as Error).message}` }]);
    }
    try {
      raw = parseYaml(text) ?? {};
    } catch (err) {
      throw new ConfigError([{ path: '(file)', message: `not valid YAML: ${(err as Error).message}` }]);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError([{ path: '(root)', message: 'must be a mapping of keys to values' }]);
    }
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  const rulesFile = readRulesFile(merged, file);
  for (const [name, path, type] of ENV_KEYS) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (type === 'int') {
      if (!/^\d+$/.test(value)) {
        problems.push({
          path: `${path.join('.')} (from ${name})`,
          message: `must be an integer, got "${value}"`,
        });
        continue;
      }
      setPath(merged, path, Number(value));
    } else {
      setPath(merged, path, value);
    }
  }
  deriveClientId(merged);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.length ? issue.path.map(String).join('.') : '(root)';
      const envName = ENV_KEYS.find(([, p]) => p.join('.') === path)?.[0];
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          problems.push({ path: path === '(root)' ? key : `${path}.${key}`, message: 'unknown key' });
        }
        continue;
      }
      if (envName && env[envName] !== undefined) message += ` (from ${envName})`;
      if (rulesFile && issue.path[0] === 'rules') message += ` (in ${rulesFile})`;
      problems.push({ path, message });
    }
  }
  if (problems.length || !result.success) throw new ConfigError(problems);
  return crossCheck(result.data);
}

/**
 * Two instances with one client id disconnect each other at every reconnect (the broker keeps one
 * session per id), so an instance id given without a client id makes the client id its own.
 */
function deriveClientId(merged: Record<string, unknown>): void {
  const cluster = merged.cluster as Record<string, unknown> | undefined;
  const instanceId = cluster?.instanceId;
  if (typeof instanceId !== 'string' || instanceId === '') return;
  const mqtt = (merged.mqtt ?? {}) as Record<string, unknown>;
  if (typeof mqtt !== 'object' || Array.isArray(mqtt) || mqtt.clientId !== undefined) return;
  merged.mqtt = { ...mqtt, clientId: `${DEFAULT_MQTT_CLIENT_ID}-${instanceId}` };
}

/**
 * Puts the content of `rulesFile` (relative to the config file) under `rules`, so it is validated
 * with the same key paths as rules written inline. Returns the file read, for messages.
 */
function readRulesFile(merged: Record<string, unknown>, configFile: string | undefined): string | undefined {
  const name = merged.rulesFile;
  if (name === undefined) return undefined;
  if (typeof name !== 'string' || name === '') return undefined; // the schema reports it
  if (merged.rules !== undefined)
    throw new ConfigError([{ path: 'rulesFile', message: 'give either rules or rulesFile, not both' }]);
  const path = resolve(configFile ? dirname(configFile) : '.', name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: 'rulesFile', message: `cannot read ${path}: ${(err as Error).message}` }]);
  }
  try {
    merged.rules = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError([
      { path: 'rulesFile', message: `${path} is not valid YAML: ${(err as Error).message}` },
    ]);
  }
  return path;
}

/** Checks that span several keys. */
function crossCheck(cfg: GatewayConfig): GatewayConfig {
  const problems: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  cfg.devices.forEach((d, i) => {
    if (!(d.kind in BUILTIN_KINDS) && !(d.kind in cfg.kinds)) {
      problems.push({
        path: `devices.${i}.kind`,
        message: `unknown kind "${d.kind}": use one of ${Object.keys(BUILTIN_KINDS).join(', ')} or declare it under kinds`,
      });
    }
    const key = `${d.site}/${d.id}`;
    if (seen.has(key))
      problems.push({
        path: `devices.${i}.id`,
        message: `duplicate device ${key} (also devices.${seen.get(key)})`,
      });
    seen.set(key, i);
  });
  if (cfg.mqtt.reconnect.minMs > cfg.mqtt.reconnect.maxMs) {
    problems.push({ path: 'mqtt.reconnect.minMs', message: 'must not exceed mqtt.reconnect.maxMs' });
  }
  if (cfg.influx.retry.minMs > cfg.influx.retry.maxMs) {
    problems.push({ path: 'influx.retry.minMs', message: 'must not exceed influx.retry.maxMs' });
  }
  if (cfg.influx.enabled && cfg.influx.api === 'v2' && cfg.influx.token === undefined) {
    // InfluxDB 2/3 need a token; stores such as VictoriaMetrics or 1.8 with auth off do not.
  }
  if (problems.length) throw new ConfigError(problems);
  return cfg;
}
