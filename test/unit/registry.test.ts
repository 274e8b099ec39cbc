import { describe, expect, it } from 'vitest';
import type { DeviceConfig } from '../../gateway/src/config/schema.js';
import type { Reading } from '../../gateway/src/core/types.js';
import { DeviceRegistry, type DeviceEntry } from '../../gateway/src/registry/registry.js';

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;

function dev(site: string, id: string, kind: string, extra: Partial<DeviceConfig> = {}): DeviceConfig {
  return { site, id, kind, critical: false, ...extra };
}

const declared: DeviceConfig[] = [
  dev('hq', 'gm-1', 'gas-meter', {
    name: 'Boiler gas',
    location: 'Basement',
    registerMax: 9999,
    ratedMaxFlow: 6,
  }),
  dev('hq', 'probe-1', 'env-probe', { critical: true, reportIntervalSec: 30 }),
  dev('plant', 'tank-1', 'chlorination'),
  dev('plant', 'probe-1', 'env-probe'),
];

function reg(): DeviceRegistry {
  return new DeviceRegistry(declared, {
    startedAt: T0,
    kinds: { 'pump-station': { reportIntervalSec: 120, metrics: {} } },
  });
}

function reading(site: string, kind: string, device: string, ts: number, fields: Reading['fields']): Reading {
  return { site, kind, device, ts, fields };
}

describe('DeviceRegistry: declared and discovered', () => {
  it('knows declared devices with their config', () => {
    const r = reg();
    expect(r.size).toBe(4);
    const e = r.lookup('hq', 'gm-1');
    expect(e).toMatchObject({
      key: 'hq/gm-1',
      kind: 'gas-meter',
      name: 'Boiler gas',
      location: 'Basement',
      discovered: false,
      reportIntervalSec: 900,
      registerMax: 9999,
      ratedMaxFlow: 6,
    });
    expect(r.lookup('hq', 'probe-1')?.reportIntervalSec).toBe(30);
    expect(r.registerMax('hq', 'gm-1')).toBe(9999);
    expect(r.registerMax('hq', 'probe-1')).toBeUndefined();
    expect(r.registerMax('nowhere', 'x')).toBeUndefined();
  });

  it('discovers unknown devices once, with the kind interval, and tells listeners', () => {
    const r = reg();
    const seen: DeviceEntry[] = [];
    const off = r.onChange((d) => seen.push(d));
    const a = r.ensure('annex', 'water-meter', 'wm-9', T0);
    expect(a).toMatchObject({ key: 'annex/wm-9', discovered: true, reportIntervalSec: 900, critical: false });
    expect(r.ensure('annex', 'water-meter', 'wm-9', T0 + 1)).toBe(a);
    expect(r.ensure('annex', 'pump-station', 'ps-1', T0).reportIntervalSec).toBe(120);
    expect(r.ensure('annex', 'chlorination', 'c-1', T0).reportIntervalSec).toBe(60);
    expect(r.ensure('annex', 'mystery', 'x-1', T0).reportIntervalSec).toBe(300);
    expect(r.ensure('hq', 'gas-meter', 'gm-1')).toMatchObject({ discovered: false });
    expect(seen.map((d) => d.key)).toEqual(['annex/wm-9', 'annex/ps-1', 'annex/c-1', 'annex/x-1']);
    off();
    r.ensure('annex', 'water-meter', 'wm-10', T0);
    expect(seen).toHaveLength(4);
  });

  it('a throwing listener does not stop discovery', () => {
    const r = reg();
    r.onChange(() => {
      throw new Error('boom');
    });
    expect(() => r.onReading(reading('annex', 'env-probe', 'p-7', T0, { temperature_c: 21 }))).not.toThrow();
    expect(r.lookup('annex', 'p-7')?.discovered).toBe(true);
  });

  it('onReading discovers a device it has not seen', () => {
    const r = reg();
    r.onReading(reading('annex', 'gas-meter', 'gm-5', T0, { volume_m3: 3 }));
    expect(r.get('annex/gm-5', T0)).toMatchObject({ discovered: true, firstSeen: T0, lastSeen: T0 });
  });

  it('rejects a config that declares one device twice', () => {
    expect(() => new DeviceRegistry([dev('a', 'x', 'gas-meter'), dev('a', 'x', 'water-meter')])).toThrow(
      /devices\.1: duplicate device a\/x/,
    );
  });
});

