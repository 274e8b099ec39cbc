import type { BaseState, Model } from '../types.js';
import { isWeekend, localTime } from './clock.js';
import { saturationVapourPressure } from './psychro.js';
import { approach, clamp, poisson, substeps } from './util.js';

export interface EnvProbeParams {
  setpointC: number;
  /** Relative humidity the humidifier/dehumidifier hold, %. */
  rhSetpointPct: number;
  /** How fast the room warms at full IT load with no cooling, °C/h (room heat capacity vs load). */
  hvacFailureRiseCPerHour: number;
  /** Temperature of the surrounding building, °C, and the envelope's exchange rate with it, 1/h. */
  surroundC: number;
  envelopePerHour: number;
  /** Door openings per hour in working hours. */
  entriesPerHour: number;
  utcOffsetMin: number;
}

export interface EnvProbeState extends BaseState {
  p: EnvProbeParams;
  tempC: number;
  /** Water vapour partial pressure, hPa: what the (de)humidifier controls and dew point follows. */
  vapourHpa: number;
  doorOpenSec: number;
}

const DEFAULTS: EnvProbeParams = {
  setpointC: 22,
  rhSetpointPct: 45,
  hvacFailureRiseCPerHour: 6,
  surroundC: 24,
  envelopePerHour: 0.02,
  entriesPerHour: 0.6,
  utcOffsetMin: 0,
};

/** Controller gain: cooling fraction per °C of error. */
const KP = 1.5;
/** Vapour pressure the cooling coil pulls the room toward when the humidifier is out (dew ≈ 2 °C). */
const DRY_COIL_HPA = 7;
/** Vapour pressure of damp air seeping in when dehumidification is out (dew ≈ 19 °C). */
const DAMP_HPA = 22;

export const envProbe: Model<EnvProbeState, EnvProbeParams> = {
  kind: 'env-probe',
  defaultParams: DEFAULTS,
  defaultIntervalSec: 60,
  analogMetrics: ['temperature_c', 'humidity_pct'],
  faults: {
    'hvac-failure':
      'cooling stops; temperature climbs at hvacFailureRiseCPerHour (rate of rise, then > 27, > 32 °C)',
    'hvac-degraded': 'cooling capacity reduced; the room settles near 29.5 °C (warning, not critical)',
    'humidifier-failure': 'the coil dries the room; dew point falls below 5.5 °C',
    'dehumidifier-failure': 'damp air; relative humidity above 60 %, dew point above 15 °C',
    'door-left-open': 'door_open true for as long as the fault lasts',
    'water-leak': 'water_leak true',
    smoke: 'smoke true',
  },
  init(params, _nowMs, rng) {
    const p = { ...DEFAULTS, ...params };
    return {
      faults: [],
      p,
      tempC: p.setpointC + rng.range(-0.3, 0.3),
      vapourHpa: (p.rhSetpointPct / 100) * saturationVapourPressure(p.setpointC),
      doorOpenSec: 0,
    };
  },
  step(s, dtSec, nowMs, rng) {
    const { p } = s;
    const f = new Set(s.faults);
    let { tempC, vapourHpa, doorOpenSec } = s;
    const { n, h } = substeps(dtSec, 20);
    for (let i = 0; i < n; i++) {
      const lt = localTime(nowMs - (n - 1 - i) * h * 1000, p.utcOffsetMin);
      const working = !isWeekend(lt) && lt.hour >= 9 && lt.hour < 18;
      // IT load as a fraction of the design load: batch jobs at night, a little more by day.
      const load = 0.95 + 0.05 * Math.sin((2 * Math.PI * (lt.hour - 8)) / 24);
      // Cooling capacity rises with return-air temperature, which is why a degraded unit still settles.
      const capacity = f.has('hvac-failure')
        ? 0
        : f.has('hvac-degraded')
          ? clamp(0.7 + 0.1 * (tempC - 26.5), 0, 1.3)
          : 1.3;
      const cooling = clamp(load + KP * (tempC - p.setpointC), 0, capacity);
      const dTdt = p.hvacFailureRiseCPerHour * (load - cooling) - p.envelopePerHour * (tempC - p.surroundC);
      tempC += (dTdt * h) / 3600 + 0.004 * rng.normal();
      const target = f.has('humidifier-failure')
        ? DRY_COIL_HPA
        : f.has('dehumidifier-failure')
          ? DAMP_HPA
          : (p.rhSetpointPct / 100) * saturationVapourPressure(p.setpointC);
      const tau = f.has('humidifier-failure') || f.has('dehumidifier-failure') ? 7200 : 1800;
      vapourHpa = approach(vapourHpa, target, tau, h);
      if (doorOpenSec > 0) doorOpenSec -= h;
      else if (working && poisson(rng.next, (p.entriesPerHour * h) / 3600) > 0)
        doorOpenSec = rng.range(40, 240);
    }
    const rh = clamp((100 * vapourHpa) / saturationVapourPressure(tempC), 1, 100);
    return {
      state: { ...s, tempC, vapourHpa, doorOpenSec },
      values: {
        temperature_c: tempC + 0.05 * rng.normal(),
        humidity_pct: clamp(rh + 0.3 * rng.normal(), 0, 100),
        smoke: f.has('smoke'),
        water_leak: f.has('water-leak'),
        door_open: f.has('door-left-open') || doorOpenSec > 0,
      },
    };
  },
};
