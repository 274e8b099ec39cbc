import { describe, expect, it } from 'vitest';
import { Engine, payloadOf } from '../../../simulators/engine/engine.js';
import { chlorination } from '../../../simulators/models/chlorination.js';
import { envProbe } from '../../../simulators/models/env-probe.js';
import { gasMeter } from '../../../simulators/models/gas-meter.js';
import { dewPoint } from '../../../simulators/models/psychro.js';
import { waterMeter } from '../../../simulators/models/water-meter.js';
import { parseScenario } from '../../../simulators/scenario/load.js';
import { MONDAY, run, series, type Sample } from './helpers.js';

const last = (s: Sample[]): Sample => s.at(-1) as Sample;
const consumption = (s: Sample[]): number => (last(s).v.volume_m3 as number) - (s[0]?.v.volume_m3 as number);

describe('water meter fault signatures', () => {
  it('leak: no zero-flow reading all day and night flow above 10 L/h', () => {
    const { samples } = run(waterMeter, { hours: 24, faults: ['leak'] });
    expect(samples.every((s) => (s.v.flow_lph as number) > 10)).toBe(true);
  });
  it('burst: flow above Q3 and pressure drop', () => {
    const { samples } = run(waterMeter, { hours: 1, faults: ['burst'] });
    expect(last(samples).v.flow_lph).toBeGreaterThan(2500);
    expect(last(samples).v.pressure_kpa).toBeLessThan(260);
  });
  it('reverse flow, tamper, pressure, freeze', () => {
    expect(last(run(waterMeter, { hours: 1, faults: ['reverse-flow'] }).samples).v).toMatchObject({
      reverse_flow: true,
    });
    expect(last(run(waterMeter, { hours: 1, faults: ['reverse-flow'] }).samples).v.flow_lph).toBeLessThan(0);
    expect(last(run(waterMeter, { hours: 1, faults: ['tamper'] }).samples).v.tamper).toBe(true);
    expect(last(run(waterMeter, { hours: 1, faults: ['pressure-low'] }).samples).v.pressure_kpa).toBeLessThan(
      100,
    );
    expect(
      last(run(waterMeter, { hours: 1, faults: ['pressure-high'] }).samples).v.pressure_kpa,
    ).toBeGreaterThan(450);
    expect(last(run(waterMeter, { hours: 6, faults: ['freeze'] }).samples).v.temperature_c).toBeLessThan(2);
  });
  it('stuck register: index frozen while water flows', () => {
    const { samples } = run(waterMeter, { hours: 24, faults: ['stuck-register', 'leak'] });
    expect(consumption(samples)).toBe(0);
    expect(Math.max(...series(samples, 'flow_lph'))).toBeGreaterThan(10);
  });
  it('battery drain: below 20 % within hours', () => {
    const { samples } = run(waterMeter, { hours: 4, faults: ['battery-drain'] });
    expect(last(samples).v.battery_pct).toBeLessThan(20);
  });
});

describe('gas meter fault signatures', () => {
  it('micro-leak: flow never stops for 8 hours', () => {
    const { samples } = run(gasMeter, { hours: 9, faults: ['micro-leak'] });
    expect(samples.every((s) => (s.v.flow_m3h as number) > 0)).toBe(true);
  });
  it('over-flow above Qmax, pressure drop/high, valve closed, tamper', () => {
    expect(last(run(gasMeter, { hours: 1, faults: ['over-flow'] }).samples).v.flow_m3h).toBeGreaterThan(6);
    expect(last(run(gasMeter, { hours: 1, faults: ['pressure-drop'] }).samples).v.pressure_kpa).toBeLessThan(
      1.5,
    );
    expect(
      last(run(gasMeter, { hours: 1, faults: ['pressure-high'] }).samples).v.pressure_kpa,
    ).toBeGreaterThan(3);
    const closed = run(gasMeter, { hours: 6, faults: ['valve-closed'] }).samples;
    expect(closed.every((s) => s.v.valve_open === false && s.v.flow_m3h === 0)).toBe(true);
    expect(last(run(gasMeter, { hours: 1, faults: ['tamper'] }).samples).v.tamper).toBe(true);
  });
  it('fast / slow / stuck change what the register counts, not the flow', () => {
    const base = consumption(run(gasMeter, { hours: 48, seed: 4 }).samples);
    expect(base).toBeGreaterThan(1);
    // Same seed, same demand, but prepaid top-ups draw from the random stream at other moments: ±20 %.
    const fast = consumption(run(gasMeter, { hours: 48, seed: 4, faults: ['fast'] }).samples);
    expect(fast / base).toBeGreaterThan(8 * 0.8);
    expect(fast / base).toBeLessThan(8 * 1.2);
    const slow = consumption(run(gasMeter, { hours: 48, seed: 4, faults: ['slow'] }).samples);
    expect(slow / base).toBeGreaterThan(0.2 * 0.8);
    expect(slow / base).toBeLessThan(0.2 * 1.2);
    expect(consumption(run(gasMeter, { hours: 48, seed: 4, faults: ['stuck'] }).samples)).toBe(0);
  });
  it('balance low: runs below 5 m³, then to zero and the valve closes', () => {
    const { samples } = run(gasMeter, { hours: 24, faults: ['balance-low'] });
    expect(samples[0]?.v.balance_m3).toBeLessThan(5);
    expect(last(samples).v.balance_m3).toBe(0);
    expect(last(samples).v.valve_open).toBe(false);
  });
});

