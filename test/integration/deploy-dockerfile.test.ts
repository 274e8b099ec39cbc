import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { DockerfileParser, type Copy, type Dockerfile, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startMosquitto, type Mosquitto } from '../fixtures/mosquitto.js';
import { freePort, waitFor } from '../fixtures/ports.js';

/**
 * The Dockerfile checked without a Docker engine: parsed and linted (dockerfile-ast,
 * dockerfile-utils), its structure held to the deployment rules, its build stage replayed on a
 * copy of the build context filtered by .dockerignore (`npm run build` there), and the image's
 * start commands (CMD, HEALTHCHECK, the compose services' commands and health checks) run from
 * that build against a real Mosquitto.
 */

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const df: Dockerfile = DockerfileParser.parse(text);
// A CommonJS module whose typings declare an ES default export; required as what it is.
const dockerignore = createRequire(import.meta.url)(
  '@balena/dockerignore',
) as typeof import('@balena/dockerignore').default;
const ignore = dockerignore({ ignorecase: false }).add(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));

/** The instructions of each stage, by stage name. */
function stages(): Map<string, Instruction[]> {
  const out = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const i of df.getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      current = [];
      const name = df.getFROMs().find((f) => f.getRange().start.line === i.getRange().start.line);
      out.set(name?.getBuildStage() ?? `stage${out.size}`, current);
    }
    current?.push(i);
  }
  return out;
}

/** The exec-form arguments of a JSON instruction (`CMD [...]`, `HEALTHCHECK ... CMD [...]`). */
function execForm(i: Instruction): string[] {
  const raw = i.getArgumentsContent() ?? '';
  const json = raw.slice(raw.indexOf('['));
  return JSON.parse(json) as string[];
}

/** The ENV of a stage, as the container's environment. */
function runtimeEnv(list: Instruction[]): Map<string, string> {
  type Props = { getProperties(): Array<{ getName(): string; getValue(): string | null }> };
  return new Map(
    list.flatMap((i) =>
      i.getKeyword() === 'ENV'
        ? (i as unknown as Props).getProperties().map((p) => [p.getName(), p.getValue() ?? ''] as const)
        : [],
    ),
  );
}

const args = (i: Instruction): string[] => i.getArguments().map((a) => a.getValue());
const runs = (list: Instruction[]): string =>
  list
    .filter((i) => i.getKeyword() === 'RUN')
    .map((i) => args(i).join(' '))
    .join('\n');

/** The build context Docker would send: every file of the repository not excluded by .dockerignore. */
async function contextFiles(): Promise<string[]> {
  const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
  });
  return ignore.filter(stdout.split('\0').filter((f) => f && existsSync(join(ROOT, f))));
}

describe('Dockerfile structure', () => {
  const byStage = stages();
  const runtime = [...byStage.values()].at(-1)!;

  it('parses and lints clean', () => {
    expect(validate(text)).toEqual([]);
    expect([...byStage.keys()]).toEqual(['build', 'runtime']);
  });

  it('builds on node 20 bookworm with the toolchain for native modules, and runs on bookworm-slim', () => {
    const froms = df.getFROMs().map((f) => `${f.getImageName()}:${f.getImageTag()}`);
    expect(froms).toEqual(['node:20-bookworm', 'node:20-bookworm-slim']);
    const engines = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
    ).engines.node;
    expect(engines).toBe('>=20');
    // Pinned to a major version (with a Debian release), never latest or an unpinned name.
    for (const f of df.getFROMs()) expect(f.getImageTag()).toMatch(/^\d+(-[a-z]+)*$/);
    const build = runs(byStage.get('build')!);
    for (const pkg of ['python3', 'make', 'g++']) expect(build).toContain(` ${pkg}`);
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm run build && npm prune --omit=dev/);
  });

  it('runs as a non-root user with /data as a volume, the ports exposed and a health check', () => {
    const kw = (k: string): Instruction[] => runtime.filter((i) => i.getKeyword() === k);
    const users = kw('USER').map((i) => args(i)[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
    expect(execForm(kw('VOLUME')[0]!)).toEqual(['/data']);
    expect(kw('EXPOSE').flatMap(args).sort()).toEqual(['1883', '8080']);
    const env = runtimeEnv(runtime);
    expect(env.get('GATEWAY_DATA_DIR')).toBe('/data');
    expect(env.get('GATEWAY_HTTP_PORT')).toBe('8080');
    const health = kw('HEALTHCHECK');
    expect(health).toHaveLength(1);
    expect(execForm(health[0]!).slice(0, 2)).toEqual(['node', '-e']);
    expect(execForm(kw('CMD')[0]!)).toEqual([
      'node',
      '--initial-old-space-size=128',
      'dist/gateway/src/main.js',
    ]);
  });

  it('copies only from the build context what exists and .dockerignore lets through, and from declared stages', async () => {
    const declared: string[] = [];
    const context = new Set(await contextFiles());
    for (const [name, list] of byStage) {
      for (const i of list.filter((x) => x.getKeyword() === 'COPY')) {
        const from = (i as Copy).getFromFlag()?.getValue();
        const [target, ...sources] = args(i)
          .filter((a) => !a.startsWith('--'))
          .reverse();
        expect(target, `${name}: COPY without a target`).toBeDefined();
        if (from) {
          expect(declared, `${name}: COPY --from=${from}`).toContain(from);
          continue;
        }
        for (const src of sources) {
          expect(existsSync(join(ROOT, src)), `${name}: COPY ${src}`).toBe(true);
          if (src !== '.')
            expect(context.has(src), `${name}: COPY ${src} is excluded by .dockerignore`).toBe(true);
        }
      }
      declared.push(name);
    }
  });

  it('sends no local state or secrets in the build context, and everything the build reads', async () => {
    const files = await contextFiles();
    for (const f of files)
      expect(f, 'excluded from the context').not.toMatch(/^(node_modules|dist|data|\.git)\/|^\.env$/);
    for (const f of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'tsconfig.build.json',
      'scripts/build.mjs',
    ])
      expect(files).toContain(f);
    expect(ignore.ignores('.env')).toBe(true);
    expect(ignore.ignores('.env.example')).toBe(false);
    expect(ignore.ignores('node_modules/x/index.js')).toBe(true);
    expect(ignore.ignores('dashboards/web/dist/index.html')).toBe(true);
  });
});

