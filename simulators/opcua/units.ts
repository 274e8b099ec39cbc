import { makeEUInformation, standardUnits, type EUInformation } from 'node-opcua';

export interface OpcuaMetricDef {
  /** Absent: a plain Boolean variable (pump state, alarms from contacts). */
  unit?: EUInformation;
  range?: { low: number; high: number };
}

// UNECE Rec. 20 common codes where one exists (mg/L "M1", mV "2Z"); pH and NTU have none.
const mgl = makeEUInformation('M1', 'mg/L', 'milligram per litre');
const mv = makeEUInformation('2Z', 'mV', 'millivolt');
const ph = makeEUInformation('pH', 'pH', 'pH (dimensionless)');
const ntu = makeEUInformation('NTU', 'NTU', 'nephelometric turbidity unit');
const rh = makeEUInformation('P1', '%RH', 'percent relative humidity');

/** How a PLC or building controller would publish each metric: unit and instrument span (EURange). */
export const OPCUA_METRICS: Record<'chlorination' | 'env-probe', Record<string, OpcuaMetricDef>> = {
  chlorination: {
    free_chlorine_mgl: { unit: mgl, range: { low: 0, high: 5 } },
    total_chlorine_mgl: { unit: mgl, range: { low: 0, high: 5 } },
    ph: { unit: ph, range: { low: 0, high: 14 } },
    turbidity_ntu: { unit: ntu, range: { low: 0, high: 100 } },
    orp_mv: { unit: mv, range: { low: -1000, high: 1000 } },
    level_pct: { unit: standardUnits.percent, range: { low: 0, high: 100 } },
    temperature_c: { unit: standardUnits.degree_celsius, range: { low: 0, high: 50 } },
    dosing_pump_on: {},
  },
  'env-probe': {
    temperature_c: { unit: standardUnits.degree_celsius, range: { low: -10, high: 60 } },
    humidity_pct: { unit: rh, range: { low: 0, high: 100 } },
    smoke: {},
    water_leak: {},
    door_open: {},
  },
};
