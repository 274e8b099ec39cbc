import { chlorineAnalyser } from './chlorine-analyser.js';
import { tempHumidityProbe } from './temp-humidity-probe.js';
import type { ExampleProfile } from './types.js';
import { waterMeterRs485 } from './water-meter-rs485.js';

export type { ExampleProfile } from './types.js';

/** Shipped example register maps, usable by name as a device's `profile` (docs/modbus.md). */
export const EXAMPLE_PROFILES: Readonly<Record<string, ExampleProfile>> = {
  'example-chlorine-analyser': chlorineAnalyser,
  'example-temp-humidity-probe': tempHumidityProbe,
  'example-water-meter-rs485': waterMeterRs485,
};
