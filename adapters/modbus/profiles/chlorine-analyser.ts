import type { ExampleProfile } from './types.js';

/**
 * EXAMPLE MAP, not a real product's: a chlorine analyser / dosing controller as such instruments
 * typically lay out their input registers (two float32 residuals, scaled integers for the rest,
 * a status word). Check your instrument's manual and write your own profile from it. The
 * simulators serve their chlorination tanks with this very map.
 */
export const chlorineAnalyser: ExampleProfile = {
  description: 'EXAMPLE MAP: chlorine analyser (input registers 0-9), not a real product',
  registers: [
    { metric: 'free_chlorine_mgl', table: 'input', address: 0, type: 'float32' },
    { metric: 'total_chlorine_mgl', table: 'input', address: 2, type: 'float32' },
    { metric: 'ph', table: 'input', address: 4, type: 'uint16', scale: 0.01 },
    { metric: 'turbidity_ntu', table: 'input', address: 5, type: 'uint16', scale: 0.01 },
    { metric: 'orp_mv', table: 'input', address: 6, type: 'int16' },
    { metric: 'level_pct', table: 'input', address: 7, type: 'uint16', scale: 0.1 },
    { metric: 'temperature_c', table: 'input', address: 8, type: 'int16', scale: 0.1 },
    { metric: 'dosing_pump_on', table: 'input', address: 9, type: 'bool', bit: 0 },
  ],
};