describe('chlorination fault signatures', () => {
  it('dosing pump failure: pump off, chlorine falling, then below 0.3 and 0.05 mg/L', () => {
    const { samples } = run(chlorination, { hours: 36, faults: ['dosing-pump-failure'] });
    const c = series(samples, 'free_chlorine_mgl');
    expect(samples.every((s) => s.v.dosing_pump_on === false)).toBe(true);
    // Falling by at least 0.05 mg/L per hour over the first 30 minutes (the combined rule's trend).
    expect(((c[0] as number) - (c[30] as number)) * 2).toBeGreaterThan(0.05);
    expect(c.findIndex((x) => x < 0.3)).toBeGreaterThan(0);
    expect(Math.min(...c)).toBeLessThan(0.05);
  });
  it('overdose above 2.0 mg/L, low level below 20 %, turbidity above 1 NTU, pH out of 6.5–8.5', () => {
    expect(
      Math.max(...series(run(chlorination, { hours: 4, faults: ['overdose'] }).samples, 'free_chlorine_mgl')),
    ).toBeGreaterThan(2);
    expect(
      Math.min(...series(run(chlorination, { hours: 24, faults: ['low-level'] }).samples, 'level_pct')),
    ).toBeLessThan(20);
    expect(
      last(run(chlorination, { hours: 2, faults: ['turbidity-event'] }).samples).v.turbidity_ntu,
    ).toBeGreaterThan(1);
    expect(last(run(chlorination, { hours: 2, faults: ['ph-high'] }).samples).v.ph).toBeGreaterThan(8.5);
    expect(last(run(chlorination, { hours: 2, faults: ['ph-low'] }).samples).v.ph).toBeLessThan(6.5);
  });
  it('sensor drift moves the reading away from the true residual', () => {
    const { samples, state } = run(chlorination, { hours: 3, faults: ['sensor-drift'] });
    expect(state.freeMgl - (last(samples).v.free_chlorine_mgl as number)).toBeGreaterThan(0.7);
  });
});

describe('server room fault signatures', () => {
  it('HVAC failure: rate of rise above 5 °C/h, then above 27 and 32 °C', () => {
    const t = series(run(envProbe, { hours: 3, faults: ['hvac-failure'] }).samples, 'temperature_c');
    expect((t[59] as number) - (t[0] as number)).toBeGreaterThan(5);
    expect(t.findIndex((x) => x > 27)).toBeGreaterThan(0);
    expect(Math.max(...t)).toBeGreaterThan(32);
  });
  it('humidifier failure: dew point below 5.5 °C; dehumidifier failure: RH above 60 % and dew point above 15 °C', () => {
    const dry = last(run(envProbe, { hours: 4, faults: ['humidifier-failure'] }).samples).v;
    expect(dewPoint(dry.temperature_c as number, dry.humidity_pct as number)).toBeLessThan(5.5);
    const damp = last(run(envProbe, { hours: 4, faults: ['dehumidifier-failure'] }).samples).v;
    expect(damp.humidity_pct).toBeGreaterThan(60);
    expect(dewPoint(damp.temperature_c as number, damp.humidity_pct as number)).toBeGreaterThan(15);
  });
  it('door left open, water leak, smoke', () => {
    const s = run(envProbe, { hours: 0.5, faults: ['door-left-open', 'water-leak', 'smoke'] }).samples;
    expect(s.every((x) => x.v.door_open && x.v.water_leak && x.v.smoke)).toBe(true);
  });
});

describe('faults common to every kind', () => {
  const sc = parseScenario({
    sites: [
      {
        id: 's',
        devices: [
          { id: 'tank-1', kind: 'chlorination' },
          { id: 'wm-1', kind: 'water-meter' },
        ],
      },
    ],
    faults: [
      { at: '10m', device: 'tank-1', fault: 'silent', for: '30m' },
      { at: '1h', device: 'tank-1', fault: 'sensor-fault', for: '10m' },
    ],
  });
  it('silent: no report while active (offline after 3 intervals), then reports again', () => {
    const e = new Engine(sc, { seed: 1, startTime: MONDAY });
    const msgs = e.advanceTo(MONDAY + 2 * 3_600_000).filter((m) => m.device === 'tank-1');
    const heard = msgs.filter((m) => !m.silent).map((m) => m.ts - MONDAY);
    expect(heard.some((t) => t >= 10 * 60_000 && t < 40 * 60_000)).toBe(false);
    expect(heard.some((t) => t >= 40 * 60_000)).toBe(true);
    expect(msgs.filter((m) => m.silent).length).toBeGreaterThanOrEqual(25);
  });
  it('sensor fault: analogue readings left out and listed as bad', () => {
    const e = new Engine(sc, { seed: 1, startTime: MONDAY });
    const during = e
      .advanceTo(MONDAY + 65 * 60_000)
      .filter((m) => m.device === 'tank-1')
      .at(-1);
    expect(during?.bad).toContain('free_chlorine_mgl');
    expect(during?.values).not.toHaveProperty('free_chlorine_mgl');
    expect(during?.values).toHaveProperty('dosing_pump_on');
    // Over MQTT JSON the failed sensors read 0 and say they are bad.
    const json = JSON.parse(payloadOf(during!)) as Record<string, unknown>;
    expect(json.free_chlorine_mgl).toBe(0);
    expect(json.quality).toMatchObject({ free_chlorine_mgl: 'bad', ph: 'bad' });
    expect(json.dosing_pump_on).toBeTypeOf('boolean');
  });
});
