import type { Rng } from '../rng.js';
import type { BaseState, Model } from '../types.js';
import { commercialProfile, householdProfile, localTime, mainsWaterTempC, networkProfile } from './clock.js';
import { addToRegister, approach, drainBattery, poisson, substeps } from './util.js';

export interface WaterMeterParams {
  profile: 'household' | 'commercial';
  /** Rated permanent flow Q3 in L/h (DN15 residential: 2,500 L/h). */
  q3Lph: number;
  registerMax: number;
  initialVolumeM3: number;
  /** Static network pressure at night, kPa. */
  staticPressureKpa: number;
  /** Site's offset from UTC in minutes, for the local demand curve. */
  utcOffsetMin: number;
  leakLph: number;
  reverseLph: number;
  batteryDrainPctPerHour: number;
}

interface Draw {
  remainingSec: number;
  lph: number;
}

export interface WaterMeterState extends BaseState {
  p: WaterMeterParams;
  volumeM3: number;
  draws: Draw[];
  batteryPct: number;
  tempC: number;
}

const DEFAULTS: WaterMeterParams = {
  profile: 'household',
  q3Lph: 2500,
  registerMax: 99999.999,
  initialVolumeM3: -1,
  staticPressureKpa: 360,
  utcOffsetMin: 0,
  leakLph: 15,
  reverseLph: 90,
  batteryDrainPctPerHour: 30,
};

/** Peak rate of new draws (taps, showers, flushes) per minute, per profile. */
const PEAK_DRAWS_PER_MIN = { household: 0.04, commercial: 0.25 };
/** The most a healthy installation draws, as a share of the meter's rated flow Q3. */
const NORMAL_SHARE_OF_Q3 = 0.8;

export const waterMeter: Model<WaterMeterState, WaterMeterParams> = {
  kind: 'water-meter',
  defaultParams: DEFAULTS,
  defaultIntervalSec: 900,
  analogMetrics: ['flow_lph', 'pressure_kpa', 'temperature_c'],
  faults: {
    leak: 'small constant flow day and night: no zero-flow interval, night flow above threshold',
    burst: 'flow above Q3 and a pressure drop',
    'reverse-flow': 'negative flow_lph and reverse_flow true',
    tamper: 'tamper true',
    'stuck-register': 'volume_m3 frozen while flow continues',
    'battery-drain': 'battery_pct falls fast, below 20 % within hours',
    'pressure-low': 'pressure_kpa below 100',
    'pressure-high': 'pressure_kpa above 450',
    freeze: 'water temperature near 0 °C',
  },
  init(params, nowMs, rng: Rng) {
    const p = { ...DEFAULTS, ...params };
    // A commercial DN25 meter is rated Q3 = 6.3 m³/h unless the scenario says otherwise.
    if (params.q3Lph === undefined && p.profile === 'commercial') p.q3Lph = 6300;
    const t = localTime(nowMs, p.utcOffsetMin);
    return {
      faults: [],
      p,
      volumeM3: p.initialVolumeM3 >= 0 ? p.initialVolumeM3 : rng.range(10, 5000),
      draws: [],
      batteryPct: rng.range(45, 100),
      tempC: mainsWaterTempC(t),
    };
  },
  step(s, dtSec, nowMs, rng) {
    const { p } = s;
    const f = new Set(s.faults);
    const draws = s.draws.map((d) => ({ ...d }));
    let volume = s.volumeM3;
    let tempC = s.tempC;
    const { n, h } = substeps(dtSec, 60);
    let flow = 0;
    let demandShape = 0;
    for (let i = 0; i < n; i++) {
      const tSub = nowMs - (n - 1 - i) * h * 1000;
      const lt = localTime(tSub, p.utcOffsetMin);
      const shape = p.profile === 'household' ? householdProfile(lt) : commercialProfile(lt);
      demandShape = networkProfile(lt);
      // Poisson arrivals of new draws in this sub-step.
      const expected = (PEAK_DRAWS_PER_MIN[p.profile] * shape * h) / 60;
      const k = poisson(rng.next, expected);
      for (let j = 0; j < k; j++) {
        const big = p.profile === 'commercial';
        draws.push({
          remainingSec: rng.range(30, big ? 600 : 420),
          lph: rng.range(big ? 200 : 250, big ? 1200 : 720),
        });
      }
      let subFlow = 0;
      for (const d of draws) {
        subFlow += d.lph;
        d.remainingSec -= h;
      }
      for (let j = draws.length - 1; j >= 0; j--)
        if ((draws[j] as Draw).remainingSec <= 0) draws.splice(j, 1);
      // The taps and fittings behind a healthy meter cannot draw its rated flow: however many
      // draws overlap, a normal day stays below it (random overlaps once made a shop reach Q3).
      subFlow = Math.min(subFlow, NORMAL_SHARE_OF_Q3 * p.q3Lph);
      if (f.has('leak')) subFlow += p.leakLph;
      if (f.has('burst')) subFlow = 1.6 * p.q3Lph;
      if (f.has('reverse-flow')) subFlow = -p.reverseLph;
      flow = subFlow;
      // A meter counts forward volume only; reverse flow goes to a separate register on real meters.
      if (!f.has('stuck-register') && subFlow > 0)
        volume = addToRegister(volume, (subFlow / 1000) * (h / 3600), p.registerMax);
      tempC = approach(
        tempC,
        f.has('freeze') ? 0.3 : mainsWaterTempC(lt),
        f.has('freeze') ? 1800 : 86_400,
        h,
      );
    }
    const burst = f.has('burst');
    let pressure =
      p.staticPressureKpa -
      90 * demandShape -
      0.02 * Math.max(0, flow) -
      (burst ? 150 : 0) +
      2 * rng.normal();
    if (f.has('pressure-low')) pressure = 75 + 3 * rng.normal();
    if (f.has('pressure-high')) pressure = 520 + 5 * rng.normal();
    const batteryPct = drainBattery(s.batteryPct, dtSec, f.has('battery-drain'), p.batteryDrainPctPerHour);
    return {
      state: { ...s, volumeM3: volume, draws, batteryPct, tempC },
      values: {
        volume_m3: volume,
        flow_lph: flow,
        pressure_kpa: pressure,
        battery_pct: batteryPct,
        reverse_flow: flow < 0,
        tamper: f.has('tamper'),
        temperature_c: tempC + 0.05 * rng.normal(),
      },
    };
  },
};
