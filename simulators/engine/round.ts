import type { Values } from '../types.js';

/** Decimals a real device would send for each metric; keeps payloads small and realistic. */
const DECIMALS: Record<string, number> = {
  volume_m3: 3,
  balance_m3: 3,
  flow_m3h: 3,
  flow_lph: 1,
  pressure_kpa: 2,
  battery_pct: 1,
  temperature_c: 2,
  free_chlorine_mgl: 3,
  total_chlorine_mgl: 3,
  ph: 2,
  turbidity_ntu: 3,
  orp_mv: 0,
  level_pct: 1,
  humidity_pct: 1,
};

/** 10^decimals per metric, looked up once per name rather than computed per value. */
const FACTORS = new Map<string, number>();

export function roundValues(values: Values): Values {
  const out: Values = {};
  for (const k in values) {
    const v = values[k] as Values[string];
    if (typeof v === 'number') {
      let f = FACTORS.get(k);
      if (f === undefined) FACTORS.set(k, (f = 10 ** (DECIMALS[k] ?? 3)));
      // `+ 0` turns -0 into 0 so a rounded tiny negative does not print as "-0".
      out[k] = Math.round(v * f) / f + 0;
    } else out[k] = v;
  }
  return out;
}