describe('DeviceRegistry: kind mismatch', () => {
  it.each([
    { site: 'hq', device: 'gm-1', kind: 'gas-meter', mismatch: false },
    { site: 'hq', device: 'gm-1', kind: 'water-meter', mismatch: true },
    { site: 'hq', device: 'unknown', kind: 'water-meter', mismatch: false },
    { site: 'plant', device: 'probe-1', kind: 'chlorination', mismatch: true },
  ])('$site/$device as $kind → $mismatch', ({ site, device, kind, mismatch }) => {
    expect(reg().kindMismatch(site, device, kind)).toBe(mismatch);
  });

  it('a discovered device keeps its first kind', () => {
    const r = reg();
    r.ensure('annex', 'water-meter', 'wm-1', T0);
    expect(r.kindMismatch('annex', 'wm-1', 'water-meter')).toBe(false);
    expect(r.kindMismatch('annex', 'wm-1', 'gas-meter')).toBe(true);
  });
});

describe('DeviceRegistry: latest values', () => {
  it('keeps the newest value and time of each metric, even when readings arrive out of order', () => {
    const r = reg();
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0, { volume_m3: 10, flow_m3h: 1.5, valve_open: true }));
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0 + MIN, { volume_m3: 11, consumption_m3: 1 }));
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0 + 30_000, { volume_m3: 10.5, flow_m3h: 2 }));
    const s = r.get('hq/gm-1', T0 + MIN)!;
    expect(s.latest).toEqual({
      volume_m3: { value: 11, ts: T0 + MIN, quality: 'good' },
      consumption_m3: { value: 1, ts: T0 + MIN, quality: 'good' },
      flow_m3h: { value: 2, ts: T0 + 30_000, quality: 'good' },
      valve_open: { value: true, ts: T0, quality: 'good' },
    });
    expect(s.lastSeen).toBe(T0 + MIN);
    expect(s.firstSeen).toBe(T0);
  });

  it('hands out copies of the latest values: what a caller holds does not change under it', () => {
    const r = reg();
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0, { volume_m3: 10, valve_open: true }));
    const latest = r.lookup('hq', 'gm-1')!.latest;
    const before = latest.get('volume_m3');
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0 + 1, { volume_m3: 12 }));
    expect(before).toEqual({ value: 10, ts: T0, quality: 'good' });
    expect(latest.get('volume_m3')).toEqual({ value: 12, ts: T0 + 1, quality: 'good' });
    expect(latest.size).toBe(2);
    expect(latest.has('valve_open')).toBe(true);
    expect(latest.get('flow_m3h')).toBeUndefined();
    expect(Object.fromEntries(latest)).toEqual({
      volume_m3: { value: 12, ts: T0 + 1, quality: 'good' },
      valve_open: { value: true, ts: T0, quality: 'good' },
    });
  });

  it('carries the quality of each value, so a bad value is never shown as a good one', () => {
    const r = reg();
    r.onReading(reading('plant', 'chlorination', 'tank-1', T0, { free_chlorine_mgl: 0.5, ph: 7.2 }));
    r.onReading({
      ...reading('plant', 'chlorination', 'tank-1', T0 + 1, { free_chlorine_mgl: 0.5 }),
      quality: 'bad',
    });
    r.onReading({ ...reading('plant', 'chlorination', 'tank-1', T0 + 2, { ph: 0 }), quality: 'uncertain' });
    expect(r.get('plant/tank-1', T0 + 2)!.latest).toEqual({
      free_chlorine_mgl: { value: 0.5, ts: T0 + 1, quality: 'bad' },
      ph: { value: 0, ts: T0 + 2, quality: 'uncertain' },
    });
    r.onReading(reading('plant', 'chlorination', 'tank-1', T0 + 3, { free_chlorine_mgl: 0.6 }));
    expect(r.get('plant/tank-1', T0 + 3)!.latest.free_chlorine_mgl).toEqual({
      value: 0.6,
      ts: T0 + 3,
      quality: 'good',
    });
    // One reading, a quality per value: the good pH beside the failed analyser stays good.
    r.onReading({
      ...reading('plant', 'chlorination', 'tank-1', T0 + 4, { free_chlorine_mgl: 0, ph: 7.3 }),
      quality: 'bad',
      qualities: { free_chlorine_mgl: 'bad' },
    });
    expect(r.get('plant/tank-1', T0 + 4)!.latest).toEqual({
      free_chlorine_mgl: { value: 0, ts: T0 + 4, quality: 'bad' },
      ph: { value: 7.3, ts: T0 + 4, quality: 'good' },
    });
  });

  it('keeps a boolean a boolean whatever its quality, and the newest of each metric', () => {
    const r = reg();
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0 + 5, { valve_open: true, volume_m3: 3 }));
    r.onReading({ ...reading('hq', 'gas-meter', 'gm-1', T0 + 9, { valve_open: false }), quality: 'bad' });
    // Older than what is held: changes nothing.
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0 + 1, { valve_open: true, volume_m3: 1 }));
    r.onReading({ ...reading('hq', 'gas-meter', 'gm-1', T0 + 9, { volume_m3: 4 }), quality: 'uncertain' });
    expect(r.get('hq/gm-1', T0 + 9)!.latest).toEqual({
      valve_open: { value: false, ts: T0 + 9, quality: 'bad' },
      volume_m3: { value: 4, ts: T0 + 9, quality: 'uncertain' },
    });
  });

  it('snapshots are copies, safe to serialise and to hold', () => {
    const r = reg();
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0, { volume_m3: 10 }));
    const s = r.get('hq/gm-1', T0)!;
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0 + 1, { volume_m3: 12 }));
    expect(s.latest.volume_m3).toEqual({ value: 10, ts: T0, quality: 'good' });
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });
});

