import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { startControlServer, type ControlServer } from './control/http.js';
import { Engine, type DeviceInfo, type SimMessage } from './engine/engine.js';
import { Runner } from './engine/runner.js';
import { startOpcuaServer, type OpcuaServerHandle } from './opcua/server.js';
import { startMbusServer, type MbusMeterInfo, type MbusServerHandle } from './mbus/server.js';
import { startModbusServer, type ModbusServerHandle, type ModbusUnit } from './modbus/server.js';
import { fleetScenario } from './scenario/fleet.js';
import { loadScenarioFile, parseScenario } from './scenario/load.js';
import type { Scenario, ScenarioInput } from './scenario/schema.js';
import { MqttPublisher, type PublisherStats } from './transport/mqtt-publisher.js';
import { SparkplugPublisher } from './transport/sparkplug-publisher.js';

export type { DeviceInfo, SimMessage } from './engine/engine.js';
export { Engine, payloadOf } from './engine/engine.js';
export type { Scenario, ScenarioInput } from './scenario/schema.js';
export { loadScenarioFile, parseScenario, parseScenarioYaml, ScenarioError } from './scenario/load.js';
export { fleetScenario } from './scenario/fleet.js';
export { startOpcuaServer } from './opcua/server.js';
export { startMbusServer, type MbusMeterInfo, type MbusServerHandle } from './mbus/server.js';
export { startModbusServer, SIM_PROFILES, type ModbusUnit } from './modbus/server.js';
export { MODELS } from './models/index.js';

/** The built-in demo: all four kinds at one site. */
export const DEMO_SCENARIO = fileURLToPath(new URL('./scenarios/demo.yaml', import.meta.url));

export interface SimulationOptions {
  /** MQTT broker (mqtt:// or mqtts://, credentials may be in the URL); default mqtt://127.0.0.1:1883; null: no MQTT (OPC UA only). */
  brokerUrl?: string | null;
  /** CA certificate (PEM file) that signed an mqtts:// broker's certificate, when not a public CA. */
  brokerCaFile?: string;
  /** Start the OPC UA server on this port (0 is not allowed: clients need the number). */
  opcuaPort?: number;
  /** A YAML file, or a scenario object; default: the demo scenario (or a fleet with `devices`). */
  scenario?: string | Scenario | ScenarioInput;
  /** Simulated seconds per real second; default 1. */
  speed?: number;
  /** Default: the scenario's seed, else 1. */
  seed?: number;
  /** Instead of a scenario: a generated fleet of this many devices. */
  devices?: number;
  /** Epoch ms of simulated time zero; default: the scenario's start, else now (speed 1) or 24 h ago. */
  startTime?: number;
  /** Also serve the chlorination and env-probe devices over Modbus TCP on this port (unit ids 1.. in scenario order). */
  modbusPort?: number;
  /** Start the HTTP control on this port (0: any free port; see `controlUrl`). */
  controlPort?: number;
  controlHost?: string;
  logger?: Logger;
  /** Overrides every device's reporting interval (benchmarks, tests). */
  intervalMs?: number;
  /** Overrides every device's QoS. */
  qos?: 0 | 1 | 2;
  /** Let simulated time run ahead of the wall clock (default: only if startTime was given). */
  allowFuture?: boolean;
  /** Real ms between ticks; default 100. */
  tickMs?: number;
  /** Cap on MQTT messages handed over and not yet acknowledged; default 20,000, at most 65,535 (packet ids). */
  maxOutstanding?: number;
  /**
   * Also answer as wired M-Bus meters (every gas and water meter) behind a transparent
   * serial-to-TCP converter on this port (0: any free port, see `mbusPort`); docs/mbus.md.
   */
  mbusPort?: number;
  /** Where the OPC UA server keeps its PKI; default a temporary folder. */
  opcuaPkiDir?: string;
  /** What goes over MQTT: the JSON convention (default) or Sparkplug B (one edge node per site). */
  protocol?: 'json' | 'sparkplug';
  /** Sparkplug group id; default `facility`. */
  sparkplugGroup?: string;
}

export interface SimulationStats {
  devices: number;
  speed: number;
  seed: number;
  simTime: string;
  uptimeSec: number;
  generated: number;
  ratePerSec: number;
  scheduledPerSec: number;
  lagMs: number;
  behind: boolean;
  activeFaults: number;
  mqtt: PublisherStats | null;
  opcua: { endpointUrl: string; updates: number } | null;
  mbus: { port: number; meters: number; answers: number } | null;
  modbus: { port: number; units: number; requests: number } | null;
}

