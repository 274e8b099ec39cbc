import type { ExampleProfile } from './types.js';

/**
 * EXAMPLE MAP, not a real product's: a water meter with an RS-485 (Modbus RTU) interface, the
 * index as a uint32 count of litres, flow as float32, an alarm word with bit flags.
 */
export const waterMeterRs485: ExampleProfile = {
  description: 'EXAMPLE MAP: water meter with RS-485 (holding registers 0-7), not a real product',
  registers: [
    { metric: 'volume_m3', table: 'holding', address: 0, type: 'uint32', scale: 0.001 },
    { metric: 'flow_lph', table: 'holding', address: 2, type: 'float32' },
    { metric: 'pressure_kpa', table: 'holding', address: 4, type: 'uint16', scale: 0.1 },
    { metric: 'battery_pct', table: 'holding', address: 5, type: 'uint16' },
    { metric: 'temperature_c', table: 'holding', address: 6, type: 'int16', scale: 0.01 },
    { metric: 'reverse_flow', table: 'holding', address: 7, type: 'bool', bit: 0 },
    { metric: 'tamper', table: 'holding', address: 7, type: 'bool', bit: 1 },
  ],
};
