import { describe, expect, it } from 'vitest';
import { changedSet, formOf, mergeSet } from '../../dashboards/web/src/overrides.js';
import { isoWeek, layerContacts } from '../../gateway/src/fleet/contacts.js';
import { devicesFromCsv } from '../../gateway/src/fleet/devices.js';
import { effectiveRules } from '../../gateway/src/fleet/provenance.js';
import { layerOverrides, toOverrideDef } from '../../gateway/src/fleet/rule-overrides.js';
import { CompiledRules } from '../../gateway/src/rules/compile.js';
import { parseRules } from '../../gateway/src/rules/schema.js';

// The pure parts of the runtime configuration: layering, provenance, the form's diff, CSV rows, weeks.
const tank = { site: 'estate', device: 'tank-1', kind: 'chlorination', critical: false };

describe('rule layers', () => {
  const file = parseRules({
    overrides: [{ rule: 'chlorine.free.low', site: 'estate', set: { low: { value: 0.35 } } }],
  });

  it("an operator's device override beats the file's site override; each value says where it comes from", () => {
    const res = layerOverrides(file, [
      {
        scope: 'kind',
        target: 'chlorination',
        rule: 'chlorine.free.low',
        set: { low: { hysteresis: 0.05 } },
      },
      { scope: 'device', target: 'estate/tank-1', rule: 'chlorine.free.low', set: { low: { value: 0.5 } } },
    ]);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    const low = effectiveRules(res.rules, 1, tank).find((r) => r.rule === 'chlorine.free.low')!;
    expect(low.def).toMatchObject({ low: { value: 0.5, hysteresis: 0.05 } });
    expect(low.sources).toEqual({
      'low.hysteresis': { layer: 'kind', origin: 'database' },
      'low.value': { layer: 'device', origin: 'database' },
    });
    // The engine resolves the same way.
    const compiled = new CompiledRules(res.rules);
    const rule = compiled.forKind('chlorination').find((r) => r.id === 'chlorine.free.low')!;
    expect(compiled.resolve(rule, tank)?.def).toMatchObject({ low: { value: 0.5, hysteresis: 0.05 } });
    expect(compiled.resolve(rule, { ...tank, device: 'tank-2' })?.def).toMatchObject({
      low: { value: 0.35, hysteresis: 0.05 },
    });
    expect(compiled.resolve(rule, { ...tank, site: 'other' })?.def).toMatchObject({ low: { value: 0.3 } });
  });

  it('a bad override is named by its key and path', () => {
    const res = layerOverrides(file, [
      { scope: 'site', target: 'estate', rule: 'chlorine.free.low', set: { low: { severity: 'loud' } } },
    ]);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.problems[0]!.path).toBe('site:estate:chlorine.free.low.set.low.severity');
  });

  it('a device scope names site and device', () => {
    expect(toOverrideDef({ scope: 'device', target: 'a/b', rule: 'r', set: {} })).toEqual({
      rule: 'r',
      site: 'a',
      device: 'b',
      set: {},
    });
  });
});

describe('the threshold form', () => {
  const def = {
    enabled: true,
    low: { value: 0.3, severity: 'warning', hysteresis: 0.02, onDelayMs: 60_000, offDelayMs: 0 },
  };

  it('sends only what changed, delays in ms, and merges into the scope’s override', () => {
    const form = { ...formOf(def), 'low.value': '0.5', 'low.onDelayMs': '90' };
    expect(formOf(def)['low.onDelayMs']).toBe('60');
    const { set, bad } = changedSet(def, form);
    expect(bad).toEqual([]);
    expect(set).toEqual({ low: { value: 0.5, onDelayMs: 90_000 } });
    expect(mergeSet({ low: { hysteresis: 0.1 }, enabled: true }, set)).toEqual({
      low: { hysteresis: 0.1, value: 0.5, onDelayMs: 90_000 },
      enabled: true,
    });
    expect(changedSet(def, { ...formOf(def), 'low.value': 'abc' }).bad).toEqual(['low.value']);
    expect(changedSet(def, { ...formOf(def), enabled: 'false' }).set).toEqual({ enabled: false });
  });
});

describe('device CSV', () => {
  it('lists every bad row with its line; a device twice is bad the second time', () => {
    const csv = [
      'site,id,kind,name,critical',
      'a,m1,water-meter,"Meter, one",yes',
      'a,m2,toaster,,',
      'a,m1,water-meter,,',
      'a,m3,water-meter,,maybe',
    ].join('\n');
    const r = devicesFromCsv(csv, (k) => k === 'water-meter');
    expect(r.devices.map((d) => [d.line, d.device.id, d.device.name, d.device.critical])).toEqual([
      [2, 'm1', 'Meter, one', true],
    ]);
    expect(r.problems).toEqual([
      { line: 3, reason: 'kind: unknown kind "toaster"' },
      { line: 4, reason: 'device a/m1 is on line 2 already' },
      { line: 5, reason: 'critical: "maybe" is not true or false' },
    ]);
    expect(
      devicesFromCsv('site,id,kind,colour\na,b,water-meter,red', () => true).problems[0]!.reason,
    ).toContain('unknown column colour');
  });
});

describe('on-call weeks', () => {
  it('ISO weeks: Monday starts one, the Thursday decides the year', () => {
    expect(isoWeek(Date.UTC(2026, 11, 6))).toBe('2026-W49'); // a Sunday
    expect(isoWeek(Date.UTC(2026, 11, 7))).toBe('2026-W50'); // the Monday after
    expect(isoWeek(Date.UTC(2027, 0, 1))).toBe('2026-W53');
    expect(isoWeek(Date.UTC(2024, 11, 30))).toBe('2025-W01');
  });

  it("this week's on-call contact is level 1 of the chain", () => {
    const file = [{ name: 'a' }, { name: 'b' }];
    expect(layerContacts(file, undefined, { name: 'li' }).map((c) => c.name)).toEqual(['li', 'b']);
    expect(layerContacts(file, [{ name: 'x' }], undefined).map((c) => c.name)).toEqual(['x']);
  });
});
