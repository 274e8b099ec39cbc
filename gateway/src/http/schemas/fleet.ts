import { z } from 'zod';
import { isoTime } from './common.js';
import { named } from './registry.js';

/** Runtime configuration (docs/fleet.md): operators' changes over the config file. */

export const FLEET_ENTITY_NAMES = [
  'rule-override',
  'device',
  'contact',
  'on-call',
  'schedule',
  'pm-occurrence',
  'channel',
] as const;
export const OVERRIDE_SCOPE_NAMES = ['kind', 'site', 'device'] as const;
export const VALUE_LAYERS = ['default', 'critical', 'kind', 'site', 'device'] as const;

const scopeTarget = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}(\/[A-Za-z0-9_-]{1,64})?$/, 'must be a kind, a site or site/device');

/** `PUT /api/fleet/overrides`: the override of one rule for a kind, a site or one device (replaces it). */
export const overrideBody = z.strictObject({
  scope: z.enum(OVERRIDE_SCOPE_NAMES),
  target: scopeTarget,
  rule: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,99}$/, 'must be a rule id'),
  /** Partial rule settings merged deeply into the rule: `{"low": {"value": 0.5}}`, `{"enabled": false}`. */
  set: z.record(z.string(), z.unknown()),
  /** Why (shown in the history). */
  note: z.string().max(500).optional(),
});
export type OverrideBody = z.infer<typeof overrideBody>;

export const storedOverride = named(
  z.object({
    key: z.string(),
    scope: z.enum(OVERRIDE_SCOPE_NAMES),
    target: z.string(),
    rule: z.string(),
    set: z.record(z.string(), z.unknown()),
  }),
  'RuleOverride',
  "An operator's rule override, kept in the shared store",
);
export type StoredOverrideJson = z.infer<typeof storedOverride>;

export const overrideKeyQuery = z.strictObject({
  /** `scope:target:rule`, as listed. */
  key: z.string().min(3).max(300),
  note: z.string().max(500).optional(),
});

export const changeSchema = named(
  z.object({
    id: z.number().int(),
    at: isoTime,
    actor: z.string(),
    entity: z.enum(FLEET_ENTITY_NAMES),
    key: z.string(),
    before: z.unknown(),
    after: z.unknown(),
    note: z.string().nullable(),
  }),
  'ConfigChange',
  'One change of the runtime configuration: who, when, the value before and after (null: none)',
);
export type ConfigChange = z.infer<typeof changeSchema>;

/** The answer to a change: the change recorded (null: the value was already so, nothing recorded). */
export const changeResult = z.object({ change: changeSchema.nullable() });

export const historyQuery = z.strictObject({
  entity: z.enum(FLEET_ENTITY_NAMES).optional(),
  key: z.string().max(300).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const changeParams = z.object({ id: z.coerce.number().int().positive() });

export const effectiveQuery = z.strictObject({
  /** `site/device`. */
  device: z.string().regex(/^[A-Za-z0-9_-]{1,64}\/[A-Za-z0-9_-]{1,64}$/, 'must be site/device'),
});

const valueSource = z.object({
  layer: z.enum(VALUE_LAYERS),
  origin: z.enum(['file', 'database']),
  /** Pinned in the config file (`fleet.pinned`): operators cannot change it. */
  pinned: z.boolean().optional(),
});

export const effectiveRulesSchema = named(
  z.object({
    site: z.string(),
    device: z.string(),
    kind: z.string(),
    critical: z.boolean(),
    rules: z.array(
      z.object({
        rule: z.string(),
        enabled: z.boolean(),
        /** The rule as it applies to the device (every layer merged in). */
        def: z.record(z.string(), z.unknown()),
        /** Each value not from the default pack, by key path (`low.value`): its layer and origin. */
        sources: z.record(z.string(), valueSource),
        /** The pin (`fleet.pinned` entry) that keeps operators from overriding this rule; null: none. */
        pin: z.string().nullable(),
      }),
    ),
    /** The operators' overrides that reach this device (its kind's, its site's, its own). */
    overrides: z.array(storedOverride),
  }),
  'EffectiveRules',
  "A device's rules with where each value comes from: default, critical, kind, site or device",
);
export type EffectiveRules = z.infer<typeof effectiveRulesSchema>;

const deviceFields = {
  site: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}'),
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}'),
  kind: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}'),
  name: z.string().max(200).optional(),
  location: z.string().max(200).optional(),
  critical: z.boolean().optional(),
  reportIntervalSec: z.number().int().positive().optional(),
  ratedMaxFlow: z.number().positive().optional(),
  registerMax: z.number().positive().optional(),
  meterClass: z.enum(['commercial', 'residential', 'in-home']).optional(),
};