describe('the image build and start commands, replayed outside a container', () => {
  const byStage = stages();
  const runtime = [...byStage.values()].at(-1)!;
  let app: string;
  let mosquitto: Mosquitto;
  const procs: ChildProcess[] = [];
  const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
    services: Record<string, { command?: string[]; healthcheck: { test: string[] } }>;
  };

  /** Runs a health check's exec form; resolves with its exit code. */
  async function check(cmd: string[], env: Record<string, string> = {}): Promise<number> {
    try {
      await run(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), {
        cwd: app,
        env: { ...process.env, ...env },
        timeout: 15_000,
      });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  }

  function start(cmd: string[], env: Record<string, string>): { proc: ChildProcess; out: () => string } {
    const proc = spawn(cmd[0] === 'node' ? process.execPath : cmd[0]!, cmd.slice(1), {
      cwd: app,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(proc);
    let out = '';
    proc.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-8000)));
    proc.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-8000)));
    return { proc, out: () => out };
  }

  async function stop(proc: ChildProcess): Promise<number | null> {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  beforeAll(async () => {
    // WORKDIR /app of the build stage: the context as Docker sends it; node_modules stands in for `npm ci`.
    app = mkdtempSync(join(tmpdir(), 'fgw-image-'));
    for (const f of await contextFiles()) {
      mkdirSync(dirname(join(app, f)), { recursive: true });
      cpSync(join(ROOT, f), join(app, f));
    }
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
    await run('npm', ['run', 'build'], { cwd: app, timeout: 400_000, maxBuffer: 16 * 1024 * 1024 });
    mosquitto = await startMosquitto();
  }, 420_000);

  afterAll(async () => {
    for (const p of procs) await stop(p);
    await mosquitto?.stop();
    if (app) rmSync(app, { recursive: true, force: true });
  });

  it('produces the CMD file and everything the runtime stage copies from the build stage', () => {
    const cmd = execForm(runtime.find((i) => i.getKeyword() === 'CMD')!);
    expect(existsSync(join(app, cmd.at(-1)!)), cmd.at(-1)).toBe(true);
    for (const i of runtime.filter((x) => x.getKeyword() === 'COPY' && (x as Copy).getFromFlag())) {
      const src = args(i).filter((a) => !a.startsWith('--'))[0]!;
      expect(src.startsWith('/app/'), src).toBe(true);
      expect(existsSync(join(app, src.slice('/app/'.length))), `COPY --from=build ${src}`).toBe(true);
    }
    expect(existsSync(join(app, compose.services.simulators!.command![1]!))).toBe(true);
  });

  it('starts the gateway and the simulators with the image and compose commands; their health checks pass', async () => {
    const port = await freePort();
    const controlPort = await freePort();
    const closed = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'fgw-image-data-'));
    // Listen on loopback only in the test (the image listens on every interface).
    const cfgFile = join(dataDir, 'gateway.yaml');
    writeFileSync(cfgFile, 'http:\n  host: 127.0.0.1\n');
    const adminToken = 'deploy-test-admin-token-0123456789';
    const image = Object.fromEntries(runtimeEnv(runtime));
    expect(image.NODE_OPTIONS).toContain('--max-old-space-size=');
    const env = {
      // The image's ENV, with the data folder and port of this test instead of /data and 8080.
      ...image,
      GATEWAY_CONFIG: cfgFile,
      GATEWAY_DATA_DIR: dataDir,
      GATEWAY_HTTP_PORT: String(port),
      GATEWAY_MQTT_URL: mosquitto.url,
      GATEWAY_INFLUX_API: 'v2',
      // Nothing listens there: the gateway is "degraded", keeps readings in its outbox, and healthy.
      GATEWAY_INFLUX_URL: `http://127.0.0.1:${closed}`,
      GATEWAY_INFLUX_TOKEN: 'facility-demo-token',
      GATEWAY_INFLUX_ORG: 'facility',
      GATEWAY_INFLUX_BUCKET: 'facility',
      GATEWAY_ADMIN_TOKEN: adminToken,
      GATEWAY_LOG_LEVEL: 'warn',
      // The compose file's Demo panel wiring, with the simulators' control on this test's port.
      GATEWAY_DEMO_CONTROL_URL: `http://127.0.0.1:${controlPort}`,
    };
    const dockerHealth = execForm(runtime.find((i) => i.getKeyword() === 'HEALTHCHECK')!);
    const composeHealth = compose.services
      .gateway!.healthcheck.test.slice(1)
      .map((a) => a.replace('8080', String(port)));
    // Nothing listens yet: the checks can fail.
    expect(await check(dockerHealth, env)).not.toBe(0);

    const cmd = execForm(runtime.find((i) => i.getKeyword() === 'CMD')!);
    const gw = start(cmd, env);
    await waitFor(
      async () => {
        if (gw.proc.exitCode !== null) throw new Error(`gateway exited ${gw.proc.exitCode}: ${gw.out()}`);
        return (await fetch(`http://127.0.0.1:${port}/api/health`).catch(() => null)) !== null;
      },
      60_000,
      'gateway HTTP',
    );
    expect(await check(dockerHealth, env), gw.out()).toBe(0);
    expect(await check(composeHealth), gw.out()).toBe(0);

    // The dashboard the build made is served at `/`, its script too.
    const page = await fetch(`http://127.0.0.1:${port}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<div id="app">');
    const script = /<script[^>]+src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script, html).toBeDefined();
    const js = await fetch(`http://127.0.0.1:${port}${script}`);
    expect(js.status).toBe(200);
    expect((await js.text()).length).toBeGreaterThan(10_000);

    // Loopback instead of the compose network's every interface.
    const simCmd = compose.services.simulators!.command!.map((a) =>
      a === 'mqtt://mosquitto:1883'
        ? mosquitto.url
        : a === '8081'
          ? String(controlPort)
          : a === '0.0.0.0'
            ? '127.0.0.1'
            : a,
    );
    expect(simCmd).toContain(mosquitto.url);
    const sim = start(simCmd, image);
    const simHealth = compose.services
      .simulators!.healthcheck.test.slice(1)
      .map((a) => a.replace('8081', String(controlPort)));
    await waitFor(async () => (await check(simHealth)) === 0, 60_000, `simulators control API: ${sim.out()}`);

    // The simulators' devices reach the gateway through the broker.
    await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/api/devices`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        const body = (await r.json()) as { devices: unknown[] };
        return body.devices.length > 0;
      },
      60_000,
      'simulated devices in the gateway registry',
    );

    // The Demo panel's list: the simulators' devices, through the gateway.
    const demoDevices = await fetch(`http://127.0.0.1:${port}/api/demo/devices`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(demoDevices.status).toBe(200);
    const listed = ((await demoDevices.json()) as { devices: Array<{ id: string; available: string[] }> })
      .devices;
    expect(listed.length).toBeGreaterThan(0);
    expect(listed[0]!.available.length).toBeGreaterThan(0);

    expect(await stop(sim.proc), sim.out()).toBe(0);
    expect(await stop(gw.proc), gw.out()).toBe(0);
    rmSync(dataDir, { recursive: true, force: true });
  }, 300_000);

  it('fails the build when the dashboard does not build', async () => {
    // After the build above the service's part is up to date; only the dashboard breaks.
    const main = join(app, 'dashboards/web/src/main.tsx');
    const good = readFileSync(main, 'utf8');
    writeFileSync(main, `${good}\nimport './no-such-module';\n`);
    try {
      let failed: { code?: number; stderr?: string } | undefined;
      await run('npm', ['run', 'build'], { cwd: app, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }).catch(
        (err: { code?: number; stderr?: string }) => (failed = err),
      );
      expect(failed, 'npm run build succeeded with a broken dashboard').toBeDefined();
      expect(failed!.code).not.toBe(0);
      expect(failed?.stderr).toContain('no-such-module');
    } finally {
      writeFileSync(main, good);
    }
  }, 300_000);
});
