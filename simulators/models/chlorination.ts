import type { BaseState, Model } from '../types.js';
import { localTime, mainsWaterTempC, networkProfile } from './clock.js';
import { approach, clamp, substeps } from './util.js';

export interface ChlorinationParams {
  /** Tank capacity, m³. */
  capacityM3: number;
  /** Outflow at the demand peak, m³/h. */
  peakOutflowM3h: number;
  /** Refill rate while the float valve is open, m³/h. */
  inflowM3h: number;
  /** Float valve opens below, closes above (percent of capacity). */
  refillBelowPct: number;
  refillAbovePct: number;
  /** Free chlorine the dosing controller holds, mg/L. */
  setpointMgl: number;
  /** Bulk decay constant at 20 °C, 1/h, and its temperature factor per °C (van 't Hoff–Arrhenius θ). */
  decayPerHour20: number;
  theta: number;
  /** Dosing pump capacity, g of free chlorine per hour. */
  maxDoseGph: number;
  /** Residual of the water coming in (already chlorinated upstream or not), mg/L. */
  inflowChlorineMgl: number;
  /** Sensor drift of the `sensor-drift` fault, mg/L per hour. */
  driftMglPerHour: number;
  utcOffsetMin: number;
}

export interface ChlorinationState extends BaseState {
  p: ChlorinationParams;
  volumeM3: number;
  freeMgl: number;
  refilling: boolean;
  ph: number;
  turbidityNtu: number;
  tempC: number;
  driftMgl: number;
}

const DEFAULTS: ChlorinationParams = {
  capacityM3: 50,
  peakOutflowM3h: 6,
  inflowM3h: 12,
  refillBelowPct: 60,
  refillAbovePct: 90,
  setpointMgl: 0.8,
  decayPerHour20: 0.12,
  theta: 1.07,
  maxDoseGph: 80,
  inflowChlorineMgl: 0,
  driftMglPerHour: -0.3,
  utcOffsetMin: 0,
};

/** First-order bulk decay constant (1/h) at water temperature tempC. */
export function decayRate(p: Pick<ChlorinationParams, 'decayPerHour20' | 'theta'>, tempC: number): number {
  return p.decayPerHour20 * p.theta ** (tempC - 20);
}

