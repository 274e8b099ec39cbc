import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigError, loadConfig } from '../../gateway/src/config/load.js';
import { runGatewayCli } from '../fixtures/gateway.js';
import { freePort, waitFor, waitForPort } from '../fixtures/ports.js';

/**
 * docker-compose.yml checked without a Docker engine: Compose itself (Debian's docker-compose 1.29,
 * installed by scripts/install-test-servers.sh) validates and resolves it, dclint lints it, and the
 * resolved file is held against what the services really read: the gateway's config loader, the
 * Grafana provisioning files, and a real Mosquitto started with deploy/mosquitto/mosquitto.conf.
 */

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const COMPOSE = process.env.DOCKER_COMPOSE_BIN ?? '/usr/bin/docker-compose';

interface Healthcheck {
  test: string[];
  interval?: string;
}
interface Service {
  image?: string;
  build?: { context: string };
  environment?: Record<string, string | null>;
  /** docker-compose 1.29 writes the short syntax: `source:target:mode` and `ip:published:target/proto`. */
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  command?: string[];
  profiles?: string[];
}
interface Resolved {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

interface Mount {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly: boolean;
}
function mounts(s: Service): Mount[] {
  return (s.volumes ?? []).map((v) => {
    const [source, target, mode] = v.split(':') as [string, string, string | undefined];
    return { type: source.startsWith('/') ? 'bind' : 'volume', source, target, readOnly: mode === 'ro' };
  });
}
/** `host_ip:published:target` of each published port. */
function ports(s: Service): string[] {
  return (s.ports ?? []).map((p) => p.replace(/\/tcp$/, ''));
}

/** `docker-compose config`: the file as Compose resolves it (variables, defaults, long syntax). */
async function resolved(args: string[] = [], env: Record<string, string> = {}): Promise<Resolved> {
  const { stdout } = await run(COMPOSE, ['-f', 'docker-compose.yml', ...args, 'config'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });
  return parseYaml(stdout) as Resolved;
}

let base: Resolved;
let withSimulators: Resolved;

beforeAll(async () => {
  base = await resolved();
  withSimulators = await resolved(['--profile', 'simulators']);
});

describe('docker-compose.yml, as Compose and dclint see it', () => {
  it('passes `docker-compose config -q`, with and without the simulators profile and with .env.example', async () => {
    for (const args of [[], ['--profile', 'simulators'], ['--env-file', '.env.example']]) {
      const r = await run(COMPOSE, ['-f', 'docker-compose.yml', ...args, 'config', '-q'], { cwd: ROOT });
      expect(r.stderr, args.join(' ')).toBe('');
    }
  });

  it('starts the simulators only with their profile', () => {
    // docker-compose 1.29 lists every service in `config`; the profile decides what `up` starts.
    expect(Object.keys(withSimulators.services).sort()).toEqual([
      'gateway',
      'grafana',
      'influxdb',
      'mosquitto',
      'simulators',
    ]);
    for (const [name, s] of Object.entries(withSimulators.services))
      expect(s.profiles, name).toEqual(name === 'simulators' ? ['simulators'] : undefined);
  });

  it('has no dclint errors or warnings', async () => {
    const bin = join(ROOT, 'node_modules/.bin/dclint');
    let stdout: string;
    try {
      ({ stdout } = await run(bin, ['-f', 'json', 'docker-compose.yml'], { cwd: ROOT }));
    } catch (err) {
      // dclint exits 1 when it finds errors; its report is still on stdout.
      stdout = (err as { stdout?: string }).stdout ?? '';
      if (!stdout) throw err;
    }
    const report = JSON.parse(stdout) as Array<{
      messages: Array<{ rule: string; message: string; line: number }>;
      errorCount: number;
      warningCount: number;
    }>;
    expect(report).toHaveLength(1);
    expect(report[0]!.messages).toEqual([]);
    expect(report[0]!.errorCount + report[0]!.warningCount).toBe(0);
  });

  it('gives every service a health check, and waits for healthy dependencies', () => {
    const svcs = withSimulators.services;
    for (const [name, s] of Object.entries(svcs)) {
      expect(s.healthcheck?.test?.[0], `${name} health check`).toBe('CMD');
      for (const [dep, how] of Object.entries(s.depends_on ?? {})) {
        expect(svcs[dep], `${name} depends on unknown ${dep}`).toBeDefined();
        expect(how.condition, `${name} → ${dep}`).toBe('service_healthy');
      }
    }
    expect(Object.keys(svcs.gateway!.depends_on ?? {}).sort()).toEqual(['influxdb', 'mosquitto']);
    expect(Object.keys(svcs.grafana!.depends_on ?? {})).toEqual(['influxdb']);
  });

  it('pins every image to a major version and builds the gateway and simulators from the Dockerfile', () => {
    const images: string[] = [];
    for (const [name, s] of Object.entries(withSimulators.services)) {
      if (s.build) {
        expect(s.build.context, name).toBe(ROOT);
        expect(s.image, `${name}: build and image`).toBeUndefined();
        continue;
      }
      expect(s.image, name).toMatch(/^[a-z0-9./-]+:\d+$/);
      images.push(s.image!.split(':')[0]!);
    }
    expect(images.sort()).toEqual(['eclipse-mosquitto', 'grafana/grafana', 'influxdb']);
    expect(Object.keys(withSimulators.services).filter((n) => withSimulators.services[n]!.build)).toEqual([
      'gateway',
      'simulators',
    ]);
  });

  it('keeps state in named volumes and mounts files that exist', () => {
    const declared = Object.keys(base.volumes).sort();
    const used = new Set<string>();
    for (const [name, s] of Object.entries(withSimulators.services)) {
      for (const v of mounts(s)) {
        if (v.type === 'volume') {
          expect(declared, `${name}: volume ${v.source}`).toContain(v.source);
          used.add(v.source);
        } else {
          expect(v.source.startsWith(ROOT), `${name}: ${v.source} in the repository`).toBe(true);
          expect(existsSync(v.source), `${name}: ${v.source}`).toBe(true);
          expect(v.readOnly, `${name}: ${v.source} read-only`).toBe(true);
        }
      }
    }
    expect([...used].sort()).toEqual(declared);
    const targets = (svc: string): string[] => mounts(base.services[svc]!).map((v) => v.target);
    expect(targets('gateway')).toContain('/data');
    expect(targets('influxdb')).toContain('/var/lib/influxdb2');
    expect(targets('mosquitto')).toContain('/mosquitto/data');
    expect(targets('grafana')).toContain('/var/lib/grafana');
  });

  it('publishes the ports on 127.0.0.1 unless BIND_ADDRESS says otherwise', async () => {
    const all = (r: Resolved): string[] => Object.values(r.services).flatMap(ports);
    expect(all(base).sort()).toEqual([
      '127.0.0.1:1883:1883',
      '127.0.0.1:3000:3000',
      '127.0.0.1:8080:8080',
      '127.0.0.1:8086:8086',
    ]);
    const open = await resolved([], { BIND_ADDRESS: '0.0.0.0' });
    expect(all(open).length).toBe(4);
    expect(all(open).every((p) => p.startsWith('0.0.0.0:'))).toBe(true);
  });
});

describe('docker-compose.yml against what the services read', () => {
  const env = (svc: string): Record<string, string> =>
    Object.fromEntries(Object.entries(base.services[svc]!.environment ?? {}).map(([k, v]) => [k, v ?? '']));

  it('sets only environment variables the gateway config loader reads', () => {
    const gw = env('gateway');
    const names = Object.keys(gw);
    expect(names.length).toBeGreaterThan(5);
    const defaults = JSON.stringify(loadConfig(undefined, {}));
    for (const name of names) {
      expect(name, 'a gateway setting').toMatch(/^GATEWAY_/);
      // A value unlike the default: a variable that is read either changes the configuration or
      // is refused naming itself.
      const probe = /^\d+$/.test(gw[name]!) ? `${gw[name]}1` : `${gw[name]}x`;
      let effect: string;
      try {
        effect = JSON.stringify(loadConfig(undefined, { [name]: probe })) === defaults ? 'none' : 'changed';
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        effect = (err as Error).message.includes(`(from ${name})`) ? 'refused' : 'other';
      }
      expect(effect, `${name}=${probe}`).not.toBe('none');
      expect(effect, `${name}=${probe}`).not.toBe('other');
    }
  });

  it('gives the gateway a configuration its loader accepts, pointing at the compose services', async () => {
    const gw = env('gateway');
    const cfg = loadConfig(undefined, gw);
    expect(cfg.mqtt.url).toBe('mqtt://mosquitto:1883');
    expect(cfg.influx.url).toBe('http://influxdb:8086');
    expect(cfg.influx.api).toBe('v2');
    expect(cfg.dataDir).toBe('/data');
    expect(cfg.http.port).toBe(8080);
    expect(ports(base.services.gateway!)).toEqual([`127.0.0.1:${cfg.http.port}:${cfg.http.port}`]);
    // The same check the gateway makes at start, as its own process.
    const { code, out } = await runGatewayCli(['--check-config'], { ...gw, GATEWAY_DATA_DIR: tmpdir() });
    expect(code, out).toBe(0);
  });

  it('uses one InfluxDB org, bucket and token for InfluxDB set-up, the gateway and Grafana', () => {
    const influx = env('influxdb');
    const gw = env('gateway');
    const grafana = env('grafana');
    expect(influx.DOCKER_INFLUXDB_INIT_MODE).toBe('setup');
    expect(gw.GATEWAY_INFLUX_TOKEN).toBe(influx.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN);
    expect(grafana.GRAFANA_INFLUX_TOKEN).toBe(influx.DOCKER_INFLUXDB_INIT_ADMIN_TOKEN);
    expect(gw.GATEWAY_INFLUX_ORG).toBe(influx.DOCKER_INFLUXDB_INIT_ORG);
    expect(gw.GATEWAY_INFLUX_BUCKET).toBe(influx.DOCKER_INFLUXDB_INIT_BUCKET);
    // InfluxQL through the bucket's virtual DBRP mapping: the database is the bucket's name.
    expect(grafana.GRAFANA_INFLUX_DB).toBe(influx.DOCKER_INFLUXDB_INIT_BUCKET);
    expect(grafana.GRAFANA_INFLUX_URL).toBe(gw.GATEWAY_INFLUX_URL);
    expect(ports(base.services.influxdb!)).toEqual(['127.0.0.1:8086:8086']);
  });

  it('mounts the Grafana provisioning where Grafana and the dashboard provider look', () => {
    const g = base.services.grafana!;
    const mount = (source: string): string | undefined =>
      mounts(g).find((v) => v.source === join(ROOT, source))?.target;
    expect(mount('dashboards/grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const dashboardsAt = mount('dashboards/grafana/dashboards');
    const provider = parseYaml(
      readFileSync(join(ROOT, 'dashboards/grafana/provisioning/dashboards/facility.yaml'), 'utf8'),
    ) as { providers: Array<{ type: string; options: { path: string } }> };
    expect(provider.providers[0]!.options.path).toBe('${GRAFANA_DASHBOARDS_DIR}');
    expect(env('grafana').GRAFANA_DASHBOARDS_DIR).toBe(dashboardsAt);
    const home = env('grafana').GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(home.startsWith(`${dashboardsAt}/`)).toBe(true);
    expect(
      existsSync(join(ROOT, 'dashboards/grafana/dashboards', home.slice(dashboardsAt!.length + 1))),
    ).toBe(true);
    // Every ${VAR} of the provisioning files is set in Grafana's environment.
    const ds = ['datasources/influxdb.yaml', 'dashboards/facility.yaml']
      .map((f) => readFileSync(join(ROOT, 'dashboards/grafana/provisioning', f), 'utf8'))
      .join('\n');
    const vars = [...ds.replace(/^\s*#.*$/gm, '').matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!);
    expect(vars.length).toBeGreaterThan(0);
    for (const v of vars) expect(env('grafana')[v], `grafana environment ${v}`).toMatch(/\S/);
  });

  it('runs the simulators against the compose broker with their control API for the health check', () => {
    const s = withSimulators.services.simulators!;
    expect(s.command?.slice(0, 2)).toEqual(['node', 'dist/simulators/cli.js']);
    const arg = (flag: string): string | undefined => s.command![s.command!.indexOf(flag) + 1];
    expect(arg('--broker')).toBe(env('gateway').GATEWAY_MQTT_URL);
    expect(s.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${arg('--control-port')}/stats`);
    // The Demo panel: the gateway reaches the control on the compose network, which is not published.
    expect(arg('--control-host')).toBe('0.0.0.0');
    expect(s.ports ?? []).toEqual([]);
    expect(env('gateway').GATEWAY_DEMO_CONTROL_URL).toBe(`http://simulators:${arg('--control-port')}`);
    expect(existsSync(join(ROOT, 'simulators/cli.ts'))).toBe(true);
  });
});

describe('deploy/mosquitto/mosquitto.conf in a real Mosquitto', () => {
  let dir: string;
  let port: number;
  let proc: ReturnType<typeof spawn> | undefined;
  let stderr = '';

  /**
   * The deployed file with only what a container provides changed: the listener on a free
   * loopback port, the persistence folder in a temporary one, and the user to run as.
   */
  async function startBroker(): Promise<void> {
    const p = spawn('/usr/sbin/mosquitto', ['-c', join(dir, 'mosquitto.conf')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc = p;
    p.stdout?.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitForPort(port, 10_000).catch((err: unknown) => {
      throw new Error(`mosquitto did not start with the deployed config: ${String(err)}\n${stderr}`);
    });
  }

  async function stopBroker(): Promise<void> {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGTERM');
    await exited;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fgw-deploy-mosquitto-'));
    port = await freePort();
    const conf = readFileSync(join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8')
      .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
      .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`);
    expect(conf).toContain(`listener ${port} 127.0.0.1`);
    writeFileSync(join(dir, 'mosquitto.conf'), `${conf}\nuser ${userInfo().username}\n`);
    await startBroker();
  });

  afterAll(async () => {
    await stopBroker();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds the broker settings of docs/deployment.md', () => {
    const text = readFileSync(join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8');
    const settings = new Map(
      text
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#'))
        .map((l) => [l.split(' ')[0]!, l.slice(l.indexOf(' ') + 1)]),
    );
    expect(settings.get('persistence')).toBe('true');
    expect(settings.get('persistence_location')).toBe('/mosquitto/data/');
    expect(settings.get('max_queued_messages')).toBe('1000000');
    expect(settings.get('max_queued_bytes')).toBe('0');
    expect(settings.get('max_inflight_messages')).toBe('1000');
    const doc = readFileSync(join(ROOT, 'docs/deployment.md'), 'utf8');
    for (const key of ['max_queued_messages 1000000', 'max_inflight_messages 1000', 'persistence true'])
      expect(doc).toContain(key);
    // Shared subscriptions split one device's readings between instances (issue 15): not advised.
    expect(doc).not.toMatch(/topics:.*\$share/);
  });

  it('answers the compose health check', async () => {
    const test = base.services.mosquitto!.healthcheck!.test;
    // As the container runs it: Compose turns `$$` into `$`; the broker is on the test's port.
    const args = test.slice(2).map((a) => (a === '1883' ? String(port) : a.replaceAll('$$', '$')));
    expect(test[1]).toBe('mosquitto_sub');
    expect(args).toContain('$SYS/broker/uptime');
    const { stdout } = await run('/usr/bin/mosquitto_sub', args, { timeout: 15_000 });
    expect(stdout).toMatch(/\d+ seconds/);
  });

  it('queues more than 1000 QoS 1 messages for an offline persistent session, and keeps them across a restart', async () => {
    const url = `mqtt://127.0.0.1:${port}`;
    const opts = {
      clientId: 'deploy-test-sub',
      clean: false,
      protocolVersion: 4 as const,
      reconnectPeriod: 0,
    };
    const topic = 'facility/s1/env-probe/d1/telemetry';
    const sub = await mqtt.connectAsync(url, opts);
    await sub.subscribeAsync(topic, { qos: 1 });
    await sub.endAsync();

    const pub = await mqtt.connectAsync(url, { clientId: 'deploy-test-pub', reconnectPeriod: 0 });
    const n = 1500;
    await Promise.all(
      Array.from({ length: n }, (_, i) => pub.publishAsync(topic, JSON.stringify({ i }), { qos: 1 })),
    );
    await pub.endAsync();

    // A restart in between: persistence keeps the session and its queue.
    await stopBroker();
    expect(statSync(join(dir, 'mosquitto.db')).size).toBeGreaterThan(0);
    await startBroker();

    const seen = new Set<number>();
    // The listener is in place before the session resumes and the queue pours in.
    const back = mqtt.connect(url, opts);
    back.on('message', (_t, payload) => seen.add((JSON.parse(payload.toString()) as { i: number }).i));
    await waitFor(() => seen.size === n, 30_000, `all ${n} queued messages`);
    await back.endAsync();
    expect(seen.size).toBe(n);
  });
});