/** `PUT /api/fleet/devices`: a device created or edited (the config's `devices[]` entry). */
export const deviceBody = z.strictObject({ ...deviceFields, note: z.string().max(500).optional() });
export type DeviceBody = z.infer<typeof deviceBody>;

export const fleetDeviceSchema = named(
  z.object({
    device: z.object({ ...deviceFields, critical: z.boolean() }),
    retired: z.boolean(),
    origin: z.enum(['file', 'database']),
    /** The pin (`fleet.pinned` entry) that keeps operators from changing it; null: none. */
    pin: z.string().nullable(),
  }),
  'FleetDevice',
  'A declared device: from the config file or changed here; retired ones are kept',
);
export type FleetDevice = z.infer<typeof fleetDeviceSchema>;

export const deviceKeyParams = z.object({
  site: z.string().min(1).max(64),
  id: z.string().min(1).max(64),
});

export const retireBody = z.strictObject({ note: z.string().max(500).optional() });
export const moveBody = z.strictObject({ site: deviceFields.site });

export const importBody = z.strictObject({
  /** The CSV text: a header row naming the columns (site,id,kind,name,location,critical,…). */
  csv: z.string().min(1).max(5_000_000),
  /** true: check every row and write nothing. */
  dryRun: z.boolean().default(true),
});

export const importResult = named(
  z.object({
    rows: z.number().int(),
    valid: z.number().int(),
    imported: z.number().int(),
    /** Every bad row: its line in the file (header = 1) and why. */
    problems: z.array(z.object({ line: z.number().int(), reason: z.string() })),
  }),
  'DeviceImport',
  'A CSV import: rows read, valid ones, imported ones (0 on a dry run), every bad row with its reason',
);
export type ImportResult = z.infer<typeof importResult>;

const contactJson = z.strictObject({
  name: z.string().min(1).max(200),
  contact: z.string().max(200).optional(),
  email: z.email().optional(),
  webhook: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be the name of a webhook')
    .optional(),
  language: z.enum(['en', 'zh']).optional(),
});

/** `PUT /api/fleet/contacts`: the escalation chain, level 1 first. */
export const chainBody = z.strictObject({
  contacts: z.array(contactJson).min(1).max(20),
  note: z.string().max(500).optional(),
});

/** `PUT /api/fleet/on-call`: who is on call in a week (absent: this week); `contact: null` removes it. */
export type OnCallBody = z.infer<typeof onCallBody>;
export const onCallBody = z.strictObject({
  week: z
    .string()
    .regex(/^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$/, 'must be an ISO week, 2026-W49')
    .optional(),
  contact: contactJson.nullable(),
  note: z.string().max(500).optional(),
});

export const contactsSchema = named(
  z.object({
    /** The chain in force (this week's on-call contact at level 1). */
    chain: z.array(contactJson),
    /** The ISO week now. */
    week: z.string(),
    onCall: contactJson.nullable(),
    rota: z.array(z.object({ week: z.string(), contact: contactJson })),
    /** The chain as set (the operators' or the file's), before this week's on-call contact: what an editor starts from. */
    configured: z.array(contactJson),
    /** The pin (`fleet.pinned: workorders.contacts`) that keeps the chain and rota the file's; null: none. */
    pin: z.string().nullable(),
  }),
  'Contacts',
  'The escalation chain in force and the on-call rota by ISO week',
);
export type Contacts = z.infer<typeof contactsSchema>;
