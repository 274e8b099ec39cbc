import type { Source } from '../../gateway/src/core/source.js';
import { EXAMPLE_PROFILES } from './profiles/index.js';
import { DevicePoller } from './poller.js';
import { profileSchema, type ModbusConfig, type ModbusDeviceConfig, type RegisterConfig } from './schema.js';
import { ModbusSource, type PollGroup } from './source.js';

export { ModbusSource } from './source.js';
export { modbusSchema, type ModbusConfig } from './schema.js';
export { EXAMPLE_PROFILES } from './profiles/index.js';

/** A device's register map: its inline `registers`, else its profile (config first, then the shipped examples). */
export function registersOf(cfg: ModbusConfig, d: ModbusDeviceConfig): RegisterConfig[] {
  if (d.registers) return d.registers;
  const name = d.profile ?? '';
  const own = cfg.profiles[name];
  if (own) return own.registers;
  const example = EXAMPLE_PROFILES[name];
  if (!example) throw new Error(`modbus device ${d.site}/${d.id}: no profile named ${name}`);
  return profileSchema.parse(example).registers;
}

/**
 * One source per connection, each with its devices by polling group. The config is already
 * validated. `clockAligned` (cluster mode, ADR 0177): polls on the wall clock's multiples of the
 * group's interval, stamped with that slot's time, so that every member's poll of a device in one
 * slot is one point in InfluxDB.
 */
export function createModbusSources(cfg: ModbusConfig, opts: { clockAligned?: boolean } = {}): Source[] {
  return cfg.connections.map((conn) => {
    const groups: PollGroup[] = Object.entries(cfg.groups).map(([name, g]) => ({
      name,
      intervalMs: g.intervalMs,
      devices: cfg.devices
        .filter((d) => d.connection === conn.name && d.group === name)
        .map((d) => new DevicePoller(d, registersOf(cfg, d), conn.maxSpan, conn.maxGap)),
    }));
    return new ModbusSource(conn, groups, opts.clockAligned === true);
  });
}