export const chlorination: Model<ChlorinationState, ChlorinationParams> = {
  kind: 'chlorination',
  defaultParams: DEFAULTS,
  defaultIntervalSec: 60,
  analogMetrics: [
    'free_chlorine_mgl',
    'total_chlorine_mgl',
    'ph',
    'turbidity_ntu',
    'orp_mv',
    'level_pct',
    'temperature_c',
  ],
  faults: {
    'dosing-pump-failure': 'dosing_pump_on false; free chlorine decays toward zero (< 0.3, then < 0.05)',
    overdose: 'dosing pump stuck at full stroke; free chlorine above 2.0 mg/L',
    'sensor-drift': 'the free chlorine reading drifts away from the true value',
    'low-level': 'refill valve stuck closed; level falls below 20 %',
    'turbidity-event': 'turbidity above 1 NTU and a higher chlorine demand',
    'chlorine-loss':
      'a surge of chlorine demand (contamination ingress) consumes the residual within seconds: free chlorine < 0.05 mg/L',
    'ph-high': 'pH rises above 8.5',
    'ph-low': 'pH falls below 6.5',
  },
  init(params, nowMs, rng) {
    const p = { ...DEFAULTS, ...params };
    const lt = localTime(nowMs, p.utcOffsetMin);
    return {
      faults: [],
      p,
      volumeM3: p.capacityM3 * rng.range(0.65, 0.85),
      freeMgl: p.setpointMgl * rng.range(0.95, 1.05),
      refilling: false,
      ph: 7.3,
      turbidityNtu: 0.2,
      tempC: mainsWaterTempC(lt),
      driftMgl: 0,
    };
  },
  step(s, dtSec, nowMs, rng) {
    const { p } = s;
    const f = new Set(s.faults);
    let { volumeM3, freeMgl, refilling, ph, turbidityNtu, tempC, driftMgl } = s;
    const pumpOn = !f.has('dosing-pump-failure');
    const { n, h } = substeps(dtSec, 30);
    for (let i = 0; i < n; i++) {
      const lt = localTime(nowMs - (n - 1 - i) * h * 1000, p.utcOffsetMin);
      const hours = h / 3600;
      const levelPct = (100 * volumeM3) / p.capacityM3;
      if (levelPct < p.refillBelowPct) refilling = true;
      if (levelPct >= p.refillAbovePct) refilling = false;
      const qIn = refilling && !f.has('low-level') ? p.inflowM3h : 0;
      const qOut = Math.min(p.peakOutflowM3h * networkProfile(lt), (volumeM3 * 0.98) / hours);
      // Turbid water carries organics that consume chlorine faster.
      // A contamination surge takes the residual in seconds, faster than the pump can feed it.
      const k =
        decayRate(p, tempC) * (1 + Math.max(0, turbidityNtu - 0.3)) + (f.has('chlorine-loss') ? 5000 : 0);
      // Flow-paced dosing with proportional trim: feed what decay and dilution take, correct the error.
      const need = k * p.setpointMgl * volumeM3 + qIn * (p.setpointMgl - p.inflowChlorineMgl);
      const trim = 2 * volumeM3 * (p.setpointMgl - freeMgl);
      const dose = !pumpOn ? 0 : f.has('overdose') ? p.maxDoseGph : clamp(need + trim, 0, p.maxDoseGph);
      // Mass balance in g (mg/L = g/m³): decay exactly, then dosing and inflow mixing.
      let mass = freeMgl * volumeM3 * Math.exp(-k * hours);
      mass += (dose + qIn * p.inflowChlorineMgl) * hours;
      const newVolume = Math.max(0.01, volumeM3 + (qIn - qOut) * hours);
      mass -= qOut * hours * (mass / Math.max(volumeM3 + qIn * hours, 0.01));
      volumeM3 = newVolume;
      freeMgl = Math.max(0, mass / volumeM3);
      tempC = approach(tempC, mainsWaterTempC(lt), 12 * 3600, h);
      const phTarget = f.has('ph-high') ? 9.1 : f.has('ph-low') ? 5.9 : 7.3 + 0.1 * (freeMgl - p.setpointMgl);
      ph = approach(ph, phTarget, 1200, h);
      turbidityNtu = approach(turbidityNtu, f.has('turbidity-event') ? 4 : 0.2, 1200, h);
      driftMgl = f.has('sensor-drift') ? driftMgl + p.driftMglPerHour * hours : 0;
    }
    const phRead = ph + 0.02 * rng.normal();
    const freeRead = Math.max(0, freeMgl + driftMgl + 0.01 * rng.normal());
    // Combined chlorine (chloramines) grows with the organic load.
    const totalRead = freeRead + 0.12 + 0.05 * turbidityNtu + 0.01 * Math.abs(rng.normal());
    // ORP rises with the log of free chlorine and falls as pH rises (less HOCl).
    const orp = clamp(650 + 110 * Math.log10(Math.max(freeMgl, 0.01) / 0.5) - 45 * (ph - 7.3), 150, 900);
    return {
      state: { ...s, volumeM3, freeMgl, refilling, ph, turbidityNtu, tempC, driftMgl },
      values: {
        free_chlorine_mgl: freeRead,
        total_chlorine_mgl: totalRead,
        ph: phRead,
        turbidity_ntu: Math.max(0.02, turbidityNtu + 0.01 * rng.normal()),
        orp_mv: orp + 2 * rng.normal(),
        level_pct: (100 * volumeM3) / p.capacityM3,
        temperature_c: tempC + 0.05 * rng.normal(),
        dosing_pump_on: pumpOn,
      },
    };
  },
};
