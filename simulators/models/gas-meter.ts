import type { BaseState, Model } from '../types.js';
import { householdProfile, localTime, networkProfile, outdoorTempC } from './clock.js';
import { addToRegister, clamp, drainBattery, poisson, substeps } from './util.js';

export interface GasMeterParams {
  /** Rated maximum flow Qmax in m³/h (a G4 household meter: 6 m³/h). */
  qmaxM3h: number;
  registerMax: number;
  initialVolumeM3: number;
  /** Nominal low-pressure supply, kPa. */
  nominalPressureKpa: number;
  /** Boiler input in m³/h when firing (about 2 m³/h for a 20 kW boiler); 0 for cooking only. */
  boilerM3h: number;
  utcOffsetMin: number;
  /** Prepaid balance: top-up when below this, by about topUpM3. */
  topUpBelowM3: number;
  topUpM3: number;
  microLeakM3h: number;
  /** Register factor of a meter running fast / slow. */
  fastFactor: number;
  slowFactor: number;
  batteryDrainPctPerHour: number;
}

export interface GasMeterState extends BaseState {
  p: GasMeterParams;
  volumeM3: number;
  balanceM3: number;
  batteryPct: number;
  /** Remaining seconds of the current cooking session and its burner flow. */
  cookSec: number;
  cookM3h: number;
  /** Boiler on/off cycle: seconds left in the current phase. */
  boilerOn: boolean;
  boilerPhaseSec: number;
}

const DEFAULTS: GasMeterParams = {
  qmaxM3h: 6,
  registerMax: 99999.999,
  initialVolumeM3: -1,
  nominalPressureKpa: 2.1,
  boilerM3h: 1.1,
  utcOffsetMin: 0,
  topUpBelowM3: 25,
  topUpM3: 100,
  microLeakM3h: 0.03,
  fastFactor: 8,
  slowFactor: 0.2,
  batteryDrainPctPerHour: 30,
};

/** Cooking is a meal-time affair: the household curve, sharpened. */
const COOK_STARTS_PER_HOUR_AT_PEAK = 0.9;

export const gasMeter: Model<GasMeterState, GasMeterParams> = {
  kind: 'gas-meter',
  defaultParams: DEFAULTS,
  defaultIntervalSec: 900,
  analogMetrics: ['flow_m3h', 'pressure_kpa'],
  faults: {
    'micro-leak': 'small continuous flow for hours with no stop',
    'over-flow': 'flow above the rated Qmax (burst)',
    'pressure-drop': 'supply pressure below 1.5 kPa',
    'pressure-high': 'supply pressure above 3.0 kPa',
    'valve-closed': 'valve_open false, no flow',
    fast: 'register advances several times the real flow (a jump outside its history)',
    slow: 'register advances a fraction of the real flow',
    stuck: 'volume_m3 frozen while gas flows',
    tamper: 'tamper true',
    'battery-drain': 'battery_pct falls fast, below 20 % within hours',
    'balance-low': 'prepaid balance runs to zero (no top-up); the valve closes at zero',
  },
  init(params, nowMs, rng) {
    const p = { ...DEFAULTS, ...params };
    void nowMs;
    return {
      faults: [],
      p,
      volumeM3: p.initialVolumeM3 >= 0 ? p.initialVolumeM3 : rng.range(5, 8000),
      balanceM3: rng.range(40, 150),
      batteryPct: rng.range(45, 100),
      cookSec: 0,
      cookM3h: 0,
      boilerOn: false,
      boilerPhaseSec: rng.range(0, 600),
    };
  },
  step(s, dtSec, nowMs, rng) {
    const { p } = s;
    const f = new Set(s.faults);
    let { volumeM3, balanceM3, cookSec, cookM3h, boilerOn, boilerPhaseSec } = s;
    const { n, h } = substeps(dtSec, 60);
    let flow = 0;
    let network = 0;
    let valveOpen = true;
    for (let i = 0; i < n; i++) {
      const lt = localTime(nowMs - (n - 1 - i) * h * 1000, p.utcOffsetMin);
      network = networkProfile(lt);
      if (cookSec <= 0) {
        const rate = COOK_STARTS_PER_HOUR_AT_PEAK * householdProfile(lt) ** 2;
        if (poisson(rng.next, (rate * h) / 3600) > 0) {
          cookSec = rng.range(600, 2400);
          cookM3h = rng.range(0.25, 0.8);
        }
      } else cookSec -= h;
      // Heating: duty cycle grows as it gets colder outside; a night setback halves it.
      const heatNeed = clamp((15 - outdoorTempC(lt)) / 35, 0, 0.6) * (lt.hour < 5 || lt.hour >= 23 ? 0.5 : 1);
      boilerPhaseSec -= h;
      if (boilerPhaseSec <= 0) {
        const on = !boilerOn && heatNeed > 0.02 && p.boilerM3h > 0;
        boilerOn = on;
        // A cycle of about 20 minutes split by the duty; off phases last at least 5 minutes.
        boilerPhaseSec = on ? Math.max(120, 1200 * heatNeed) : Math.max(300, 1200 * (1 - heatNeed));
        boilerPhaseSec *= rng.range(0.8, 1.2);
      }
      let demand = (cookSec > 0 ? cookM3h : 0) + (boilerOn ? p.boilerM3h : 0);
      if (f.has('micro-leak')) demand += p.microLeakM3h;
      if (f.has('over-flow')) demand = 1.5 * p.qmaxM3h;
      if (!f.has('balance-low') && balanceM3 < p.topUpBelowM3) balanceM3 += p.topUpM3 * rng.range(0.5, 1.5);
      valveOpen = !f.has('valve-closed') && balanceM3 > 0;
      flow = valveOpen ? demand : 0;
      const real = (flow * h) / 3600;
      const factor = f.has('stuck') ? 0 : f.has('fast') ? p.fastFactor : f.has('slow') ? p.slowFactor : 1;
      volumeM3 = addToRegister(volumeM3, real * factor, p.registerMax);
      // A prepaid meter debits what its register counts.
      balanceM3 = Math.max(0, balanceM3 - real * factor);
    }
    if (f.has('balance-low')) balanceM3 = Math.min(balanceM3, 2);
    let pressure = p.nominalPressureKpa - 0.12 * network - 0.04 * flow + 0.02 * rng.normal();
    if (f.has('over-flow')) pressure -= 0.4;
    if (f.has('pressure-drop')) pressure = 1.1 + 0.03 * rng.normal();
    if (f.has('pressure-high')) pressure = 3.5 + 0.03 * rng.normal();
    const batteryPct = drainBattery(s.batteryPct, dtSec, f.has('battery-drain'), p.batteryDrainPctPerHour);
    return {
      state: { ...s, volumeM3, balanceM3, batteryPct, cookSec, cookM3h, boilerOn, boilerPhaseSec },
      values: {
        volume_m3: volumeM3,
        flow_m3h: flow,
        pressure_kpa: pressure,
        battery_pct: batteryPct,
        valve_open: valveOpen,
        tamper: f.has('tamper'),
        balance_m3: balanceM3,
      },
    };
  },
};
