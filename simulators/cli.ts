import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Simulation } from './index.js';

const USAGE = `usage: npm run simulate -- [options]
  --scenario <file>      scenario YAML (default: the demo site with all four kinds)
  --devices <n>          a generated fleet of n devices instead of a scenario
  --broker <url>         MQTT broker, mqtt:// or mqtts:// (default mqtt://127.0.0.1:1883); --no-mqtt for none
  --broker-ca <file>     CA certificate (PEM) of an mqtts:// broker not signed by a public CA
  --protocol <p>         json (default: the facility/... JSON convention) or sparkplug (Sparkplug B,
                         one edge node per site)
  --sparkplug-group <g>  Sparkplug group id (default facility)
  --opcua-port <n>       also serve chlorination tanks and probes over OPC UA on this port
  --mbus-port <n>        also answer as wired M-Bus gas and water meters (TCP, transparent serial
                         server) on this port; prints the meters' primary and secondary addresses
  --modbus-port <n>      also serve chlorination tanks and probes over Modbus TCP on this port
                         (one unit id per device, 1.. in scenario order; see docs/modbus.md)
  --speed <x>            simulated seconds per real second (1440 = a day a minute; default 1)
  --seed <n>             random seed (default: the scenario's, else 1)
  --start <time>         simulated start, RFC 3339 or epoch ms
  --control-port <n>     HTTP control (GET /devices, /faults, /stats; POST/DELETE faults)
  --control-host <addr>  interface of the HTTP control (default 127.0.0.1; 0.0.0.0 in a container
                         whose gateway triggers faults, see GATEWAY_DEMO_CONTROL_URL)
  --interval <sec>       override every device's reporting interval
  --qos <0|1|2>          override every device's QoS
  --duration <sec>       stop after this many real seconds
  --log-level <level>    pino level (default info)`;

function fail(msg: string): never {
  console.error(`simulate: ${msg}\n${USAGE}`);
  process.exit(2);
}

function int(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    fail(`--${name} must be an integer ${min}..${max}, got ${v}`);
  return n;
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      scenario: { type: 'string' },
      devices: { type: 'string' },
      broker: { type: 'string' },
      'broker-ca': { type: 'string' },
      protocol: { type: 'string' },
      'sparkplug-group': { type: 'string' },
      'no-mqtt': { type: 'boolean' },
      'opcua-port': { type: 'string' },
      'mbus-port': { type: 'string' },
      'modbus-port': { type: 'string' },
      speed: { type: 'string' },
      seed: { type: 'string' },
      start: { type: 'string' },
      'control-port': { type: 'string' },
      'control-host': { type: 'string' },
      interval: { type: 'string' },
      qos: { type: 'string' },
      duration: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }));
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const str = (k: string): string | undefined => values[k] as string | undefined;
const speed = str('speed') === undefined ? 1 : Number(str('speed'));
if (!(speed > 0) || !Number.isFinite(speed)) fail(`--speed must be a positive number, got ${str('speed')}`);
const broker = str('broker');
if (broker && !/^(mqtts?|tcp|tls):\/\/\S+$/.test(broker))
  fail(`--broker must be an mqtt:// or mqtts:// URL, got ${broker}`);
if (broker && values['no-mqtt']) fail('--broker and --no-mqtt contradict each other');
const brokerCa = str('broker-ca');
if (brokerCa !== undefined && !existsSync(brokerCa)) fail(`--broker-ca: no such file ${brokerCa}`);
const protocol = str('protocol') ?? 'json';
if (protocol !== 'json' && protocol !== 'sparkplug')
  fail(`--protocol must be json or sparkplug, got ${protocol}`);
