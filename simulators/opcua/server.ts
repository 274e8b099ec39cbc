import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DataType,
  OPCUACertificateManager,
  OPCUAServer,
  StatusCodes,
  Variant,
  type Namespace,
  type UAObject,
  type UAVariable,
} from 'node-opcua';
import type { Logger } from 'pino';
import type { DeviceInfo, SimMessage } from '../engine/engine.js';
import { OPCUA_METRICS } from './units.js';

export interface OpcuaServerOptions {
  port: number;
  /** Devices to expose; kinds other than chlorination and env-probe are ignored. */
  devices: readonly Pick<DeviceInfo, 'id' | 'site' | 'kind'>[];
  /** Called by the InjectFault method; throw to refuse (unknown fault). */
  onInjectFault?: (deviceId: string, fault: string, forMs?: number) => void;
  /** Called by the ClearFault method; fault undefined clears all. */
  onClearFault?: (deviceId: string, fault?: string) => void;
  /** Where node-opcua keeps its PKI (certificates); default: a temporary folder removed on stop. */
  pkiDir?: string;
  /**
   * Accept any client certificate (default true, convenient for demos). false: only certificates
   * in `<pkiDir>/server/trusted/certs`, as a real PLC does; others land in `<pkiDir>/server/rejected`.
   */
  acceptUnknownClientCertificates?: boolean;
  /**
   * Users allowed to sign in with a user name and password. When given, anonymous sign-in is
   * refused, as on a PLC with user management switched on.
   */
  users?: ReadonlyArray<{ username: string; password: string }>;
  /**
   * Accept any user certificate for X.509 sign-in (default true). false: only user certificates in
   * `<pkiDir>/user/trusted/certs`; others land in `<pkiDir>/user/rejected`.
   */
  acceptUnknownUserCertificates?: boolean;
  /** Monitored items one subscription may hold (a small PLC allows few); default: node-opcua's. */
  maxMonitoredItemsPerSubscription?: number;
  logger?: Logger;
}

/** What the server holds right now, counted on the server itself (for tests and diagnostics). */
export interface OpcuaServerStats {
  sessions: number;
  /** Subscriptions of every session, and those left behind by closed sessions (orphans). */
  subscriptions: number;
  /** Monitored items in the subscriptions of open sessions. */
  monitoredItems: number;
}

export interface OpcuaServerHandle {
  endpointUrl: string;
  /** Namespace URI of the simulator's nodes; node ids are `ns=<i>;s=<site>.<device>.<metric>`. */
  namespaceUri: string;
  /** Pushes one device report into the address space. */
  update(msg: SimMessage): void;
  updates(): number;
  stats(): OpcuaServerStats;
  /**
   * Ends every client session from the server side, as a PLC does when it drops its sessions;
   * with `keepSubscriptions` their subscriptions stay on the server for a transfer.
   */
  closeSessions(keepSubscriptions?: boolean): void;
  stop(): Promise<void>;
}

export const NAMESPACE_URI = 'urn:facility-gateway:simulators';

interface DeviceNodes {
  vars: Map<string, UAVariable>;
  faults: UAVariable;
}

/**
 * An OPC UA server laid out the way a PLC or building controller exposes plant:
 * Objects/<site>/<device>/<metric>, analogue values as AnalogItemType with EngineeringUnits and
 * EURange, a status code per value (Bad_SensorFailure under a sensor fault, Bad_NoCommunication
 * while a device is silent), and InjectFault / ClearFault methods on each device.
 */