export interface FaultInfo {
  device: string;
  fault: string;
  from: string;
  to: string | null;
  active: boolean;
  manual: boolean;
}

export interface Simulation {
  devices(): DeviceInfo[];
  faults(): FaultInfo[];
  startFault(deviceId: string, fault: string, forMs?: number): void;
  /** Stops one fault (or all of a device's); returns how many it stopped. */
  stopFault(deviceId: string, fault?: string): number;
  stats(): SimulationStats;
  readonly scenario: Scenario;
  readonly startTime: number;
  readonly opcuaEndpoint: string | null;
  /**
   * The M-Bus TCP port and the meters on it (primary and secondary addresses), when served, with
   * the bus disturbances tests and demos inject: damaged answers, a meter that stops answering.
   */
  readonly mbus: (Pick<MbusServerHandle, 'port' | 'corrupt' | 'mute'> & { meters: MbusMeterInfo[] }) | null;
  readonly controlUrl: string | null;
  /** The Modbus TCP units (device → unit id and profile) when `modbusPort` was given; else empty. */
  readonly modbusUnits: readonly ModbusUnit[];
  /** The Sparkplug B edge nodes (protocol `sparkplug`), with their fault methods; else null. */
  readonly sparkplug: SparkplugPublisher | null;
  stop(): Promise<void>;
}

function resolveScenario(opts: SimulationOptions): Scenario {
  if (opts.devices !== undefined && opts.scenario !== undefined)
    throw new Error('give either a scenario or a device count, not both');
  if (opts.devices !== undefined) {
    if (!Number.isInteger(opts.devices) || opts.devices < 1)
      throw new Error('devices must be a positive integer');
    return parseScenario(fleetScenario(opts.devices), `fleet(${opts.devices})`);
  }
  const sc = opts.scenario ?? DEMO_SCENARIO;
  return typeof sc === 'string' ? loadScenarioFile(sc) : parseScenario(sc);
}

/**
 * Runs the simulators in this process: the engine on one timer, MQTT publishing, optionally the
 * OPC UA server and the HTTP control. Resolves once every transport is up.
 */
