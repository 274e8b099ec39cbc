import { z } from 'zod';

/**
 * The register map part of the Modbus config: one register's address, type, word and byte order,
 * scale and metric, and a profile (a map written once per device model). Apart from schema.ts so
 * the shipped example profiles can be typed by it without a cycle through the profile names.
 */

export const ID = /^[A-Za-z0-9_-]{1,64}$/;
export const id = z.string().regex(ID, 'must match [A-Za-z0-9_-]{1,64}');
export const metricName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must match [A-Za-z][A-Za-z0-9_]{0,63}');
export const address = z.number().int().min(0).max(65535);

export const REGISTER_TABLES = ['holding', 'input', 'coil', 'discrete'] as const;
export const REGISTER_TYPES = ['int16', 'uint16', 'int32', 'uint32', 'float32', 'float64', 'bool'] as const;
export type RegisterTable = (typeof REGISTER_TABLES)[number];
export type RegisterType = (typeof REGISTER_TYPES)[number];

/** Registers (16-bit words) a value of each type spans; coils and discrete inputs are one bit. */
export const WORDS: Record<RegisterType, number> = {
  int16: 1,
  uint16: 1,
  int32: 2,
  uint32: 2,
  float32: 2,
  float64: 4,
  bool: 1,
};

export const registerSchema = z
  .strictObject({
    metric: metricName,
    table: z.enum(REGISTER_TABLES).default('holding'),
    /** Zero-based protocol address (register 40001 is holding address 0). */
    address,
    /** For coils and discrete inputs only `bool`; registers: every numeric type, or `bool` with `bit`. */
    type: z.enum(REGISTER_TYPES).default('uint16'),
    /** Word order of 32/64-bit values: `big` = most significant word first (ABCD), `little` = CDAB. */
    wordOrder: z.enum(['big', 'little']).default('big'),
    /** Byte order inside each word: `big` as the standard says, `little` swaps (BADC, DCBA). */
    byteOrder: z.enum(['big', 'little']).default('big'),
    /** A bit field: this bit (0 = least significant) of the integer value, as a boolean metric. */
    bit: z.number().int().min(0).max(31).optional(),
    /** Linear conversion to the metric's unit: raw × scale + offset (numbers only). */
    scale: z.number().default(1),
    offset: z.number().default(0),
  })
  .superRefine((r, ctx) => {
    const bitTable = r.table === 'coil' || r.table === 'discrete';
    if (bitTable && r.type !== 'bool')
      ctx.addIssue({ code: 'custom', path: ['type'], message: `a ${r.table} is a single bit: type bool` });
    if (!bitTable && r.type === 'bool' && r.bit === undefined)
      ctx.addIssue({ code: 'custom', path: ['bit'], message: 'a bool from a register needs the bit number' });
    if (r.bit !== undefined) {
      if (bitTable || r.type === 'float32' || r.type === 'float64')
        ctx.addIssue({ code: 'custom', path: ['bit'], message: 'bit fields apply to integer registers' });
      else if (r.bit >= WORDS[r.type] * 16)
        ctx.addIssue({
          code: 'custom',
          path: ['bit'],
          message: `${r.type} has bits 0..${WORDS[r.type] * 16 - 1}`,
        });
    }
    if (r.address + WORDS[r.type] - 1 > 65535)
      ctx.addIssue({ code: 'custom', path: ['address'], message: 'the value runs past address 65535' });
  });

export const profileSchema = z.strictObject({
  /** Free text: manufacturer, model, manual revision the map was taken from. */
  description: z.string().optional(),
  registers: z.array(registerSchema).min(1),
});

export type RegisterConfig = z.infer<typeof registerSchema>;
export type ProfileConfig = z.infer<typeof profileSchema>;
/** A register map entry as written (defaults not yet applied), as the shipped profiles are. */
export type RegisterInput = z.input<typeof registerSchema>;
