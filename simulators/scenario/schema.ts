import { z } from 'zod';
import { MODELS } from '../models/index.js';
import { COMMON_FAULTS, KINDS, type Kind } from '../types.js';
import { parseDuration } from './duration.js';

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const id = z.string().regex(ID, 'must match [A-Za-z0-9_-]{1,64}');

/** "10m", "1h30m", "2d" or seconds as a number; becomes milliseconds. */
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `not a duration: ${JSON.stringify(v)} (use e.g. 90s, 10m, 1h30m, 2d)`,
    });
    return z.NEVER;
  }
  return ms;
});

const kind = z.enum(KINDS);
const perKind = <T extends z.ZodType>(t: T) => z.partialRecord(kind, t);
const qos = z.union([z.literal(0), z.literal(1), z.literal(2)]);
const transport = z.enum(['mqtt', 'opcua', 'both']);

const deviceSchema = z.strictObject({
  id,
  kind,
  /** Expands into `count` devices `<id>-0001` … (a fleet). */
  count: z.number().int().min(1).max(100_000).optional(),
  transport: transport.optional(),
  interval: duration.optional(),
  qos: qos.optional(),
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).default({}),
});

const siteSchema = z.strictObject({
  id,
  /** Local time of the site as minutes east of UTC (demand curves and night windows use it). */
  utcOffsetMin: z.number().int().min(-720).max(840).default(0),
  devices: z.array(deviceSchema).min(1),
});

const faultSchema = z.strictObject({
  at: duration,
  device: id,
  fault: z.string().min(1),
  /** Absent: until the end of the run. */
  for: duration.optional(),
});

export const scenarioSchema = z
  .strictObject({
    name: z.string().min(1).default('unnamed'),
    description: z.string().optional(),
    /** RFC 3339 start of simulated time; absent: chosen at run time. */
    start: z.iso.datetime({ offset: true }).optional(),
    /** How long the scenario is meant to run (simulated); the CLI stops after it. */
    duration: duration.optional(),
    seed: z.number().int().optional(),
    defaults: z
      .strictObject({
        /** ± fraction of the interval each report is moved by (0 … 0.5). */
        jitter: z.number().min(0).max(0.5).default(0.1),
        intervals: perKind(duration).default({}),
        qos: perKind(qos).default({}),
        transport: perKind(transport).default({}),
      })
      .prefault({}),
    sites: z.array(siteSchema).min(1),
    faults: z.array(faultSchema).default([]),
  })
  .superRefine((sc, ctx) => {
    const kinds = new Map<string, Kind>();
    sc.sites.forEach((site, si) =>
      site.devices.forEach((d, di) => {
        const model = MODELS[d.kind];
        for (const [k, v] of Object.entries(d.params)) {
          const path = ['sites', si, 'devices', di, 'params', k];
          const def = (model.defaultParams as Record<string, unknown>)[k];
          if (def === undefined) {
            const known = Object.keys(model.defaultParams as object).join(', ');
            ctx.addIssue({
              code: 'custom',
              path,
              message: `unknown parameter for ${d.kind} (known: ${known})`,
            });
          } else if (typeof def !== typeof v)
            ctx.addIssue({ code: 'custom', path, message: `must be a ${typeof def}` });
        }
        const ids = d.count
          ? Array.from({ length: d.count }, (_, i) => fleetId(d.id, i, d.count as number))
          : [d.id];
        for (const x of ids) {
          if (kinds.has(x))
            ctx.addIssue({
              code: 'custom',
              path: ['sites', si, 'devices', di, 'id'],
              message: `duplicate device id ${x}`,
            });
          kinds.set(x, d.kind);
        }
      }),
    );
    sc.faults.forEach((f, i) => {
      const k = kinds.get(f.device);
      if (!k)
        ctx.addIssue({ code: 'custom', path: ['faults', i, 'device'], message: `no device ${f.device}` });
      else if (!isKnownFault(k, f.fault))
        ctx.addIssue({
          code: 'custom',
          path: ['faults', i, 'fault'],
          message: `${k} has no fault ${f.fault} (known: ${faultNames(k).join(', ')})`,
        });
    });
  });

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;

export function fleetId(prefix: string, i: number, count: number): string {
  return `${prefix}-${String(i + 1).padStart(Math.max(4, String(count).length), '0')}`;
}

export function faultNames(kind: Kind): string[] {
  return [...Object.keys(MODELS[kind].faults), ...Object.keys(COMMON_FAULTS)];
}

export function isKnownFault(kind: Kind, fault: string): boolean {
  return fault in MODELS[kind].faults || fault in COMMON_FAULTS;
}
