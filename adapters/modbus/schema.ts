import { z } from 'zod';
import { EXAMPLE_PROFILES } from './profiles/index.js';

/**
 * Modbus sources, mounted at `modbus` in the gateway config (docs/modbus.md). Connections are the
 * wires (a TCP socket, an RS-485 bus, a serial server speaking RTU over TCP); devices sit on a
 * connection with a unit id and read a register map, written once per model as a profile. The
 * adapter is on when there is at least one connection.
 */

import { id, profileSchema, registerSchema } from './register-schema.js';

export * from './register-schema.js';

const reconnectSchema = z
  .strictObject({
    initialDelayMs: z.number().int().min(50).default(500),
    maxDelayMs: z.number().int().min(100).default(30_000),
  })
  .prefault({});

const connectionBase = {
  /** Names the source in /api/health (`modbus:<name>`); devices refer to it. */
  name: id,
  /** Registers one request may read at most (block reads); the standard allows 125 (2000 bits). */
  maxSpan: z.number().int().min(1).max(125).default(64),
  /** Unused registers a block read may cover to join two neighbours (0: only contiguous ones). */
  maxGap: z.number().int().min(0).max(64).default(0),
  connectTimeoutMs: z.number().int().min(100).default(5000),
  reconnect: reconnectSchema,
};

const tcpSchema = z.strictObject({
  ...connectionBase,
  transport: z.literal('tcp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(502),
  /** Requests in flight at once on this socket (Modbus TCP matches answers by transaction id). */
  maxInFlight: z.number().int().min(1).max(64).default(4),
});

const rtuOverTcpSchema = z.strictObject({
  ...connectionBase,
  /** RTU frames (with CRC) through a transparent serial server: one request at a time, as on the bus. */
  transport: z.literal('rtu-over-tcp'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(4001),
});

const rtuSchema = z.strictObject({
  ...connectionBase,
  /** RS-485 through a local serial port; needs the optional `serialport` package. */
  transport: z.literal('rtu'),
  path: z.string().min(1),
  baudRate: z.number().int().min(300).max(921_600).default(9600),
  parity: z.enum(['none', 'even', 'odd']).default('even'),
  dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
  stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
});

export const connectionSchema = z.discriminatedUnion('transport', [tcpSchema, rtuOverTcpSchema, rtuSchema]);

export const groupSchema = z.strictObject({
  /** Every device of the group is read this often. */
  intervalMs: z.number().int().min(50).default(10_000),
});

export const modbusDeviceSchema = z
  .strictObject({
    id,
    site: id,
    kind: id,
    connection: id,
    group: id.default('default'),
    /** Unit (slave) id: 1..247 on a bus; TCP devices often answer 1 or 255. */
    unitId: z.number().int().min(0).max(255).default(1),
    timeoutMs: z.number().int().min(10).max(60_000).default(1000),
    /** Extra attempts of a failed request within one poll. */
    retries: z.number().int().min(0).max(10).default(1),
    /** Missed polls in a row before the device counts as offline. */
    offlineAfter: z.number().int().min(1).max(100).default(3),
    /** A profile name (config `profiles` or a shipped example), or `registers` inline. */
    profile: id.optional(),
    registers: z.array(registerSchema).min(1).optional(),
  })
  .refine((d) => (d.profile === undefined) !== (d.registers === undefined), {
    message: 'needs exactly one of profile or registers',
  });

export const modbusSchema = z
  .strictObject({
    connections: z.array(connectionSchema).default([]),
    groups: z.record(id, groupSchema).default({ default: { intervalMs: 10_000 } }),
    profiles: z.record(id, profileSchema).default({}),
    devices: z.array(modbusDeviceSchema).default([]),
  })
  .superRefine((m, ctx) => {
    const conns = new Set<string>();
    m.connections.forEach((c, i) => {
      if (conns.has(c.name))
        ctx.addIssue({
          code: 'custom',
          path: ['connections', i, 'name'],
          message: `duplicate connection ${c.name}`,
        });
      conns.add(c.name);
    });
    const seen = new Set<string>();
    m.devices.forEach((d, i) => {
      if (!conns.has(d.connection))
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i, 'connection'],
          message: `no connection named ${d.connection} under modbus.connections`,
        });
      if (!(d.group in m.groups))
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i, 'group'],
          message: `no group named ${d.group} under modbus.groups`,
        });
      if (d.profile !== undefined && !(d.profile in m.profiles) && !(d.profile in EXAMPLE_PROFILES))
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i, 'profile'],
          message: `no profile named ${d.profile} (modbus.profiles or a shipped example: ${Object.keys(EXAMPLE_PROFILES).join(', ')})`,
        });
      const key = `${d.site}/${d.id}`;
      if (seen.has(key))
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `duplicate device ${key}` });
      seen.add(key);
    });
    if (m.devices.length > 0 && m.connections.length === 0)
      ctx.addIssue({ code: 'custom', path: ['connections'], message: 'devices need a connection' });
  });

export type ModbusConfig = z.infer<typeof modbusSchema>;
export type ModbusConnectionConfig = z.infer<typeof connectionSchema>;
export type ModbusDeviceConfig = z.infer<typeof modbusDeviceSchema>;
