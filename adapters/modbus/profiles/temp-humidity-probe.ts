import type { ExampleProfile } from './types.js';

/**
 * EXAMPLE MAP, not a real product's: a server-room temperature/humidity probe with float32
 * values in little-endian word order (CDAB, common on such probes) and its contact inputs as
 * discrete inputs. The simulators serve their env probes with this very map.
 */
export const tempHumidityProbe: ExampleProfile = {
  description: 'EXAMPLE MAP: temperature/humidity probe (input registers 0-3 CDAB, discrete inputs 0-2)',
  registers: [
    { metric: 'temperature_c', table: 'input', address: 0, type: 'float32', wordOrder: 'little' },
    { metric: 'humidity_pct', table: 'input', address: 2, type: 'float32', wordOrder: 'little' },
    { metric: 'smoke', table: 'discrete', address: 0, type: 'bool' },
    { metric: 'water_leak', table: 'discrete', address: 1, type: 'bool' },
    { metric: 'door_open', table: 'discrete', address: 2, type: 'bool' },
  ],
};
