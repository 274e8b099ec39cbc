import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { deviceSchema, type DeviceConfig } from '../config/schema.js';

/** A device as operators keep it (entity `device`, key `site/id`): its declaration, or retired. */
export const storedDeviceSchema = z.strictObject({
  device: deviceSchema,
  /** Retired: left out of the registry and the rules; the row and its history stay. */
  retired: z.boolean().default(false),
});
export type StoredDevice = z.infer<typeof storedDeviceSchema>;

export const deviceKey = (d: Pick<DeviceConfig, 'site' | 'id'>): string => `${d.site}/${d.id}`;

/** The file's devices with the operators' on top: theirs replace the file's, retired ones are left out. */
export function layerDevices(
  file: readonly DeviceConfig[],
  stored: ReadonlyMap<string, StoredDevice>,
): DeviceConfig[] {
  const out = new Map(file.map((d) => [deviceKey(d), d]));
  for (const [key, s] of stored) {
    if (s.retired) out.delete(key);
    else out.set(key, s.device);
  }
  return [...out.values()];
}

export interface RowProblem {
  /** The line of the CSV file (the header is line 1). */
  line: number;
  reason: string;
}

/** The columns a device CSV may have; `site`, `id` and `kind` are needed. */
export const CSV_COLUMNS = [
  'site',
  'id',
  'kind',
  'name',
  'location',
  'critical',
  'ratedMaxFlow',
  'registerMax',
  'meterClass',
  'reportIntervalSec',
] as const;
const NUMERIC = new Set(['ratedMaxFlow', 'registerMax', 'reportIntervalSec']);

/**
 * Devices from CSV (header row, comma separated, quotes as RFC 4180), each row validated by the
 * config's device schema and against the known kinds; every bad row is returned with its line and
 * reason, the good ones as devices. A device twice in the file is bad the second time.
 */
export function devicesFromCsv(
  text: string,
  knownKind: (kind: string) => boolean,
): { devices: Array<{ line: number; device: DeviceConfig }>; problems: RowProblem[] } {
  let records: Array<{ record: Record<string, string>; info: { lines: number } }>;
  try {
    records = parse(text, {
      columns: true,
      skip_empty_lines: true,
      trim: true,
      info: true,
      bom: true,
      relax_column_count: true,
    }) as typeof records;
  } catch (err) {
    return { devices: [], problems: [{ line: 0, reason: `not readable as CSV: ${(err as Error).message}` }] };
  }
  const problems: RowProblem[] = [];
  const devices: Array<{ line: number; device: DeviceConfig }> = [];
  const seen = new Map<string, number>();
  const header = records[0] ? Object.keys(records[0].record) : [];
  const unknown = header.filter((h) => !(CSV_COLUMNS as readonly string[]).includes(h));
  if (unknown.length)
    return {
      devices: [],
      problems: [
        { line: 1, reason: `unknown column ${unknown.join(', ')} (known: ${CSV_COLUMNS.join(', ')})` },
      ],
    };
  for (const { record, info } of records) {
    const line = info.lines;
    const input: Record<string, unknown> = {};
    let bad = '';
    for (const [k, raw] of Object.entries(record)) {
      if (raw === '' || raw === undefined) continue;
      if (NUMERIC.has(k)) {
        const n = Number(raw);
        if (!Number.isFinite(n)) bad ||= `${k}: "${raw}" is not a number`;
        input[k] = n;
      } else if (k === 'critical') {
        const v = raw.toLowerCase();
        if (!['true', 'false', 'yes', 'no', '1', '0'].includes(v))
          bad ||= `critical: "${raw}" is not true or false`;
        input[k] = ['true', 'yes', '1'].includes(v);
      } else input[k] = raw;
    }
    if (bad) {
      problems.push({ line, reason: bad });
      continue;
    }
    const r = deviceSchema.safeParse(input);
    if (!r.success) {
      problems.push({
        line,
        reason: r.error.issues.map((i) => `${i.path.join('.') || '(row)'}: ${i.message}`).join('; '),
      });
      continue;
    }
    if (!knownKind(r.data.kind)) {
      problems.push({ line, reason: `kind: unknown kind "${r.data.kind}"` });
      continue;
    }
    const key = deviceKey(r.data);
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push({ line, reason: `device ${key} is on line ${first} already` });
      continue;
    }
    seen.set(key, line);
    devices.push({ line, device: r.data });
  }
  return { devices, problems };
}