describe('DeviceRegistry: online / stale / offline', () => {
  // gm-1 reports every 900 s: online ≤ 1.5 intervals (22.5 min), stale ≤ 3 (45 min), then offline.
  it.each([
    { age: 0, state: 'online' },
    { age: 15 * MIN, state: 'online' },
    { age: 22.5 * MIN, state: 'online' },
    { age: 22.5 * MIN + 1, state: 'stale' },
    { age: 45 * MIN, state: 'stale' },
    { age: 45 * MIN + 1, state: 'offline' },
    { age: -2 * MIN, state: 'online' },
  ])('data $age ms old → $state', ({ age, state }) => {
    const r = reg();
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0, { volume_m3: 1 }));
    expect(r.get('hq/gm-1', T0 + age)?.state).toBe(state);
  });

  it('a declared device that never reported counts from the start, not from the epoch', () => {
    const r = reg();
    expect(r.get('hq/gm-1', T0 + MIN)).toMatchObject({ state: 'online', lastSeen: null, firstSeen: null });
    expect(r.get('hq/gm-1', T0 + 30 * MIN)?.state).toBe('stale');
    expect(r.get('hq/gm-1', T0 + 46 * MIN)?.state).toBe('offline');
  });

  it('the thresholds are configurable', () => {
    const r = new DeviceRegistry(declared, { startedAt: T0, onlineIntervals: 1, offlineIntervals: 2 });
    r.onReading(reading('hq', 'gas-meter', 'gm-1', T0, { volume_m3: 1 }));
    expect(r.get('hq/gm-1', T0 + 16 * MIN)?.state).toBe('stale');
    expect(r.get('hq/gm-1', T0 + 31 * MIN)?.state).toBe('offline');
  });

  it('list() filters by site, kind, state, discovered and critical', () => {
    const r = reg();
    r.onReading(reading('hq', 'env-probe', 'probe-1', T0 + 60 * MIN, { temperature_c: 22 }));
    r.onReading(reading('annex', 'water-meter', 'wm-1', T0 + 60 * MIN, { volume_m3: 1 }));
    const now = T0 + 60 * MIN;
    expect(r.list({}, now).map((d) => d.key)).toEqual([
      'annex/wm-1',
      'hq/gm-1',
      'hq/probe-1',
      'plant/probe-1',
      'plant/tank-1',
    ]);
    expect(r.list({ site: 'plant' }, now).map((d) => d.key)).toEqual(['plant/probe-1', 'plant/tank-1']);
    expect(r.list({ kind: 'env-probe' }, now).map((d) => d.key)).toEqual(['hq/probe-1', 'plant/probe-1']);
    expect(r.list({ discovered: true }, now).map((d) => d.key)).toEqual(['annex/wm-1']);
    expect(r.list({ critical: true }, now).map((d) => d.key)).toEqual(['hq/probe-1']);
    expect(r.list({ state: 'online' }, now).map((d) => d.key)).toEqual(['annex/wm-1', 'hq/probe-1']);
    expect(r.list({ state: 'offline' }, now).map((d) => d.key)).toEqual([
      'hq/gm-1',
      'plant/probe-1',
      'plant/tank-1',
    ]);
    expect(r.list({ site: 'nowhere' }, now)).toEqual([]);
  });
});

