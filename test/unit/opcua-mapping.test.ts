import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ReadingBatcher, qualityOf, timestampOf, valueOf } from '../../adapters/opcua/readings.js';
import { configSnippet, guessKind, guessMetric } from '../../adapters/opcua/snippet.js';
import { opcuaEndpointSchema, opcuaNodeSchema } from '../../adapters/opcua/schema.js';
import { configSchema } from '../../gateway/src/config/schema.js';
import type { Reading } from '../../gateway/src/core/types.js';

const node = opcuaNodeSchema.parse({
  nodeId: 'ns=2;s=x',
  site: 's',
  device: 'd',
  kind: 'env-probe',
  metric: 'temperature_c',
});

describe('OPC UA values to readings', () => {
  it('maps status code severity to quality', () => {
    expect(qualityOf(0)).toBe('good');
    expect(qualityOf(0x40920000)).toBe('uncertain'); // UncertainInitialValue
    expect(qualityOf(0x808c0000)).toBe('bad'); // BadSensorFailure
    expect(qualityOf(0x80310000)).toBe('bad'); // BadNoCommunication
  });

  it('prefers the source timestamp, then the server one, then the time of receipt', () => {
    const src = new Date(1000);
    const srv = new Date(2000);
    expect(timestampOf({ value: 1, statusValue: 0, sourceTimestamp: src, serverTimestamp: srv }, 3000)).toBe(
      1000,
    );
    expect(timestampOf({ value: 1, statusValue: 0, sourceTimestamp: null, serverTimestamp: srv }, 3000)).toBe(
      2000,
    );
    expect(timestampOf({ value: 1, statusValue: 0 }, 3000)).toBe(3000);
  });

  it('converts linearly and keeps booleans; other types are no metric value', () => {
    const f = { scale: 5 / 9, offset: -160 / 9 }; // °F → °C
    expect(valueOf({ value: 212, statusValue: 0 }, f)).toBeCloseTo(100, 9);
    expect(valueOf({ value: true, statusValue: 0 }, f)).toBe(true);
    expect(valueOf({ value: 'x', statusValue: 0 }, f)).toBeUndefined();
    expect(valueOf({ value: null, statusValue: 0 }, f)).toBeUndefined();
    expect(valueOf({ value: 0.1, statusValue: 0 }, { scale: 1, offset: 0 })).toBe(0.1);
  });

  it('groups one publish batch into one reading per device and timestamp, quality per value', async () => {
    const out: Reading[][] = [];
    const b = new ReadingBatcher((rs) => out.push(rs));
    const ts = new Date(5000);
    b.add(node, { value: 21, statusValue: 0, sourceTimestamp: ts }, 0);
    b.add({ ...node, metric: 'humidity_pct' }, { value: 40, statusValue: 0, sourceTimestamp: ts }, 0);
    b.add({ ...node, metric: 'smoke' }, { value: false, statusValue: 0x808c0000, sourceTimestamp: ts }, 0);
    b.add({ ...node, device: 'e' }, { value: 19, statusValue: 0, sourceTimestamp: ts }, 0);
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(1);
    expect(out[0]).toEqual([
      {
        site: 's',
        kind: 'env-probe',
        device: 'd',
        ts: 5000,
        fields: { temperature_c: 21, humidity_pct: 40, smoke: false },
        quality: 'bad',
        qualities: { smoke: 'bad' },
      },
      { site: 's', kind: 'env-probe', device: 'e', ts: 5000, fields: { temperature_c: 19 } },
    ]);
  });

  it('takes the newest status of a node notified twice in one response', async () => {
    const out: Reading[][] = [];
    const b = new ReadingBatcher((rs) => out.push(rs));
    const ts = new Date(5000);
    b.add(node, { value: 0, statusValue: 0x808c0000, sourceTimestamp: ts }, 0);
    b.add(node, { value: 21, statusValue: 0, sourceTimestamp: ts }, 0);
    b.add({ ...node, metric: 'humidity_pct' }, { value: 0, statusValue: 0x40920000, sourceTimestamp: ts }, 0);
    await new Promise((r) => setImmediate(r));
    expect(out[0]![0]!.fields).toEqual({ temperature_c: 21, humidity_pct: 0 });
    expect(out[0]![0]!.qualities).toEqual({ humidity_pct: 'uncertain' });
    expect(out[0]![0]!.quality).toBe('uncertain');
  });
});