export async function startOpcuaServer(opts: OpcuaServerOptions): Promise<OpcuaServerHandle> {
  const ownPki = !opts.pkiDir;
  const pkiDir = opts.pkiDir ?? mkdtempSync(join(tmpdir(), 'fgw-sim-opcua-'));
  const serverCertificateManager = new OPCUACertificateManager({
    rootFolder: join(pkiDir, 'server'),
    automaticallyAcceptUnknownCertificate: opts.acceptUnknownClientCertificates ?? true,
  });
  const userCertificateManager = new OPCUACertificateManager({
    rootFolder: join(pkiDir, 'user'),
    automaticallyAcceptUnknownCertificate: opts.acceptUnknownUserCertificates ?? true,
  });
  const users = opts.users;
  const server = new OPCUAServer({
    port: opts.port,
    hostname: '127.0.0.1',
    serverCertificateManager,
    userCertificateManager,
    allowAnonymous: users === undefined,
    userManager: users && {
      isValidUser: (username: string, password: string) =>
        users.some((u) => u.username === username && u.password === password),
    },
    serverCapabilities: opts.maxMonitoredItemsPerSubscription
      ? { maxMonitoredItemsPerSubscription: opts.maxMonitoredItemsPerSubscription }
      : undefined,
    buildInfo: { productName: 'facility-gateway simulators', manufacturerName: 'facility-gateway' },
    serverInfo: { applicationUri: 'urn:facility-gateway:simulators:server' },
    maxConnectionsPerEndpoint: 50,
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  if (!addressSpace) throw new Error('OPC UA address space missing after initialize');
  const ns: Namespace = addressSpace.registerNamespace(NAMESPACE_URI);
  const nodes = new Map<string, DeviceNodes>();
  const sites = new Map<string, UAObject>();
  let updates = 0;

  for (const d of opts.devices) {
    if (d.kind !== 'chlorination' && d.kind !== 'env-probe') continue;
    let site = sites.get(d.site);
    if (!site) {
      site = ns.addFolder(addressSpace.rootFolder.objects, { browseName: d.site, nodeId: `s=${d.site}` });
      sites.set(d.site, site);
    }
    const dev = ns.addFolder(site, { browseName: d.id, nodeId: `s=${d.site}.${d.id}` });
    ns.addVariable({
      propertyOf: dev,
      browseName: 'DeviceKind',
      nodeId: `s=${d.site}.${d.id}.DeviceKind`,
      dataType: 'String',
      value: { dataType: DataType.String, value: d.kind },
    });
    const vars = new Map<string, UAVariable>();
    for (const [metric, def] of Object.entries(OPCUA_METRICS[d.kind])) {
      const common = {
        componentOf: dev,
        browseName: metric,
        nodeId: `s=${d.site}.${d.id}.${metric}`,
        minimumSamplingInterval: 0,
      };
      const v =
        def.unit && def.range
          ? ns.addAnalogDataItem({
              ...common,
              dataType: 'Double',
              engineeringUnits: def.unit,
              engineeringUnitsRange: def.range,
            })
          : ns.addVariable({ ...common, dataType: 'Boolean' });
      // Nothing measured yet: a PLC reports "waiting for initial data" until the first scan.
      v.setValueFromSource(
        new Variant({ dataType: def.unit ? DataType.Double : DataType.Boolean, value: def.unit ? 0 : false }),
        StatusCodes.UncertainInitialValue,
      );
      vars.set(metric, v);
    }
    const faults = ns.addVariable({
      componentOf: dev,
      browseName: 'ActiveFaults',
      nodeId: `s=${d.site}.${d.id}.ActiveFaults`,
      dataType: 'String',
      value: { dataType: DataType.String, value: '' },
    });
    addFaultMethods(ns, dev, d, opts);
    nodes.set(d.id, { vars, faults });
  }

  await server.start();
  const endpointUrl = `opc.tcp://127.0.0.1:${opts.port}`;
  opts.logger?.info({ endpointUrl, devices: nodes.size }, 'OPC UA server listening');

  return {
    endpointUrl,
    namespaceUri: NAMESPACE_URI,
    update(msg) {
      const n = nodes.get(msg.device);
      if (!n) return;
      updates++;
      const at = new Date(msg.ts);
      for (const [metric, v] of n.vars) {
        const value = msg.values[metric];
        if (msg.silent) v.setValueFromSource(v.readValue().value, StatusCodes.BadNoCommunication, at);
        else if (value === undefined || msg.bad.includes(metric))
          v.setValueFromSource(v.readValue().value, StatusCodes.BadSensorFailure, at);
        else
          v.setValueFromSource(
            new Variant({ dataType: typeof value === 'number' ? DataType.Double : DataType.Boolean, value }),
            StatusCodes.Good,
            at,
          );
      }
      n.faults.setValueFromSource(
        new Variant({ dataType: DataType.String, value: msg.faults.join(',') }),
        StatusCodes.Good,
        at,
      );
    },
    updates: () => updates,
    stats() {
      const engine = server.engine;
      let monitoredItems = 0;
      for (const session of engine.getSessions())
        for (const sub of session.publishEngine.subscriptions) monitoredItems += sub.monitoredItemCount;
      return {
        sessions: engine.getSessions().length,
        subscriptions: engine.currentSubscriptionCount,
        monitoredItems,
      };
    },
    closeSessions(keepSubscriptions = false) {
      for (const session of server.engine.getSessions())
        server.engine.closeSession(session.authenticationToken, !keepSubscriptions, 'Terminated');
    },
    async stop() {
      await server.shutdown(0);
      await serverCertificateManager.dispose();
      await userCertificateManager.dispose();
      if (ownPki) rmSync(pkiDir, { recursive: true, force: true });
    },
  };
}

function addFaultMethods(
  ns: Namespace,
  dev: UAObject,
  d: Pick<DeviceInfo, 'id' | 'site'>,
  opts: OpcuaServerOptions,
): void {
  const inject = ns.addMethod(dev, {
    browseName: 'InjectFault',
    nodeId: `s=${d.site}.${d.id}.InjectFault`,
    inputArguments: [
      {
        name: 'fault',
        description: { text: 'fault name, e.g. dosing-pump-failure' },
        dataType: DataType.String,
      },
      { name: 'durationSec', description: { text: '0 = until cleared' }, dataType: DataType.UInt32 },
    ],
    outputArguments: [],
  });
  inject.bindMethod(async (args: Variant[], _context: unknown) => {
    const fault = String(args[0]?.value ?? '');
    const sec = Number(args[1]?.value ?? 0);
    try {
      opts.onInjectFault?.(d.id, fault, sec > 0 ? sec * 1000 : undefined);
      return { statusCode: StatusCodes.Good };
    } catch {
      return { statusCode: StatusCodes.BadInvalidArgument };
    }
  });
  const clear = ns.addMethod(dev, {
    browseName: 'ClearFault',
    nodeId: `s=${d.site}.${d.id}.ClearFault`,
    inputArguments: [
      { name: 'fault', description: { text: 'empty = all faults' }, dataType: DataType.String },
    ],
    outputArguments: [],
  });
  clear.bindMethod(async (args: Variant[], _context: unknown) => {
    const fault = String(args[0]?.value ?? '');
    opts.onClearFault?.(d.id, fault || undefined);
    return { statusCode: StatusCodes.Good };
  });
}
