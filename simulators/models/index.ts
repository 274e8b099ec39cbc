import type { BaseState, Kind, Model } from '../types.js';
import { chlorination } from './chlorination.js';
import { envProbe } from './env-probe.js';
import { gasMeter } from './gas-meter.js';
import { waterMeter } from './water-meter.js';

/** The static table of models, one line per kind. */
export const MODELS: Record<Kind, Model<BaseState, unknown>> = {
  'water-meter': waterMeter as unknown as Model<BaseState, unknown>,
  'gas-meter': gasMeter as unknown as Model<BaseState, unknown>,
  chlorination: chlorination as unknown as Model<BaseState, unknown>,
  'env-probe': envProbe as unknown as Model<BaseState, unknown>,
};

export { waterMeter, gasMeter, chlorination, envProbe };
