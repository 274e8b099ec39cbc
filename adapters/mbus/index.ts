import type { Source } from '../../gateway/src/core/source.js';
import type { MbusConfig } from './schema.js';
import { MbusSource } from './source.js';

export { MbusSource } from './source.js';
export { mbusSchema, type MbusConfig, type MbusConnectionConfig, type MbusMeterConfig } from './schema.js';

/** One Source per configured bus (a serial port or a serial-to-TCP converter). */
/** `clockAligned` (cluster mode, ADR 0177): rounds on the clock's slots, readings stamped with them. */
export function createMbusSources(cfg: MbusConfig, opts: { clockAligned?: boolean } = {}): Source[] {
  return cfg.connections.map((c) => new MbusSource(c, opts.clockAligned === true));
}
