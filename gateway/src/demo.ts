import type { DeviceConfig } from './config/schema.js';
import type { Logger } from './core/log.js';
import type { Gateway } from './gateway.js';
import type { Role } from './http/auth.js';

/** Report every few seconds in the demo, so the dashboard moves while someone watches. */
const DEMO_INTERVAL_MS = Number(process.env.DEMO_INTERVAL_MS ?? 5000);
const DEMO_CONTROL_PORT = Number(process.env.DEMO_CONTROL_PORT ?? 8081);

/**
 * The demo scenario's devices as gateway config, so rated flows and register sizes are known
 * (a discovered device would work too, but without its rated maximum flow).
 */
export async function demoDevices(): Promise<DeviceConfig[]> {
  const { Engine, loadScenarioFile, DEMO_SCENARIO } = await import('../../simulators/index.js');
  const engine = new Engine(loadScenarioFile(DEMO_SCENARIO), { seed: 1, startTime: Date.now() });
  return engine.devices().map((d) => ({
    id: d.id,
    site: d.site,
    kind: d.kind,
    name: d.id,
    critical: d.kind === 'chlorination',
    ...(d.ratedMaxFlow !== undefined ? { ratedMaxFlow: d.ratedMaxFlow } : {}),
    ...(d.registerMax !== undefined ? { registerMax: d.registerMax } : {}),
  }));
}

/**
 * Well-known tokens of the demo, one per role and a second engineer (a fix is verified by someone
 * other than who resolved it). Only `--demo` adds them; a deployed gateway never knows them.
 */
export const DEMO_TOKENS: ReadonlyArray<{ name: string; role: Role; token: string }> = [
  { name: 'demo-viewer', role: 'viewer', token: 'demo-viewer' },
  { name: 'demo-engineer', role: 'engineer', token: 'demo-engineer' },
  { name: 'demo-supervisor', role: 'engineer', token: 'demo-supervisor' },
];

/**
 * Demo accounts with well-known passwords, the same people as the demo tokens. Only `--demo` creates
 * them (in the data directory's shared.db); a deployed gateway never knows them.
 */
export const DEMO_ACCOUNTS: ReadonlyArray<{
  username: string;
  role: Role;
  password: string;
  displayName: string;
}> = [
  { username: 'demo-viewer', role: 'viewer', password: 'demo-viewer', displayName: 'Demo Viewer' },
  { username: 'demo-engineer', role: 'engineer', password: 'demo-engineer', displayName: 'Demo Engineer' },
  {
    username: 'demo-supervisor',
    role: 'engineer',
    password: 'demo-supervisor',
    displayName: 'Demo Supervisor',
  },
];

/** How long the printed one-time sign-in link stays valid if unused. */
const DEMO_LINK_TTL_MS = 24 * 3_600_000;

async function addDemoAccounts(gw: Gateway): Promise<void> {
  const accounts = gw.accounts;
  if (!accounts) return;
  for (const a of DEMO_ACCOUNTS) {
    if (await accounts.get(a.username)) continue;
    await accounts.create({ ...a, language: 'en', mustChangePassword: false }, 'demo');
  }
}

/** A URL a person can open: the listening address, with a wildcard host shown as localhost. */
export function dashboardUrl(listening: string): string {
  return listening.replace('//0.0.0.0', '//localhost').replace('//[::]', '//localhost');
}

/** `npm start`: the simulators publish to the gateway's broker so the whole system runs alone. */
export async function startDemo(
  gw: Gateway,
  log: Logger,
  /** Tests: another reporting interval, any free control port (0). */
  opts: { intervalMs?: number; controlPort?: number } = {},
): Promise<{ stop(): Promise<void> }> {
  const { startSimulation } = await import('../../simulators/index.js');
  const sim = await startSimulation({
    brokerUrl: gw.mqttUrl,
    intervalMs: opts.intervalMs ?? DEMO_INTERVAL_MS,
    controlPort: opts.controlPort ?? DEMO_CONTROL_PORT,
    controlHost: '127.0.0.1',
    logger: log.child({ module: 'simulator' }),
  });
  gw.demoControlUrl = sim.controlUrl;
  for (const t of DEMO_TOKENS) gw.tokens.add(t.name, t.role, t.token);
  await addDemoAccounts(gw);
  log.info(
    { dashboard: gw.httpUrl, simulatorControl: sim.controlUrl, devices: sim.devices().length },
    'demo running: simulated devices publish to the embedded broker',
  );
  const url = dashboardUrl(gw.httpUrl ?? 'http://localhost:8080');
  // A one-time link: exchanged for a session cookie, then the address is `/` again (docs/security.md).
  const code = gw.accounts?.issueLink(DEMO_ACCOUNTS[1]!.username, DEMO_LINK_TTL_MS);
  const link = code === undefined ? url : `${url}/api/session/link?code=${code}`;
  log.info(
    {
      url: link,
      accounts: DEMO_ACCOUNTS.map((a) => `${a.username} / ${a.password} (${a.role})`),
      tokens: DEMO_TOKENS.map((t) => `${t.token} (${t.role})`),
    },
    `dashboard: open ${link} (signs in once as ${DEMO_ACCOUNTS[1]!.username}; afterwards sign in with a demo account)`,
  );
  return {
    stop: async () => {
      gw.demoControlUrl = undefined;
      await sim.stop();
    },
  };
}