const sparkplugGroup = str('sparkplug-group');
if (sparkplugGroup !== undefined && !/^[^/+#]{1,255}$/.test(sparkplugGroup))
  fail(`--sparkplug-group must be 1-255 characters without / + #, got ${sparkplugGroup}`);
if (sparkplugGroup !== undefined && protocol !== 'sparkplug')
  fail('--sparkplug-group needs --protocol sparkplug');
if (str('scenario') && str('devices')) fail('give either --scenario or --devices, not both');
let startTime: number | undefined;
if (str('start') !== undefined) {
  const s = str('start') as string;
  startTime = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(startTime)) fail(`--start must be RFC 3339 or epoch ms, got ${s}`);
}
const interval = str('interval') === undefined ? undefined : Number(str('interval'));
if (interval !== undefined && !(interval > 0))
  fail(`--interval must be positive seconds, got ${str('interval')}`);
const qos = int(str('qos'), 'qos', 0, 2) as 0 | 1 | 2 | undefined;
const duration = str('duration') === undefined ? undefined : Number(str('duration'));
if (duration !== undefined && !(duration > 0)) fail(`--duration must be positive seconds`);

const devices = int(str('devices'), 'devices', 1, 1_000_000);
const opcuaPort = int(str('opcua-port'), 'opcua-port', 1, 65535);
const mbusPort = int(str('mbus-port'), 'mbus-port', 1, 65535);
const modbusPort = int(str('modbus-port'), 'modbus-port', 1, 65535);
const seed = int(str('seed'), 'seed', -(2 ** 31), 2 ** 32);
const controlPort = int(str('control-port'), 'control-port', 0, 65535);

const logger = pino({ level: str('log-level') ?? 'info' });
// Loaded only once the options are valid: the library pulls in node-opcua, seconds of start-up
// that a mistyped option should not wait for.
const { startSimulation, ScenarioError } = await import('./index.js');
let sim: Simulation;
try {
  sim = await startSimulation({
    scenario: str('scenario'),
    devices,
    brokerUrl: values['no-mqtt'] ? null : broker,
    brokerCaFile: brokerCa,
    opcuaPort,
    mbusPort,
    modbusPort,
    speed,
    seed,
    startTime,
    controlPort,
    controlHost: str('control-host'),
    intervalMs: interval === undefined ? undefined : interval * 1000,
    qos,
    protocol,
    sparkplugGroup,
    logger,
  });
} catch (err) {
  if (err instanceof ScenarioError) {
    console.error(err.message);
    process.exit(2);
  }
  console.error(`simulate: ${(err as Error).message}`);
  process.exit(1);
}

if (sim.mbus)
  for (const m of sim.mbus.meters)
    console.log(
      `M-Bus meter ${m.site}/${m.device} (${m.kind}): primary address ${m.primaryAddress}, ` +
        `secondary address ${m.secondaryAddress}, tcp port ${sim.mbus.port}`,
    );
const scenarioEnd = sim.scenario.duration === undefined ? undefined : sim.startTime + sim.scenario.duration;
const progress = setInterval(() => {
  const s = sim.stats();
  console.log(
    `${s.simTime}  ${s.ratePerSec.toFixed(0)} msg/s (scheduled ${s.scheduledPerSec.toFixed(0)})  ` +
      `${s.devices} devices  ${s.activeFaults} active faults  lag ${(s.lagMs / 1000).toFixed(1)} s` +
      (s.behind ? '  BEHIND' : '') +
      (s.mqtt ? `  mqtt sent ${s.mqtt.sent} outstanding ${s.mqtt.outstanding}` : ''),
  );
  if (scenarioEnd !== undefined && Date.parse(s.simTime) >= scenarioEnd) void shutdown('scenario complete');
}, 5000);

let stopping = false;
async function shutdown(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(progress);
  console.log(`stopping (${why})`);
  await sim.stop();
  const m = sim.stats().mqtt;
  if (m)
    console.log(
      `stopped: mqtt sent ${m.sent}, completed ${m.completed}, errors ${m.errors}, ` +
        `unacknowledged ${m.outstanding}, retransmitted ${m.retransmitted}, reconnects ${m.reconnects}`,
    );
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
if (duration !== undefined) setTimeout(() => void shutdown('duration reached'), duration * 1000);