export async function startSimulation(opts: SimulationOptions = {}): Promise<Simulation> {
  const log = opts.logger ?? pino({ level: process.env.SIM_LOG_LEVEL ?? 'info' });
  const scenario = resolveScenario(opts);
  const speed = opts.speed ?? 1;
  if (!(speed > 0)) throw new Error('speed must be positive');
  const seed = opts.seed ?? scenario.seed ?? 1;
  const explicitStart = opts.startTime ?? (scenario.start ? Date.parse(scenario.start) : undefined);
  // Accelerated runs start a day back so their timestamps are not in the future for a gateway.
  const startTime =
    explicitStart ?? (speed > 1 ? Math.floor(Date.now() / 3_600_000) * 3_600_000 - 86_400_000 : Date.now());
  if (opts.qos !== undefined) {
    const all = {
      'water-meter': opts.qos,
      'gas-meter': opts.qos,
      chlorination: opts.qos,
      'env-probe': opts.qos,
    };
    scenario.defaults.qos = all;
    for (const s of scenario.sites) for (const d of s.devices) delete d.qos;
  }
  const engine = new Engine(scenario, { seed, startTime, intervalOverrideMs: opts.intervalMs });

  let publisher: MqttPublisher | SparkplugPublisher | null = null;
  let opcua: OpcuaServerHandle | null = null;
  let mbus: MbusServerHandle | null = null;
  let modbus: ModbusServerHandle | null = null;
  let control: ControlServer | null = null;
  let runner: Runner | null = null;
  const stopAll = async (): Promise<void> => {
    runner?.stop();
    await control?.stop();
    if (publisher) {
      await publisher.drain(3000);
      await publisher.stop();
    }
    await opcua?.stop();
    await mbus?.stop();
    await modbus?.stop();
  };

  try {
    if (opts.opcuaPort !== undefined) {
      opcua = await startOpcuaServer({
        port: opts.opcuaPort,
        devices: engine.devices().filter((d) => d.transport !== 'mqtt'),
        onInjectFault: (id, fault, forMs) => engine.startFault(id, fault, forMs),
        onClearFault: (id, fault) => void engine.stopFault(id, fault),
        pkiDir: opts.opcuaPkiDir,
        logger: log.child({ module: 'sim-opcua' }),
      });
    } else if (engine.devices().some((d) => d.transport === 'opcua')) {
      log.info('no OPC UA port given: devices meant for OPC UA publish over MQTT instead');
    }
    if (opts.mbusPort !== undefined) {
      mbus = await startMbusServer({
        port: opts.mbusPort,
        devices: engine.devices(),
        logger: log.child({ module: 'sim-mbus' }),
      });
    }
    if (opts.modbusPort !== undefined) {
      modbus = await startModbusServer({
        port: opts.modbusPort,
        devices: engine.devices(),
        logger: log.child({ module: 'sim-modbus' }),
      });
    }
    const brokerUrl = opts.brokerUrl === undefined ? 'mqtt://127.0.0.1:1883' : opts.brokerUrl;
    if (brokerUrl !== null) {
      publisher =
        opts.protocol === 'sparkplug'
          ? new SparkplugPublisher({
              url: brokerUrl,
              group: opts.sparkplugGroup,
              logger: log.child({ module: 'sim-sparkplug' }),
              maxOutstanding: opts.maxOutstanding,
              caFile: opts.brokerCaFile,
            })
          : new MqttPublisher({
              url: brokerUrl,
              logger: log.child({ module: 'sim-mqtt' }),
              maxOutstanding: opts.maxOutstanding,
              caFile: opts.brokerCaFile,
            });
      await publisher.start();
    }
    const viaOpcua = (m: SimMessage): boolean => opcua !== null && m.transport !== 'mqtt';
    const viaMqtt = (m: SimMessage): boolean => !m.silent && (m.transport !== 'opcua' || opcua === null);
    runner = new Runner(engine, {
      speed,
      startTime,
      tickMs: opts.tickMs ?? 100,
      clampToWallClock: !(opts.allowFuture ?? explicitStart !== undefined),
      maxPerTick: 100_000,
      capacity: () => publisher?.capacity() ?? Infinity,
      dispatch: (msgs) => {
        if (publisher) publisher.publish(msgs.filter(viaMqtt));
        if (opcua) for (const m of msgs) if (viaOpcua(m)) opcua.update(m);
        if (mbus) for (const m of msgs) mbus.update(m);
        // Modbus devices are polled: their registers always hold the latest report.
        if (modbus) for (const m of msgs) modbus.update(m);
      },
      onError: (err) => log.error({ err: (err as Error).message }, 'simulation tick failed'),
    });
    runner.start();
    const sim: Simulation = {
      scenario,
      startTime,
      opcuaEndpoint: opcua?.endpointUrl ?? null,
      mbus: mbus ? { port: mbus.port, meters: mbus.meters(), corrupt: mbus.corrupt, mute: mbus.mute } : null,
      controlUrl: null,
      modbusUnits: modbus?.units ?? [],
      sparkplug: publisher instanceof SparkplugPublisher ? publisher : null,
      devices: () => engine.devices(),
      faults: () =>
        engine.faultList().map((f) => ({
          ...f,
          from: new Date(f.from).toISOString(),
          to: f.to === null ? null : new Date(f.to).toISOString(),
        })),
      startFault: (id, fault, forMs) => {
        engine.startFault(id, fault, forMs);
        log.info({ device: id, fault, forMs }, 'fault started');
      },
      stopFault: (id, fault) => engine.stopFault(id, fault),
      stats: () => {
        const r = (runner as Runner).stats();
        return {
          devices: engine.size,
          speed,
          seed,
          simTime: new Date(r.simTime).toISOString(),
          uptimeSec: r.uptimeSec,
          generated: r.generated,
          ratePerSec: r.ratePerSec,
          scheduledPerSec: r.scheduledPerSec,
          lagMs: r.lagMs,
          behind: r.behind,
          activeFaults: engine.activeFaultCount(),
          mqtt: publisher?.stats() ?? null,
          opcua: opcua ? { endpointUrl: opcua.endpointUrl, updates: opcua.updates() } : null,
          mbus: mbus ? { port: mbus.port, meters: mbus.meters().length, answers: mbus.answers() } : null,
          modbus: modbus
            ? { port: modbus.port, units: modbus.units.length, requests: modbus.requests() }
            : null,
        };
      },
      stop: stopAll,
    };
    if (opts.controlPort !== undefined) {
      control = await startControlServer(sim, {
        port: opts.controlPort,
        host: opts.controlHost,
        logger: log.child({ module: 'sim-control' }),
      });
      (sim as { controlUrl: string | null }).controlUrl = control.url;
    }
    log.info(
      {
        devices: engine.size,
        scenario: scenario.name,
        speed,
        seed,
        startTime: new Date(startTime).toISOString(),
      },
      'simulation started',
    );
    return sim;
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}