describe('DeviceRegistry: get by id', () => {
  it.each([
    { id: 'hq/gm-1', found: 'hq/gm-1' },
    { id: 'gm-1', found: 'hq/gm-1' },
    { id: 'tank-1', found: 'plant/tank-1' },
    { id: 'plant/probe-1', found: 'plant/probe-1' },
    { id: 'probe-1', found: undefined },
    { id: 'nope', found: undefined },
    { id: 'hq/nope', found: undefined },
    { id: 'hq/gm-1/extra', found: undefined },
  ])('get($id) → $found', ({ id, found }) => {
    expect(reg().get(id, T0)?.key).toBe(found);
  });

  it('resolve() tells ambiguous from not found', () => {
    const r = reg();
    expect(r.resolve('probe-1')).toEqual({
      ok: false,
      error: 'ambiguous',
      keys: ['hq/probe-1', 'plant/probe-1'],
    });
    expect(r.resolve('nope')).toEqual({ ok: false, error: 'not_found' });
    expect(r.resolve('gm-1')).toMatchObject({ ok: true, entry: { key: 'hq/gm-1' } });
  });

  it('a discovered device with a taken id makes the bare id ambiguous', () => {
    const r = reg();
    r.ensure('annex', 'chlorination', 'tank-1', T0);
    expect(r.resolve('tank-1')).toMatchObject({ ok: false, error: 'ambiguous' });
  });
});

describe('DeviceRegistry: snapshot / restore', () => {
  it('round-trips discovered devices only, through JSON, without notifying listeners', () => {
    const a = reg();
    a.onReading(reading('annex', 'water-meter', 'wm-1', T0, { volume_m3: 1 }));
    a.onReading(reading('annex', 'water-meter', 'wm-1', T0 + MIN, { volume_m3: 2 }));
    a.ensure('annex', 'env-probe', 'p-2', T0 + 5);
    a.onReading(reading('hq', 'gas-meter', 'gm-1', T0, { volume_m3: 1 }));
    const snap = JSON.parse(JSON.stringify(a.snapshot())) as unknown;
    expect(snap).toEqual({
      version: 1,
      devices: expect.arrayContaining([
        { site: 'annex', device: 'wm-1', kind: 'water-meter', firstSeen: T0, lastSeen: T0 + MIN },
        { site: 'annex', device: 'p-2', kind: 'env-probe', firstSeen: T0 + 5, lastSeen: null },
      ]),
    });
    expect((snap as { devices: unknown[] }).devices).toHaveLength(2);

    const b = reg();
    let notified = 0;
    b.onChange(() => notified++);
    expect(b.restore(snap)).toBe(2);
    expect(notified).toBe(0);
    expect(b.size).toBe(6);
    expect(b.get('annex/wm-1', T0 + MIN)).toMatchObject({
      discovered: true,
      kind: 'water-meter',
      reportIntervalSec: 900,
      lastSeen: T0 + MIN,
      state: 'online',
    });
    expect(b.kindMismatch('annex', 'wm-1', 'gas-meter')).toBe(true);
  });

  it('the config wins over a restored device, and bad entries are skipped', () => {
    const r = reg();
    const n = r.restore({
      version: 1,
      devices: [
        { site: 'hq', device: 'gm-1', kind: 'water-meter', firstSeen: 1, lastSeen: 2 },
        { site: 'bad site', device: 'x', kind: 'gas-meter' },
        { site: 'annex', device: 'ok-1', kind: 'gas-meter' },
        null,
        'junk',
      ],
    });
    expect(n).toBe(1);
    expect(r.lookup('hq', 'gm-1')).toMatchObject({ kind: 'gas-meter', discovered: false });
    expect(r.lookup('annex', 'ok-1')).toMatchObject({ discovered: true, firstSeen: undefined });
  });

  it.each([null, undefined, 42, 'x', {}, { devices: 'no' }])('restore(%s) restores nothing', (data) => {
    expect(reg().restore(data)).toBe(0);
  });
});
