import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chlorination, decayRate } from '../../../simulators/models/chlorination.js';
import { envProbe } from '../../../simulators/models/env-probe.js';
import { gasMeter } from '../../../simulators/models/gas-meter.js';
import { dewPoint, saturationVapourPressure } from '../../../simulators/models/psychro.js';
import { waterMeter } from '../../../simulators/models/water-meter.js';
import { createRng } from '../../../simulators/rng.js';
import { MONDAY, run, series } from './helpers.js';

describe('chlorine decay', () => {
  // No outflow and a full tank: no refill, no dilution, pump failed, so only bulk decay acts.
  const still = { peakOutflowM3h: 0, refillBelowPct: 1 };

  it('follows C0·exp(-k(T)·t) within 2 % over 12 h', () => {
    const rng = createRng(7);
    const s0 = chlorination.init(still, MONDAY, rng);
    // The tank starts at the mains temperature, so k stays (nearly) constant over the run.
    const start = { ...s0, freeMgl: 1.5 };
    const { samples, state } = run(chlorination, {
      hours: 12,
      faults: ['dosing-pump-failure'],
      state: start,
      params: still,
    });
    const k = decayRate(state.p, s0.tempC);
    expect(k).toBeGreaterThan(0.05);
    for (const s of samples.filter((_, i) => i % 60 === 59)) {
      const hours = (s.t - MONDAY) / 3_600_000;
      const expected = 1.5 * Math.exp(-k * hours);
      // 2 % of the value, plus three standard deviations of the analyser's noise.
      expect(Math.abs((s.v.free_chlorine_mgl as number) - expected)).toBeLessThan(0.02 * expected + 0.03);
    }
    expect(state.freeMgl).toBeLessThan(0.8);
    expect(samples.every((s) => s.v.dosing_pump_on === false)).toBe(true);
  });

  it('decays faster in warmer water (θ^(T−20))', () => {
    const p = chlorination.defaultParams;
    expect(decayRate(p, 30) / decayRate(p, 20)).toBeCloseTo(p.theta ** 10, 6);
    const end = (temp: number): number => {
      const s0 = chlorination.init(still, MONDAY, createRng(1));
      // Hold the temperature: a summer tank, a winter tank.
      const day = temp > 20 ? Date.UTC(2026, 7, 1) : MONDAY;
      const { state } = run(chlorination, {
        hours: 4,
        faults: ['dosing-pump-failure'],
        start: day,
        state: { ...s0, freeMgl: 1, tempC: temp },
      });
      return state.freeMgl;
    };
    expect(end(28)).toBeLessThan(end(8) - 0.1);
  });
});

describe('cumulative registers', () => {
  it('water and gas indices never decrease except when rolling over at registerMax', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.boolean(), (seed, gas) => {
        const model = gas ? gasMeter : waterMeter;
        const { samples } = run(model as typeof waterMeter, { hours: 48, seed, faults: [] });
        const v = series(samples, 'volume_m3');
        for (let i = 1; i < v.length; i++) expect(v[i]).toBeGreaterThanOrEqual(v[i - 1] as number);
      }),
      { numRuns: 15 },
    );
  });

  it('rolls over to near zero after 99999.999', () => {
    const { samples } = run(waterMeter, {
      hours: 2,
      params: { initialVolumeM3: 99995, registerMax: 99999.999 },
      faults: ['burst'],
    });
    const v = series(samples, 'volume_m3');
    const drop = v.findIndex((x, i) => i > 0 && x < (v[i - 1] as number));
    expect(drop).toBeGreaterThan(0);
    expect(v[drop - 1]).toBeGreaterThan(99999);
    expect(v[drop]).toBeLessThan(5);
    // Burst flow of 4,000 L/h for 2 h is 8 m³: the index passed the maximum by about 3 m³.
    expect(v.at(-1)).toBeCloseTo(99995 + 8 - 100000, 1);
  });
});

describe('server room', () => {
  it('an HVAC failure raises the temperature at the configured rate', () => {
    for (const rate of [4, 6, 10]) {
      const s0 = envProbe.init({ hvacFailureRiseCPerHour: rate }, MONDAY, createRng(3));
      const { samples } = run(envProbe, { hours: 0.5, faults: ['hvac-failure'], state: s0 });
      const t = series(samples, 'temperature_c');
      const perHour = ((t.at(-1) as number) - s0.tempC) * 2;
      // Load is 90–100 % of design at this hour and the envelope leaks a little: within 12 %.
      expect(perHour).toBeGreaterThan(rate * 0.88);
      expect(perHour).toBeLessThan(rate * 1.02);
    }
  });

  it('holds the setpoint while the HVAC works and settles below 32 °C when degraded', () => {
    const ok = run(envProbe, { hours: 6 });
    expect(Math.max(...series(ok.samples, 'temperature_c'))).toBeLessThan(22.6);
    const degraded = run(envProbe, { hours: 24, faults: ['hvac-degraded'] });
    const last = series(degraded.samples, 'temperature_c').slice(-60);
    expect(Math.min(...last)).toBeGreaterThan(27);
    expect(Math.max(...last)).toBeLessThan(32);
  });

  it('uses the Magnus formula for dew point', () => {
    expect(saturationVapourPressure(20)).toBeCloseTo(23.37, 1);
    expect(dewPoint(20, 50)).toBeCloseTo(9.26, 1);
    expect(dewPoint(25, 100)).toBeCloseTo(25, 6);
    // At constant moisture, warming the room lowers RH: the HVAC failure run shows it.
    const { samples } = run(envProbe, { hours: 1, faults: ['hvac-failure'] });
    expect(samples.at(-1)?.v.humidity_pct as number).toBeLessThan(samples[0]?.v.humidity_pct as number);
  });
});

describe('demand', () => {
  it('water use peaks in the morning and evening and stops at night (household, weekday)', () => {
    const days = [1, 2, 3, 4, 5, 6, 7, 8].map(
      (seed) => run(waterMeter, { hours: 24, seed, dtSec: 60 }).samples,
    );
    const byHour = new Array<number>(24).fill(0);
    for (const d of days)
      for (const s of d) byHour[new Date(s.t - 1).getUTCHours()] += s.v.flow_lph as number;
    expect(byHour[3]).toBe(0);
    expect(byHour[7]).toBeGreaterThan(3 * (byHour[15] as number));
    expect(byHour[20]).toBeGreaterThan(2 * (byHour[15] as number));
  });

  it('gas heating runs more in winter than in summer', () => {
    const total = (start: number): number => {
      const { samples } = run(gasMeter, { hours: 72, start, params: { initialVolumeM3: 0 } });
      return samples.at(-1)?.v.volume_m3 as number;
    };
    expect(total(MONDAY)).toBeGreaterThan(3 * total(Date.UTC(2026, 6, 6)));
  });
});
