/**
 * Decoded records → the gas- and water-meter metrics of DOMAIN.md. Pure. Only a meter's current
 * values count by default (function instantaneous, storage 0, tariff 0, subunit 0): storage 1+
 * are due-date and monthly values, which are history, not a reading of now.
 */
import type { MetricValue } from '../../gateway/src/core/types.js';
import type { DataRecord, Quantity, VariableData } from './records.js';
import type { MbusMeterConfig, MbusRecordMap } from './schema.js';

export interface MappedReading {
  fields: Record<string, MetricValue>;
  /** The meter's own clock (date-time record, storage 0), epoch ms read as UTC; for health. */
  meterTime?: number;
}

const isCurrent = (r: DataRecord): boolean =>
  r.function === 'instantaneous' && r.storage === 0 && r.tariff === 0 && r.subunit === 0;

/** Rounds away the binary noise of unit conversions (0.123 m³/h × 1000 is 123.00000000000001 L/h). */
const tidy = (x: number): number => Math.round(x * 1e9) / 1e9;

function current(records: readonly DataRecord[], q: Quantity): number | undefined {
  for (const r of records)
    if (r.quantity === q && isCurrent(r) && r.errorCode === undefined && typeof r.value === 'number')
      if (Number.isFinite(r.value)) return r.value;
  return undefined;
}

export function mapRecords(
  kind: MbusMeterConfig['kind'],
  data: VariableData,
  meter: Pick<MbusMeterConfig, 'errorBits' | 'records'>,
): MappedReading {
  const rs = data.records;
  const fields: Record<string, MetricValue> = {};
  const volume = current(rs, 'volume_m3');
  if (volume !== undefined) fields.volume_m3 = volume;
  const flow = current(rs, 'volume_flow_m3h');
  if (flow !== undefined) {
    if (kind === 'water-meter') fields.flow_lph = tidy(flow * 1000);
    else fields.flow_m3h = flow;
  }
  // A water meter's medium temperature is a flow temperature; some send it as external.
  const temp = current(rs, 'flow_temperature_c') ?? current(rs, 'external_temperature_c');
  if (temp !== undefined) fields.temperature_c = temp;
  const bar = current(rs, 'pressure_bar');
  if (bar !== undefined) fields.pressure_kpa = tidy(bar * 100);
  const flags = current(rs, 'error_flags');
  if (flags !== undefined) {
    fields.error_flags = flags;
    for (const [name, bit] of Object.entries(meter.errorBits)) fields[name] = ((flags >>> bit) & 1) === 1;
  }
  if (data.header) fields.meter_status = data.header.status;
  for (const m of meter.records) {
    const v = pick(rs, m);
    if (v !== undefined) fields[m.metric] = tidy(v * m.scale + m.offset);
  }
  const out: MappedReading = { fields };
  for (const r of rs)
    if (
      r.quantity === 'datetime' &&
      isCurrent(r) &&
      typeof r.value === 'number' &&
      Number.isFinite(r.value)
    ) {
      out.meterTime = r.value;
      break;
    }
  return out;
}

function pick(rs: readonly DataRecord[], m: MbusRecordMap): number | undefined {
  for (const r of rs) {
    if (r.quantity !== m.quantity || r.storage !== m.storage || r.tariff !== m.tariff) continue;
    if (r.subunit !== m.subunit || r.function !== m.function) continue;
    if (m.label !== undefined && r.label !== m.label) continue;
    if (r.errorCode !== undefined) continue;
    if (typeof r.value === 'number' && Number.isFinite(r.value)) return r.value;
  }
  return undefined;
}
