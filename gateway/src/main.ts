import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from './config/load.js';
import { createLogger } from './core/log.js';
import { GatewayError } from './core/errors.js';
import { readTlsFiles, TlsFileError } from './http/tls.js';
import type { GatewayConfig } from './config/schema.js';

const USAGE = `Usage: npm run gateway -- [--config <file.yaml>] [--check-config]

  --config <file>   YAML configuration (optional; built-in defaults otherwise)
  --check-config    validate the configuration (file + environment) and exit
  --demo            also run the device simulators against the gateway (what npm start does)
  --help            this text

Environment variables override the file: GATEWAY_HTTP_PORT, GATEWAY_DATA_DIR, GATEWAY_MQTT_URL,
GATEWAY_INFLUX_URL, GATEWAY_INFLUX_API, GATEWAY_INFLUX_TOKEN, GATEWAY_INFLUX_ORG,
GATEWAY_INFLUX_BUCKET, GATEWAY_INFLUX_DB, GATEWAY_ADMIN_TOKEN, GATEWAY_LOG_LEVEL,
GATEWAY_TLS_CERT, GATEWAY_TLS_KEY, GATEWAY_TLS_CA (HTTPS; SIGHUP reloads the certificate).
GATEWAY_ADMIN_PASSWORD creates the account "admin" when no account exists yet (docs/security.md).
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
  const configPath = args.values.config ?? process.env.GATEWAY_CONFIG;
  let cfg;
  try {
    cfg = loadConfig(configPath);
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
    if (cfg.http.tls) {
      try {
        readTlsFiles(cfg.http.tls);
      } catch (err) {
        if (!(err instanceof TlsFileError)) throw err;
        process.stderr.write(`configuration invalid:\n  ${err.message}\n`);
        return 2;
      }
    }
    process.stdout.write('configuration ok\n');
    return 0;
  }
  // Imported only now: --check-config and a bad config answer without loading the whole service
  // (every adapter, the HTTP server, the stores), which costs about 1.5 s of CPU at each start.
  const { Gateway } = await import('./gateway.js');
  const log = createLogger(cfg.logLevel);
  let prepare = (c: GatewayConfig) => c;
  if (args.values.demo) {
    // Declare the simulated devices unless the config already names them (on reload too).
    const { demoDevices } = await import('./demo.js');
    const demoList = await demoDevices();
    prepare = (c) => {
      const known = new Set(c.devices.map((d) => `${d.site}/${d.id}`));
      c.devices.push(...demoList.filter((d) => !known.has(`${d.site}/${d.id}`)));
      return c;
    };
    cfg = prepare(cfg);
  }
  const gw = new Gateway(cfg, log, { configPath, prepare });
  let running = false;
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
  // SIGHUP re-reads the config file and the HTTPS certificate; it never stops the gateway (Node's
  // default would).
  process.on('SIGHUP', () => {
    if (!running || stopping) {
      log.warn('SIGHUP ignored: the gateway is not running');
      return;
    }
    log.info(
      { file: configPath ?? null },
      gw.certificate
        ? 'SIGHUP: reloading the HTTPS certificate and the configuration'
        : 'SIGHUP: reloading the configuration',
    );
    try {
      gw.reloadFromFile(); // logs what it applied, what needs a restart, or why it was rejected
    } catch (err) {
      log.error({ err }, 'config reload failed; still running on the previous config');
    }
  });
  try {
    await gw.start();
  } catch (err) {
    log.fatal({ err }, `start-up failed: ${(err as Error).message}`);
    await gw.stop().catch(() => {});
    // A configuration that cannot work (a second instance with a member's id, say): as a bad config.
    return err instanceof GatewayError && err.code === 'GW_ERR_CONFIG' ? 2 : 1;
  }
  running = true;
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
