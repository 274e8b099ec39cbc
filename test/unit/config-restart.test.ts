import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../../gateway/src/config/schema.js';
import { liveKeyPaths, restartNeeded } from '../../gateway/src/config/restart.js';

/** Restart marks in the config schema, read by Gateway.reload() (gateway/src/config/restart.ts). */
const base = configSchema.parse({});
const withChange = (change: Record<string, unknown>) => configSchema.parse(change);

describe('restart marks of the config schema', () => {
  it('leave unmarked exactly the keys Gateway.reload() applies', () => {
    // A new key must be marked `.meta({ restart: true })` or be applied by reload (and listed here).
    expect(liveKeyPaths(configSchema)).toEqual([
      'devices',
      'rules',
      'rulesFile',
      'alarms.grouping',
      'workorders.contacts',
      'workorders.maintenance',
      'fleet',
      'notifications.webhooks',
      'notifications.email',
    ]);
  });

  it('report a changed restart key by its path, two levels deep', () => {
    expect(restartNeeded(configSchema, base, withChange({ mqtt: { keepaliveSec: 45 } }))).toEqual([
      'mqtt.keepaliveSec',
    ]);
    expect(restartNeeded(configSchema, base, withChange({ logLevel: 'debug' }))).toEqual(['logLevel']);
    // Devices are applied live (registry and rules), so a changed list needs no restart.
    expect(
      restartNeeded(
        configSchema,
        base,
        withChange({ devices: [{ id: 'd1', site: 's', kind: 'gas-meter' }] }),
      ),
    ).toEqual([]);
    // Deeper changes are reported at their second-level key.
    expect(restartNeeded(configSchema, base, withChange({ mqtt: { reconnect: { minMs: 1000 } } }))).toEqual([
      'mqtt.reconnect',
    ]);
  });

  it('say nothing of what reload applies: rules, the rules file, alarm grouping', () => {
    const next = withChange({
      rulesFile: 'rules.yaml',
      alarms: { grouping: { windowMs: 60_000 } },
      rules: { custom: [], overrides: [] },
    });
    expect(restartNeeded(configSchema, base, next)).toEqual([]);
  });

  it('let the nearest mark win: an applied key under a restart key, a restart key beside it', () => {
    const next = withChange({ alarms: { grouping: { windowMs: 60_000 }, tickMs: 1000 } });
    expect(restartNeeded(configSchema, base, next)).toEqual(['alarms.tickMs']);
  });

  it('read marks through wrappers (default, optional) and leave unmarked keys alone', () => {
    const schema = z.strictObject({
      port: z.number().default(1).meta({ restart: true }),
      tls: z.strictObject({ ca: z.string().optional() }).optional().meta({ restart: true }),
      live: z.number().default(5),
      nested: z
        .strictObject({ socket: z.number().default(1), hot: z.number().default(2).meta({ restart: false }) })
        .prefault({})
        .meta({ restart: true }),
    });
    const a = schema.parse({});
    expect(restartNeeded(schema, a, schema.parse({ port: 2, live: 6 }))).toEqual(['port']);
    expect(restartNeeded(schema, a, schema.parse({ tls: { ca: 'x' } }))).toEqual(['tls']);
    expect(restartNeeded(schema, a, schema.parse({ nested: { hot: 3 } }))).toEqual([]);
    expect(restartNeeded(schema, a, schema.parse({ nested: { socket: 3, hot: 3 } }))).toEqual([
      'nested.socket',
    ]);
    expect(liveKeyPaths(schema)).toEqual(['live', 'nested.hot']);
  });
});
