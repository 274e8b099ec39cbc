import { describe, expect, it } from 'vitest';
import {
  SparkplugTracker,
  parseTopic,
  qualityOfCode,
  type SpbMetric,
  type SpbPayload,
  type SpbTopic,
} from '../../adapters/mqtt/sparkplug/tracker.js';
import { decodePayload, encodePayload, rebirthPayload } from '../../adapters/mqtt/sparkplug/codec.js';
import { sparkplugSchema } from '../../adapters/mqtt/sparkplug/schema.js';
import { HostState } from '../../adapters/mqtt/sparkplug/host-state.js';
import { configSchema } from '../../gateway/src/config/schema.js';
import { DeviceRegistry } from '../../gateway/src/registry/registry.js';

const cfg = sparkplugSchema.parse({
  enabled: true,
  groups: ['plant'],
  rebirthMinIntervalMs: 1000,
  devices: [
    {
      group: 'plant',
      node: 'edge-1',
      device: 'probe-F',
      site: 'hq',
      id: 'room-1',
      kind: 'env-probe',
      metrics: { 'Temp F': { metric: 'temperature_c', scale: 5 / 9, offset: -160 / 9 } },
    },
  ],
});

const topic = (type: SpbTopic['type'], device?: string): SpbTopic =>
  device === undefined
    ? { group: 'plant', type, node: 'edge-1' }
    : { group: 'plant', type, node: 'edge-1', device };
const m = (x: Partial<SpbMetric>): SpbMetric => ({ value: null, isNull: false, ...x });
const payload = (seq: number | undefined, metrics: SpbMetric[], timestamp = 1000): SpbPayload =>
  seq === undefined ? { timestamp, metrics } : { timestamp, seq, metrics };

function born(t = new SparkplugTracker(cfg)): SparkplugTracker {
  t.handle(
    topic('NBIRTH'),
    payload(0, [m({ name: 'bdSeq', value: 4 }), m({ name: 'Node Control/Rebirth', value: false })]),
    0,
  );
  const out = t.handle(
    topic('DBIRTH', 'tank-1'),
    payload(1, [
      m({ name: 'Properties/Kind', value: 'chlorination' }),
      m({ name: 'free_chlorine_mgl', alias: 1, value: 0.5 }),
      m({ name: 'Sensors/ph', alias: 2, value: 7.2 }),
    ]),
    0,
  );
  expect(out.reject).toBeUndefined();
  return t;
}

describe('Sparkplug B topics', () => {
  it('parses node and device topics and refuses the rest', () => {
    expect(parseTopic('spBv1.0/plant/NBIRTH/edge-1')).toEqual({
      group: 'plant',
      type: 'NBIRTH',
      node: 'edge-1',
    });
    expect(parseTopic('spBv1.0/plant/DDATA/edge-1/tank-1')).toEqual({
      group: 'plant',
      type: 'DDATA',
      node: 'edge-1',
      device: 'tank-1',
    });
    expect(parseTopic('spBv1.0/plant/DDATA/edge-1')).toBeNull();
    expect(parseTopic('spBv1.0/plant/NDATA/edge-1/x')).toBeNull();
    expect(parseTopic('spBv1.0/plant/XDATA/edge-1')).toBeNull();
    expect(parseTopic('spAv1.0/plant/NDATA/edge-1')).toBeNull();
  });
});