describe('OPC UA config', () => {
  it('reports problems with their key paths', () => {
    const r = configSchema.safeParse({
      opcua: [
        {
          name: 'plc',
          endpointUrl: 'http://x',
          securityMode: 'SignAndEncrypt',
          nodes: [{ site: 's', device: 'd', kind: 'k', metric: 'm' }],
        },
      ],
    });
    expect(r.success).toBe(false);
    const paths = r.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining(['opcua.0.endpointUrl', 'opcua.0.nodes.0', 'opcua.0.securityPolicy']),
    );
  });

  it('fills defaults', () => {
    const e = opcuaEndpointSchema.parse({
      name: 'plc',
      endpointUrl: 'opc.tcp://h:4840',
      nodes: [{ browsePath: '/Objects/2:a', site: 's', device: 'd', kind: 'k', metric: 'm' }],
    });
    expect(e).toMatchObject({
      securityMode: 'None',
      auth: { type: 'anonymous' },
      subscription: { batchSize: 500, queueSize: 10, discardOldest: true },
    });
    expect(configSchema.parse({}).opcua).toEqual([]);
  });
});

describe('discovery snippet', () => {
  it('guesses metrics and kinds from browse names', () => {
    expect(guessMetric('FreeChlorine_mgl')).toBe('free_chlorine_mgl');
    expect(guessMetric('Humidity', 'env-probe')).toBe('humidity_pct');
    expect(guessMetric('Vibration')).toBeUndefined();
    expect(guessKind(['Temperature', 'Humidity', 'Smoke'])).toBe('env-probe');
  });

  it('prints a snippet the config schema accepts, unknown variables commented', () => {
    const yaml = configSnippet('opc.tcp://plc:4840', [
      { nodeId: 'ns=2;s=a.t1.ph', path: ['a', 't1', 'ph'] },
      { nodeId: 'ns=2;s=a.t1.FreeChlorine', path: ['a', 't1', 'FreeChlorine'] },
      { nodeId: 'ns=2;s=a.t1.Vibration', path: ['a', 't1', 'Vibration'] },
    ]);
    expect(yaml).toContain('# - nodeId: "ns=2;s=a.t1.Vibration"');
    const cfg = configSchema.parse(parse(yaml));
    expect(cfg.opcua[0]!.nodes.map((n) => [n.device, n.kind, n.metric])).toEqual([
      ['t1', 'chlorination', 'ph'],
      ['t1', 'chlorination', 'free_chlorine_mgl'],
    ]);
  });

  it('writes the security and sign-in discovery used, never the password, and the units the server gave', () => {
    const yaml = configSnippet(
      'opc.tcp://plc:4840',
      [
        { nodeId: 'nsu=urn:plant;s=a.t1.FreeChlorine', path: ['a', 't1', 'FreeChlorine'], unit: 'mg/L' },
        { nodeId: 'nsu=urn:plant;s=a.t1.Temperature', path: ['a', 't1', 'Temperature'], unit: '°F' },
      ],
      {
        name: 'plant-plc',
        securityMode: 'SignAndEncrypt',
        securityPolicy: 'Basic256Sha256',
        auth: { type: 'username', username: 'integrator', password: 'secret-pw' },
      },
    );
    expect(yaml).not.toContain('secret-pw');
    expect(yaml).toContain('# a/t1/FreeChlorine [mg/L]\n');
    expect(yaml).toContain('# a/t1/Temperature [°F]; the metric is in °C: set scale and offset');
    const ep = configSchema.parse(parse(yaml)).opcua[0]!;
    expect(ep).toMatchObject({
      name: 'plant-plc',
      securityMode: 'SignAndEncrypt',
      securityPolicy: 'Basic256Sha256',
      auth: { type: 'username', username: 'integrator', password: 'CHANGE-ME' },
    });
    expect(ep.nodes.map((n) => n.nodeId)).toEqual([
      'nsu=urn:plant;s=a.t1.FreeChlorine',
      'nsu=urn:plant;s=a.t1.Temperature',
    ]);
    const cert = configSnippet('opc.tcp://plc:4840', [], {
      auth: { type: 'certificate', certificateFile: '/etc/gw/user.pem', privateKeyFile: '/etc/gw/user.key' },
    });
    expect(cert).toContain('nodes: []');
    expect(parse(cert).opcua[0].auth).toEqual({
      type: 'certificate',
      certificateFile: '/etc/gw/user.pem',
      privateKeyFile: '/etc/gw/user.key',
    });
  });
});

describe('OPC UA node ids in the config', () => {
  const base = { site: 's', device: 'd', kind: 'env-probe', metric: 'temperature_c' };
  it('accepts index and namespace-URI forms and refuses anything else with its key path', () => {
    for (const nodeId of [
      'i=2258',
      'ns=2;s=plant.tank-1.ph',
      'nsu=urn:facility-gateway:simulators;s=a;b',
      'ns=3;i=7',
    ])
      expect(opcuaNodeSchema.safeParse({ ...base, nodeId }).success, nodeId).toBe(true);
    for (const nodeId of ['tank-1.ph', 'ns=x;s=a', 'nsu=;s=a', 'ns=2;q=1']) {
      const r = opcuaNodeSchema.safeParse({ ...base, nodeId });
      expect(r.success, nodeId).toBe(false);
      expect(r.error!.issues[0]!.path).toEqual(['nodeId']);
    }
  });
});
