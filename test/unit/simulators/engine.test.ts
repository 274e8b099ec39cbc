import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Engine, payloadOf } from '../../../simulators/engine/engine.js';
import { parseDuration } from '../../../simulators/scenario/duration.js';
import { fleetScenario } from '../../../simulators/scenario/fleet.js';
import {
  loadScenarioFile,
  parseScenario,
  parseScenarioYaml,
  ScenarioError,
} from '../../../simulators/scenario/load.js';
import { createRng, deriveSeed } from '../../../simulators/rng.js';
import { MONDAY } from './helpers.js';

const DIR = new URL('../../../simulators/scenarios/', import.meta.url).pathname;
const demo = loadScenarioFile(`${DIR}demo.yaml`);
const wire = (e: Engine, to: number, step?: number): string[] => {
  const out: string[] = [];
  if (!step) return e.advanceTo(to).map((m) => `${m.topic} ${payloadOf(m)}`);
  for (let t = MONDAY; t <= to; t += step)
    out.push(...e.advanceTo(t).map((m) => `${m.topic} ${payloadOf(m)}`));
  return out;
};

describe('determinism', () => {
  it('one seed and start time give identical messages; another seed does not', () => {
    const a = wire(new Engine(demo, { seed: 42, startTime: MONDAY }), MONDAY + 6 * 3_600_000);
    const b = wire(new Engine(demo, { seed: 42, startTime: MONDAY }), MONDAY + 6 * 3_600_000);
    const c = wire(new Engine(demo, { seed: 43, startTime: MONDAY }), MONDAY + 6 * 3_600_000);
    expect(a.length).toBeGreaterThan(500);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('the pace of the caller does not change the messages (one call vs ticks of 7 s)', () => {
    const to = MONDAY + 2 * 3_600_000;
    expect(wire(new Engine(demo, { seed: 5, startTime: MONDAY }), to, 7000)).toEqual(
      wire(new Engine(demo, { seed: 5, startTime: MONDAY }), to),
    );
  });

  it('the PRNG is reproducible and per-device seeds do not depend on order', () => {
    const r1 = createRng(9);
    const r2 = createRng(9);
    expect([r1.next(), r1.next(), r1.normal()]).toEqual([r2.next(), r2.next(), r2.normal()]);
    expect(deriveSeed(1, 'a/b')).toBe(deriveSeed(1, 'a/b'));
    expect(deriveSeed(1, 'a/b')).not.toBe(deriveSeed(2, 'a/b'));
    const xs = Array.from({ length: 10_000 }, () => r1.next());
    expect(Math.abs(xs.reduce((a, x) => a + x, 0) / xs.length - 0.5)).toBeLessThan(0.02);
  });
});

describe('engine', () => {
  it('emits in time order, on the contract topic, with a flat payload and no derived fields', () => {
    const msgs = new Engine(demo, { seed: 1, startTime: MONDAY }).advanceTo(MONDAY + 3_600_000);
    for (let i = 1; i < msgs.length; i++)
      expect(msgs[i]?.ts).toBeGreaterThanOrEqual(msgs[i - 1]?.ts as number);
    for (const m of msgs) {
      expect(m.topic).toMatch(
        /^facility\/[A-Za-z0-9_-]{1,64}\/(water-meter|gas-meter|chlorination|env-probe)\/[A-Za-z0-9_-]{1,64}\/telemetry$/,
      );
      const p = JSON.parse(payloadOf(m)) as Record<string, unknown>;
      expect(p.ts).toBe(m.ts);
      expect(p).not.toHaveProperty('dew_point_c');
      expect(p).not.toHaveProperty('consumption_m3');
      for (const v of Object.values(p)) expect(['number', 'boolean']).toContain(typeof v);
    }
  });

  it('keeps each device at its interval within the ±10 % jitter', () => {
    const e = new Engine(demo, { seed: 1, startTime: MONDAY });
    const msgs = e.advanceTo(MONDAY + 12 * 3_600_000);
    for (const d of e.devices()) {
      const ts = msgs.filter((m) => m.device === d.id).map((m) => m.ts);
      for (let i = 1; i < ts.length; i++) {
        const gap = (ts[i] as number) - (ts[i - 1] as number);
        expect(gap).toBeGreaterThanOrEqual(d.intervalMs * 0.9 - 1);
        expect(gap).toBeLessThanOrEqual(d.intervalMs * 1.1 + 1);
      }
    }
  });

  it('applies timed scenario faults at their time and for their duration', () => {
    const sc = loadScenarioFile(`${DIR}chlorine-high.yaml`);
    const e = new Engine(sc, { seed: 1, startTime: MONDAY });
    const msgs = e.advanceTo(MONDAY + 6 * 3_600_000).filter((m) => m.device === 'tank-1');
    const faulted = msgs.filter((m) => m.faults.includes('overdose')).map((m) => m.ts - MONDAY);
    expect(Math.min(...faulted)).toBeGreaterThanOrEqual(3_600_000);
    expect(Math.max(...faulted)).toBeLessThan(4 * 3_600_000);
    expect(Math.max(...msgs.map((m) => m.values.free_chlorine_mgl as number))).toBeGreaterThan(2);
    expect(msgs.at(-1)?.faults).toEqual([]);
  });

  it('starts and stops faults on demand, and refuses unknown ones', () => {
    const e = new Engine(demo, { seed: 1, startTime: MONDAY });
    e.advanceTo(MONDAY + 60_000);
    e.startFault('room-1', 'smoke', 10 * 60_000);
    expect(e.faultsOf('room-1')).toEqual(['smoke']);
    const during = e.advanceTo(MONDAY + 5 * 60_000).filter((m) => m.device === 'room-1');
    expect(during.every((m) => m.values.smoke === true)).toBe(true);
    expect(e.stopFault('room-1', 'smoke')).toBe(1);
    const after = e.advanceTo(MONDAY + 8 * 60_000).filter((m) => m.device === 'room-1');
    expect(after.every((m) => m.values.smoke === false)).toBe(true);
    expect(() => e.startFault('room-1', 'dosing-pump-failure')).toThrow(/no fault/);
    expect(() => e.startFault('nope', 'smoke')).toThrow(/no device/);
  });

  it('emits at most `limit` messages per call and catches up later without losing any', () => {
    const full = new Engine(demo, { seed: 3, startTime: MONDAY }).advanceTo(MONDAY + 3_600_000).length;
    const e = new Engine(demo, { seed: 3, startTime: MONDAY });
    let n = 0;
    for (let i = 0; i < 1000 && e.now < MONDAY + 3_600_000; i++)
      n += e.advanceTo(MONDAY + 3_600_000, 50).length;
    expect(n).toBe(full);
  });

  it('generates a fleet of the size asked', () => {
    const sc = parseScenario(fleetScenario(10_000));
    const e = new Engine(sc, { seed: 1, startTime: MONDAY });
    expect(e.size).toBe(10_000);
    expect(new Set(e.devices().map((d) => d.id)).size).toBe(10_000);
  });
});

describe('scenarios', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
  it('ships a scenario per rule family, a normal day and a fleet', () => {
    expect(files.length).toBeGreaterThanOrEqual(35);
    for (const f of [
      'normal-day.yaml',
      'fleet-10k.yaml',
      'chlorine-low.yaml',
      'gas-leak.yaml',
      'offline.yaml',
    ])
      expect(files).toContain(f);
  });
  it.each(files)('%s is valid', (f) => {
    const sc = loadScenarioFile(`${DIR}${f}`);
    expect(sc.sites.length).toBeGreaterThan(0);
  });

  it('reports every problem with its key path', () => {
    const bad = `
sites:
  - id: s
    devices:
      - { id: t1, kind: chlorination, params: { capacityM3: big, nope: 1 } }
      - { id: t1, kind: toaster }
faults:
  - { at: 10x, device: t1, fault: smoke }
  - { at: 1m, device: ghost, fault: leak }
`;
    try {
      parseScenarioYaml(bad, 'bad.yaml');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ScenarioError);
      const p = (err as ScenarioError).problems.join('\n');
      expect(p).toContain('sites.0.devices.1.kind');
      expect(p).toContain('faults.0.at: not a duration');
    }
    try {
      parseScenarioYaml(bad.replace('kind: toaster', 'kind: env-probe').replace('10x', '10m'), 'bad.yaml');
      expect.unreachable();
    } catch (err) {
      const p = (err as ScenarioError).problems.join('\n');
      expect(p).toContain('sites.0.devices.0.params.capacityM3: must be a number');
      expect(p).toContain('sites.0.devices.0.params.nope: unknown parameter');
      expect(p).toContain('sites.0.devices.1.id: duplicate device id t1');
      expect(p).toContain('faults.1.device: no device ghost');
    }
  });

  it('parses durations', () => {
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration(90)).toBe(90_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('1x')).toBeUndefined();
  });
});