describe('Sparkplug B tracker', () => {
  it('turns birth values and data by alias into readings of the device, kind from the birth', () => {
    const t = new SparkplugTracker(cfg);
    t.handle(topic('NBIRTH'), payload(0, [m({ name: 'bdSeq', value: 4 })]), 0);
    const birth = t.handle(
      topic('DBIRTH', 'tank-1'),
      payload(1, [
        m({ name: 'Properties/Kind', value: 'chlorination' }),
        m({ name: 'free_chlorine_mgl', alias: 1, value: 0.5 }),
        m({ name: 'Sensors/ph', alias: 2, value: 7.2 }),
      ]),
      0,
    );
    expect(birth.online).toEqual([{ site: 'edge-1', device: 'tank-1', kind: 'chlorination' }]);
    expect(birth.readings).toEqual([
      {
        site: 'edge-1',
        device: 'tank-1',
        kind: 'chlorination',
        ts: 1000,
        fields: { free_chlorine_mgl: 0.5, ph: 7.2 },
      },
    ]);
    expect(birth.ignored).toBe(1); // Properties/Kind
    const data = t.handle(
      topic('DDATA', 'tank-1'),
      payload(2, [
        m({ alias: 1, value: 0.42, timestamp: 2000 }),
        m({ alias: 2, value: 7.1, timestamp: 2000 }),
      ]),
      0,
    );
    expect(data.reject).toBeUndefined();
    expect(data.readings).toEqual([
      {
        site: 'edge-1',
        device: 'tank-1',
        kind: 'chlorination',
        ts: 2000,
        fields: { free_chlorine_mgl: 0.42, ph: 7.1 },
      },
    ]);
  });

  it('applies the configured mapping: site, id, kind, metric name and unit conversion', () => {
    const t = born();
    const out = t.handle(
      topic('DBIRTH', 'probe-F'),
      payload(2, [m({ name: 'Temp F', alias: 9, value: 212 })]),
      0,
    );
    expect(out.readings).toEqual([
      { site: 'hq', device: 'room-1', kind: 'env-probe', ts: 1000, fields: { temperature_c: 100 } },
    ]);
  });

  it('never stores a null value, and keeps a bad Quality property apart from good values', () => {
    const t = born();
    const out = t.handle(
      topic('DDATA', 'tank-1'),
      payload(2, [m({ alias: 1, value: null, isNull: true }), m({ alias: 2, value: 9.9, quality: 'bad' })]),
      0,
    );
    expect(out.nulls).toBe(1);
    expect(out.readings).toEqual([
      {
        site: 'edge-1',
        device: 'tank-1',
        kind: 'chlorination',
        ts: 1000,
        fields: { ph: 9.9 },
        quality: 'bad',
      },
    ]);
    expect(qualityOfCode(192)).toBe('good');
    expect(qualityOfCode(64)).toBe('uncertain');
    expect(qualityOfCode(0)).toBe('bad');
  });

  it('asks for a rebirth on an unknown alias, drops data until the new birth, and rate-limits the request', () => {
    const t = born();
    const bad = t.handle(topic('DDATA', 'tank-1'), payload(2, [m({ alias: 77, value: 1 })]), 10_000);
    expect(bad.reject?.reason).toBe('alias_unknown');
    expect(bad.rebirth).toEqual({ group: 'plant', node: 'edge-1' });
    expect(bad.readings).toEqual([]);
    const next = t.handle(topic('DDATA', 'tank-1'), payload(3, [m({ alias: 1, value: 1 })]), 10_100);
    expect(next.reject?.reason).toBe('awaiting_rebirth');
    expect(next.rebirth).toBeUndefined(); // within rebirthMinIntervalMs
    const later = t.handle(topic('DDATA', 'tank-1'), payload(4, [m({ alias: 1, value: 1 })]), 11_100);
    expect(later.rebirth).toEqual({ group: 'plant', node: 'edge-1' });
    born(t);
    const ok = t.handle(topic('DDATA', 'tank-1'), payload(2, [m({ alias: 1, value: 0.3 })]), 12_000);
    expect(ok.reject).toBeUndefined();
    expect(ok.readings[0]!.fields).toEqual({ free_chlorine_mgl: 0.3 });
  });

  it('asks for a rebirth on a sequence gap and accepts the wrap from 255 to 0', () => {
    const t = born();
    let seq = 1;
    for (let i = 0; i < 300; i++) {
      seq = (seq + 1) % 256;
      const out = t.handle(topic('DDATA', 'tank-1'), payload(seq, [m({ alias: 1, value: i })]), 0);
      expect(out.reject).toBeUndefined();
    }
    const gap = t.handle(topic('DDATA', 'tank-1'), payload((seq + 2) % 256, [m({ alias: 1, value: 1 })]), 0);
    expect(gap.reject?.reason).toBe('seq_gap');
    expect(gap.rebirth).toEqual({ group: 'plant', node: 'edge-1' });
  });

  it('asks an unknown node for a rebirth, and an unknown device', () => {
    const t = new SparkplugTracker(cfg);
    const out = t.handle(topic('DDATA', 'tank-1'), payload(5, [m({ alias: 1, value: 1 })]), 0);
    expect(out.reject?.reason).toBe('node_unknown');
    expect(out.rebirth).toEqual({ group: 'plant', node: 'edge-1' });
    const t2 = born();
    const dev = t2.handle(topic('DDATA', 'pump-9'), payload(2, [m({ alias: 1, value: 1 })]), 0);
    expect(dev.reject?.reason).toBe('device_unknown');
    expect(dev.rebirth).toBeDefined();
  });

  it('marks a device offline on DDEATH and every device on NDEATH with the birth bdSeq', () => {
    const t = born();
    t.handle(topic('DBIRTH', 'probe-F'), payload(2, [m({ name: 'Temp F', alias: 9, value: 70 })]), 0);
    const dd = t.handle(topic('DDEATH', 'tank-1'), payload(3, []), 0);
    expect(dd.offline).toEqual([{ site: 'edge-1', device: 'tank-1', kind: 'chlorination' }]);
    const stale = t.handle(topic('NDEATH'), payload(undefined, [m({ name: 'bdSeq', value: 3 })]), 0);
    expect(stale.reject?.reason).toBe('death_stale');
    expect(t.view()[0]!.online).toBe(true);
    const nd = t.handle(topic('NDEATH'), payload(undefined, [m({ name: 'bdSeq', value: 4 })]), 0);
    expect(nd.offline).toEqual([{ site: 'hq', device: 'room-1', kind: 'env-probe' }]);
    expect(t.view()[0]!.online).toBe(false);
    const after = t.handle(topic('DDATA', 'probe-F'), payload(4, [m({ alias: 9, value: 70 })]), 0);
    expect(after.reject?.reason).toBe('node_unknown');
  });

  it('stores nothing a device sends after its DDEATH, and asks for a rebirth, until its next DBIRTH', () => {
    const t = born();
    t.handle(topic('DDEATH', 'tank-1'), payload(2, []), 0);
    // A late or misbehaving edge node: data by alias for the dead device, next sequence number.
    const late = t.handle(topic('DDATA', 'tank-1'), payload(3, [m({ alias: 1, value: 0.01 })]), 0);
    expect(late.readings).toEqual([]);
    expect(late.reject?.reason).toBe('device_unknown');
    expect(late.rebirth).toEqual({ group: 'plant', node: 'edge-1' });
    expect(late.online).toEqual([]);
    expect(t.view()[0]!.devices).toEqual([{ device: 'tank-1', online: false, mapped: true }]);
    // The rebirth: NBIRTH, then the device's DBIRTH brings it back and its data counts again.
    born(t);
    const data = t.handle(topic('DDATA', 'tank-1'), payload(2, [m({ alias: 1, value: 0.4 })]), 0);
    expect(data.readings).toEqual([
      {
        site: 'edge-1',
        kind: 'chlorination',
        device: 'tank-1',
        ts: 1000,
        fields: { free_chlorine_mgl: 0.4 },
      },
    ]);
  });

  it('refuses a device without a kind, without asking for a rebirth (it would not help)', () => {
    const t = born();
    const out = t.handle(topic('DBIRTH', 'mystery'), payload(2, [m({ name: 'x', alias: 1, value: 1 })]), 0);
    expect(out.reject?.reason).toBe('unmapped');
    expect(out.rebirth).toBeUndefined();
    const data = t.handle(topic('DDATA', 'mystery'), payload(3, [m({ alias: 1, value: 1 })]), 0);
    expect(data.reject?.reason).toBe('unmapped');
    expect(data.rebirth).toBeUndefined();
  });
});

