import { z } from 'zod';
import { FIELD_NAME_PATTERN, ID_PATTERN } from '../../gateway/src/ingest/catalogue.js';

/**
 * Wired M-Bus sources (EN 13757-2/-3), mounted at `mbus` in the gateway config: one connection
 * per bus (a serial port, or a transparent serial-to-TCP converter), the meters on it addressed by
 * primary address or by identification number (secondary addressing). docs/mbus.md.
 */

const id = z.string().regex(ID_PATTERN, 'must match [A-Za-z0-9_-]{1,64}');
const metric = z.string().regex(FIELD_NAME_PATTERN, 'must be a field name');

/** The quantities a record can be mapped from by hand (records.ts names them). */
export const MAPPABLE_QUANTITIES = [
  'energy_wh',
  'energy_j',
  'volume_m3',
  'mass_kg',
  'on_time_s',
  'operating_time_s',
  'power_w',
  'volume_flow_m3h',
  'mass_flow_kgh',
  'flow_temperature_c',
  'return_temperature_c',
  'temperature_difference_k',
  'external_temperature_c',
  'pressure_bar',
  'error_flags',
  'digital_input',
  'digital_output',
  'volts',
  'amperes',
  'credit',
  'debit',
  'plain_text',
] as const;

const recordMapSchema = z.strictObject({
  /** Which record: its quantity and, when a meter sends several, storage/tariff/subunit/function. */
  quantity: z.enum(MAPPABLE_QUANTITIES),
  /** For `plain_text` records: the unit text the meter sends (e.g. `bat. time`). */
  label: z.string().min(1).optional(),
  storage: z.number().int().nonnegative().default(0),
  tariff: z.number().int().nonnegative().default(0),
  subunit: z.number().int().nonnegative().default(0),
  function: z.enum(['instantaneous', 'maximum', 'minimum', 'error']).default('instantaneous'),
  /** The metric it becomes (replaces the default mapping of that metric). */
  metric,
  /** value × scale + offset, after the record's own unit (m³, m³/h, °C, bar, ...). */
  scale: z.number().default(1),
  offset: z.number().default(0),
});

const bit = z.number().int().min(0).max(31);

export const mbusMeterSchema = z
  .strictObject({
    /** The device id in the gateway (InfluxDB tag `device`). */
    id,
    site: id,
    kind: z.enum(['gas-meter', 'water-meter']),
    /** 1..250 (0 is an unconfigured meter, 251-255 are reserved). */
    primaryAddress: z.number().int().min(1).max(250).optional(),
    /** Secondary addressing: the 8-digit identification number on the meter's label. */
    secondaryAddress: z
      .string()
      .regex(/^[0-9]{8}$/, 'must be the 8-digit identification number')
      .optional(),
    /** Narrow a secondary address further (absent: wildcard), e.g. two meters sharing a number. */
    manufacturer: z
      .string()
      .regex(/^[A-Z]{3}$/, 'must be a 3-letter manufacturer code')
      .optional(),
    version: z.number().int().min(0).max(254).optional(),
    medium: z.number().int().min(0).max(254).optional(),
    /**
     * Bits of the meter's error-flags record (VIF 0xFD 0x17) that mean a boolean metric: their
     * meaning is the manufacturer's, so none is assumed. E.g. `{tamper: 0, reverse_flow: 1}`.
     */
    errorBits: z.record(metric, bit).default({}),
    /** Overrides and additions to the default record → metric mapping. */
    records: z.array(recordMapSchema).default([]),
  })
  .refine((m) => (m.primaryAddress === undefined) !== (m.secondaryAddress === undefined), {
    message: 'needs exactly one of primaryAddress or secondaryAddress',
  })
  .refine(
    (m) => m.secondaryAddress !== undefined || (m.manufacturer ?? m.version ?? m.medium) === undefined,
    {
      message: 'manufacturer, version and medium narrow a secondaryAddress; give one',
    },
  );

const tcpSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
});

const serialSchema = z.strictObject({
  /** e.g. /dev/ttyUSB0 (a level converter on the bus). */
  path: z.string().min(1),
  baudRate: z.union([300, 600, 1200, 2400, 4800, 9600, 19200, 38400].map((b) => z.literal(b))).default(2400),
  /** EN 13757-2: 8 data bits, even parity, 1 stop bit. */
  parity: z.enum(['even', 'none', 'odd']).default('even'),
});

export const mbusConnectionSchema = z
  .strictObject({
    /** Names the source in /api/health (`mbus:<name>`) and the error counters. */
    name: id,
    tcp: tcpSchema.optional(),
    serial: serialSchema.optional(),
    /** Every meter on the bus is read this often (one request at a time per bus). */
    pollIntervalMs: z.number().int().min(100).default(60_000),
    /** How long to wait for a meter's answer; a converter and 2400 Bd need about 1.5 s for 255 bytes. */
    timeoutMs: z.number().int().min(20).max(60_000).default(2000),
    /** Further attempts after a timeout or a damaged frame, within one poll. */
    retries: z.number().int().min(0).max(10).default(2),
    /** Polls in a row without an answer after which a meter is offline. */
    offlineAfter: z.number().int().min(1).max(100).default(3),
    meters: z.array(mbusMeterSchema).min(1),
  })
  .refine((c) => (c.tcp === undefined) !== (c.serial === undefined), {
    message: 'needs exactly one of tcp or serial',
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.meters.forEach((m, i) => {
      const key = m.primaryAddress !== undefined ? `primary ${m.primaryAddress}` : undefined;
      if (key === undefined) return;
      const j = seen.get(key);
      if (j !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['meters', i, 'primaryAddress'],
          message: `${key} is also meters[${j}]'s: one bus, one meter per address`,
        });
      seen.set(key, i);
    });
  });

export const mbusSchema = z
  .strictObject({
    connections: z.array(mbusConnectionSchema).default([]),
  })
  .prefault({});

export type MbusConfig = z.infer<typeof mbusSchema>;
export type MbusConnectionConfig = z.infer<typeof mbusConnectionSchema>;
export type MbusMeterConfig = z.infer<typeof mbusMeterSchema>;
export type MbusRecordMap = z.infer<typeof recordMapSchema>;
