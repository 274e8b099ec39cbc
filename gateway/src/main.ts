import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from './config/load.js';
import { createLogger } from './core/log.js';
import { Gateway } from './gateway.js';

const USAGE = `Usage: npm run gateway -- [--config <file.yaml>] [--check-config]

  --config <file>   YAML configuration (optional; built-in defaults otherwise)
  --check-config    validate the configuration (file + environment) and exit
  --demo            also run the device simulators against the gateway (what npm start does)
  --help            this text

Environment variables override the file: GATEWAY_HTTP_PORT, GATEWAY_DATA_DIR, GATEWAY_MQTT_URL,
GATEWAY_INFLUX_URL, GATEWAY_INFLUX_API, GATEWAY_INFLUX_TOKEN, GATEWAY_INFLUX_ORG,
GATEWAY_INFLUX_BUCKET, GATEWAY_INFLUX_DB, GATEWAY_ADMIN_TOKEN, GATEWAY_LOG_LEVEL.
`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        config: { type: 'string' },
        'check-config': { type: 'boolean' },
        demo: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      allowPositionals: false,
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let cfg;
  try {
    cfg = loadConfig(args.values.config ?? process.env.GATEWAY_CONFIG);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `configuration invalid:\n${err.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}\n`,
      );
      return 2;
    }
    throw err;
  }
  if (args.values['check-config']) {
    process.stdout.write('configuration ok\n');
    return 0;
  }
  const log = createLogger(cfg.logLevel);
  if (args.values.demo) {
    // Declare the simulated devices unless the config already names them.
    const { demoDevices } = await import('./demo.js');
    const known = new Set(cfg.devices.map((d) => `${d.site}/${d.id}`));
    cfg.devices.push(...(await demoDevices()).filter((d) => !known.has(`${d.site}/${d.id}`)));
  }
  const gw = new Gateway(cfg, log);
  let demo: { stop(): Promise<void> } | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error('shutdown took longer than 20 s; exiting');
      process.exit(1);
    }, 20_000);
    force.unref();
    await demo?.stop();
    await gw.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  try {
    await gw.start();
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    await gw.stop().catch(() => {});
    return 1;
  }
  if (args.values.demo) {
    const { startDemo } = await import('./demo.js');
    demo = await startDemo(gw, log);
  }
  return -1;
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