describe('Sparkplug B codec and config', () => {
  it('round-trips a payload with 64-bit fields and null values through sparkplug-payload', () => {
    const buf = encodePayload({
      timestamp: 1767225600000,
      seq: 7,
      metrics: [
        { name: 'volume_m3', alias: 3, type: 'Double', value: 123.5, timestamp: 1767225600001 },
        { alias: 4, type: 'Int64', value: 42 },
        { name: 'ph', type: 'Float', value: null, isNull: true },
        { name: 'q', type: 'Double', value: 1, properties: { Quality: { type: 'Int32', value: 0 } } },
      ],
    });
    expect(decodePayload(buf)).toEqual({
      timestamp: 1767225600000,
      seq: 7,
      metrics: [
        { name: 'volume_m3', alias: 3, value: 123.5, isNull: false, timestamp: 1767225600001 },
        { alias: 4, value: 42, isNull: false },
        { name: 'ph', value: null, isNull: true },
        { name: 'q', value: 1, isNull: false, quality: 'bad' },
      ],
    });
    expect(() => decodePayload(Buffer.from('{"not":"protobuf"}'))).toThrow();
    expect(decodePayload(rebirthPayload(5)).metrics[0]).toMatchObject({
      name: 'Node Control/Rebirth',
      value: true,
    });
  });

  it('is off by default and reports a bad mapping with its key path', () => {
    expect(configSchema.parse({}).sparkplug.hostId).toBeUndefined();
    expect(configSchema.parse({}).sparkplug).toEqual({
      enabled: false,
      groups: ['facility'],
      rebirthMinIntervalMs: 5000,
      devices: [],
    });
    const r = configSchema.safeParse({ sparkplug: { devices: [{ group: 'g', node: 'a/b', kind: 'x' }] } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['sparkplug', 'devices', 0, 'node']);
  });
});

describe('device presence from births and deaths', () => {
  it('holds a device offline from its death until its next birth, whatever the age of its data', () => {
    const reg = new DeviceRegistry([]);
    const now = Date.now();
    reg.onReading({ site: 's', kind: 'chlorination', device: 'tank-1', ts: now, fields: { ph: 7 } });
    const entry = reg.lookup('s', 'tank-1')!;
    expect(reg.stateOf(entry, now)).toBe('online');
    reg.setPresence('s', 'tank-1', false);
    expect(reg.stateOf(entry, now)).toBe('offline');
    expect(reg.get('s/tank-1', now)!.state).toBe('offline');
    reg.setPresence('s', 'tank-1', true);
    expect(reg.stateOf(entry, now)).toBe('online');
  });
});

describe('Sparkplug host application STATE', () => {
  const json = (b: Buffer): unknown => JSON.parse(b.toString('utf8'));

  it('wills offline with the time of the CONNECT, is born online with the same time, dies offline on a clean stop', () => {
    const h = new HostState('gw-1');
    const will = h.will(1000);
    expect(will.topic).toBe('spBv1.0/STATE/gw-1');
    expect(json(will.payload)).toEqual({ online: false, timestamp: 1000 });
    expect(h.isOnline).toBe(false);
    expect(json(h.birth().payload)).toEqual({ online: true, timestamp: 1000 });
    expect(h.isOnline).toBe(true);
    expect(json(h.death(5000).payload)).toEqual({ online: false, timestamp: 5000 });
    expect(h.isOnline).toBe(false);
    // The next connection has its own time.
    expect(json(h.will(9000).payload)).toEqual({ online: false, timestamp: 9000 });
  });

  it('publishes its birth again when its retained STATE says offline while it is online', () => {
    const h = new HostState('gw-1');
    h.will(1000);
    expect(h.onMessage(Buffer.from('{"online":false,"timestamp":1}'))).toBeUndefined(); // not online yet
    h.birth();
    expect(h.onMessage(Buffer.from('{"online":true,"timestamp":1000}'))).toBeUndefined(); // its own birth
    const again = h.onMessage(Buffer.from('{"online":false,"timestamp":500}'));
    expect(json(again!.payload)).toEqual({ online: true, timestamp: 1000 });
    expect(h.onMessage(Buffer.from('not json'))).toBeDefined();
    expect(h.rebirths).toBe(2);
  });
});
