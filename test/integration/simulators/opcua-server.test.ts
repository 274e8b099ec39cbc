import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AttributeIds,
  BrowseDirection,
  DataType,
  OPCUACertificateManager,
  OPCUAClient,
  StatusCodes,
  type ClientSession,
} from 'node-opcua';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulation, type Simulation } from '../../../simulators/index.js';
import { freePort, waitFor } from '../../fixtures/ports.js';

describe('OPC UA server read by a real node-opcua client', () => {
  let sim: Simulation;
  let client: OPCUAClient;
  let session: ClientSession;
  let ns: number;
  let pki: string;

  beforeAll(async () => {
    pki = mkdtempSync(join(tmpdir(), 'fgw-sim-opcua-client-'));
    const port = await freePort();
    sim = await startSimulation({
      brokerUrl: null,
      opcuaPort: port,
      speed: 60,
      seed: 1,
      logger: pino({ level: 'warn' }),
      scenario: {
        sites: [
          {
            id: 'plant',
            devices: [
              { id: 'tank-1', kind: 'chlorination', transport: 'opcua' },
              { id: 'room-1', kind: 'env-probe', transport: 'opcua' },
            ],
          },
        ],
      },
    });
    client = OPCUAClient.create({
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 2, initialDelay: 200 },
      clientCertificateManager: new OPCUACertificateManager({
        rootFolder: pki,
        automaticallyAcceptUnknownCertificate: true,
      }),
    });
    await client.connect(sim.opcuaEndpoint as string);
    session = await client.createSession();
    const nsArray = (await session.read({ nodeId: 'i=2255', attributeId: AttributeIds.Value })).value
      .value as string[];
    ns = nsArray.indexOf('urn:facility-gateway:simulators');
    expect(ns).toBeGreaterThan(0);
  });
  afterAll(async () => {
    await session?.close();
    await client?.disconnect();
    await sim?.stop();
    rmSync(pki, { recursive: true, force: true });
  });

  const id = (s: string): string => `ns=${ns};s=${s}`;

  it('browses Objects/<site>/<device>/<metric>', async () => {
    const objects = await session.browse('i=85');
    expect(objects.references?.map((r) => r.browseName.name)).toContain('plant');
    const site = await session.browse(id('plant'));
    expect(site.references?.map((r) => r.browseName.name).sort()).toEqual(['room-1', 'tank-1']);
    const tank = await session.browse({
      nodeId: id('plant.tank-1'),
      browseDirection: BrowseDirection.Forward,
      resultMask: 63,
    });
    const names = tank.references?.map((r) => r.browseName.name) ?? [];
    for (const m of [
      'free_chlorine_mgl',
      'ph',
      'turbidity_ntu',
      'orp_mv',
      'level_pct',
      'dosing_pump_on',
      'InjectFault',
      'ClearFault',
    ])
      expect(names).toContain(m);
  });

  it('reads values with engineering units, EURange and a good status', async () => {
    await waitFor(
      async () => {
        const dv = await session.read({
          nodeId: id('plant.tank-1.free_chlorine_mgl'),
          attributeId: AttributeIds.Value,
        });
        return dv.statusCode.equals(StatusCodes.Good);
      },
      20_000,
      'first value',
    );
    const dv = await session.read({
      nodeId: id('plant.tank-1.free_chlorine_mgl'),
      attributeId: AttributeIds.Value,
    });
    expect(dv.value.dataType).toBe(DataType.Double);
    expect(dv.value.value).toBeGreaterThan(0.3);
    expect(dv.value.value).toBeLessThan(2);
    const props = await session.browse(id('plant.tank-1.free_chlorine_mgl'));
    const prop = (name: string): string => {
      const r = props.references?.find((x) => x.browseName.name === name);
      if (!r) throw new Error(`no ${name}`);
      return r.nodeId.toString();
    };
    const eu = await session.read({ nodeId: prop('EngineeringUnits'), attributeId: AttributeIds.Value });
    expect(eu.value.value.displayName.text).toBe('mg/L');
    const range = await session.read({ nodeId: prop('EURange'), attributeId: AttributeIds.Value });
    expect(range.value.value).toMatchObject({ low: 0, high: 5 });
    const temp = await session.browse(id('plant.room-1.temperature_c'));
    const tEu = temp.references?.find((x) => x.browseName.name === 'EngineeringUnits');
    const tv = await session.read({
      nodeId: tEu?.nodeId.toString() as string,
      attributeId: AttributeIds.Value,
    });
    expect(tv.value.value.displayName.text).toBe('°C');
  });

  it('injects a fault through the method: bad status for a sensor fault, then clears it', async () => {
    const call = await session.call({
      objectId: id('plant.tank-1'),
      methodId: id('plant.tank-1.InjectFault'),
      inputArguments: [
        { dataType: DataType.String, value: 'sensor-fault' },
        { dataType: DataType.UInt32, value: 0 },
      ],
    });
    expect(call.statusCode.equals(StatusCodes.Good)).toBe(true);
    expect(sim.devices().find((d) => d.id === 'tank-1')?.faults).toContain('sensor-fault');
    await waitFor(
      async () => {
        const dv = await session.read({
          nodeId: id('plant.tank-1.free_chlorine_mgl'),
          attributeId: AttributeIds.Value,
        });
        return dv.statusCode.equals(StatusCodes.BadSensorFailure);
      },
      20_000,
      'Bad_SensorFailure',
    );
    const refused = await session.call({
      objectId: id('plant.tank-1'),
      methodId: id('plant.tank-1.InjectFault'),
      inputArguments: [
        { dataType: DataType.String, value: 'no-such-fault' },
        { dataType: DataType.UInt32, value: 0 },
      ],
    });
    expect(refused.statusCode.equals(StatusCodes.BadInvalidArgument)).toBe(true);
    await session.call({
      objectId: id('plant.tank-1'),
      methodId: id('plant.tank-1.ClearFault'),
      inputArguments: [{ dataType: DataType.String, value: '' }],
    });
    await waitFor(
      async () => {
        const dv = await session.read({
          nodeId: id('plant.tank-1.free_chlorine_mgl'),
          attributeId: AttributeIds.Value,
        });
        return dv.statusCode.equals(StatusCodes.Good);
      },
      20_000,
      'Good again',
    );
  });
});
