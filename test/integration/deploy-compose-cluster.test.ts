import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../gateway/src/config/load.js';

/**
 * The `cluster` profile (deploy/cluster/docker-compose.cluster.yml over docker-compose.yml), checked
 * without a Docker engine like docker-compose.yml itself (deploy-compose.test.ts): Compose resolves
 * it, dclint lints it, and each gateway's environment goes through the real config loader.
 */
const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const COMPOSE = process.env.DOCKER_COMPOSE_BIN ?? '/usr/bin/docker-compose';
const FILES = ['-f', 'docker-compose.yml', '-f', 'deploy/cluster/docker-compose.cluster.yml'];

interface Service {
  image?: string;
  environment?: Record<string, string | null>;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  profiles?: string[];
  healthcheck?: { test: string[] };
}
let services: Record<string, Service>;

beforeAll(async () => {
  const { stdout } = await run(COMPOSE, [...FILES, '--profile', 'cluster', 'config'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  services = (parseYaml(stdout) as { services: Record<string, Service> }).services;
});

const env = (svc: string): Record<string, string> =>
  Object.fromEntries(Object.entries(services[svc]!.environment ?? {}).map(([k, v]) => [k, v ?? '']));

describe('docker-compose cluster profile', () => {
  it('passes `docker-compose config -q` and dclint', async () => {
    const r = await run(COMPOSE, [...FILES, '--profile', 'cluster', 'config', '-q'], { cwd: ROOT });
    expect(r.stderr).toBe('');
    let stdout: string;
    try {
      ({ stdout } = await run(join(ROOT, 'node_modules/.bin/dclint'), ['-f', 'json', FILES[3]!], {
        cwd: ROOT,
      }));
    } catch (err) {
      stdout = (err as { stdout?: string }).stdout ?? '';
      if (!stdout) throw err;
    }
    const report = JSON.parse(stdout) as Array<{ messages: unknown[] }>;
    expect(report[0]!.messages).toEqual([]);
  });

  it('runs two gateways on PostgreSQL, Mosquitto, InfluxDB and Grafana', () => {
    for (const s of ['gateway', 'gateway-2', 'postgres', 'mosquitto', 'influxdb', 'grafana'])
      expect(services[s], s).toBeDefined();
    expect(services['gateway-2']!.profiles).toEqual(['cluster']);
    expect(services.postgres!.profiles).toEqual(['cluster']);
    expect(services.postgres!.image).toMatch(/^postgres:\d+$/);
    for (const g of ['gateway', 'gateway-2']) {
      expect(Object.keys(services[g]!.depends_on ?? {}).sort(), g).toEqual([
        'influxdb',
        'mosquitto',
        'postgres',
      ]);
      for (const how of Object.values(services[g]!.depends_on ?? {}))
        expect(how.condition).toBe('service_healthy');
      expect(services[g]!.healthcheck?.test[0]).toBe('CMD');
    }
    expect(services['gateway']!.ports).not.toEqual(services['gateway-2']!.ports);
  });

  it('gives each gateway a valid cluster-mode configuration with its own instance and client id', () => {
    const [a, b] = [env('gateway'), env('gateway-2')];
    expect(a.GATEWAY_POSTGRES_URL).toBe(b.GATEWAY_POSTGRES_URL);
    const ca = loadConfig(undefined, a);
    const cb = loadConfig(undefined, b);
    expect(ca.storage.postgres).toMatch(/^postgres:\/\/gateway:.*@postgres:5432\/gateway$/);
    expect(ca.cluster.instanceId).not.toBe(cb.cluster.instanceId);
    expect(ca.mqtt.clientId).not.toBe(cb.mqtt.clientId);
    expect(ca.mqtt.url).toBe(cb.mqtt.url);
  });
});
