import { z } from 'zod';
import { rulesSchema, type OverrideDef, type RulesConfig } from '../rules/schema.js';

/** Where an operator's rule override applies: every device of a kind, of a site, or one device. */
export const OVERRIDE_SCOPES = ['kind', 'site', 'device'] as const;
export type OverrideScope = (typeof OVERRIDE_SCOPES)[number];

/** A rule override as operators keep it in the database (entity `rule-override`). */
export const storedOverrideSchema = z.strictObject({
  scope: z.enum(OVERRIDE_SCOPES),
  /** The kind, the site, or `site/device`. */
  target: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}(\/[A-Za-z0-9_-]{1,64})?$/, 'must be a kind, a site or site/device'),
  rule: z.string().min(1),
  /** Partial rule settings, merged deeply into the rule (as `rules.overrides[].set` in the file). */
  set: z.record(z.string(), z.unknown()),
});
export type StoredOverride = z.infer<typeof storedOverrideSchema>;

/** The setting's key: one override per (scope, target, rule). */
export function overrideKey(o: Pick<StoredOverride, 'scope' | 'target' | 'rule'>): string {
  return `${o.scope}:${o.target}:${o.rule}`;
}

/** The stored override as the rules config spells it. */
export function toOverrideDef(o: StoredOverride): OverrideDef {
  if (o.scope === 'kind') return { rule: o.rule, kind: o.target, set: o.set };
  if (o.scope === 'site') return { rule: o.rule, site: o.target, set: o.set };
  const slash = o.target.indexOf('/');
  if (slash < 0) return { rule: o.rule, device: o.target, set: o.set };
  return { rule: o.rule, site: o.target.slice(0, slash), device: o.target.slice(slash + 1), set: o.set };
}

export interface OverrideProblem {
  path: string;
  message: string;
}

/**
 * The file's rules with the operators' overrides after the file's own (at equal specificity the
 * later wins, so an operator's device value beats the file's device value), validated by the same
 * schema as the file's `rules`. Problems name the key path under the override (`set.low.value`).
 */
export function layerOverrides(
  file: RulesConfig,
  stored: readonly StoredOverride[],
): { ok: true; rules: RulesConfig } | { ok: false; problems: OverrideProblem[] } {
  const base = file.overrides.length;
  const res = rulesSchema.safeParse({
    ...file,
    overrides: [...file.overrides, ...stored.map(toOverrideDef)],
  });
  if (res.success) return { ok: true, rules: res.data };
  const problems = res.error.issues.map((i) => {
    const p = i.path as (string | number)[];
    // Issues of an operator's override: its path within the override; anything else as it is.
    if (p[0] === 'overrides' && typeof p[1] === 'number' && p[1] >= base) {
      const o = stored[p[1] - base]!;
      return { path: [overrideKey(o), ...p.slice(2)].join('.'), message: i.message };
    }
    return { path: p.join('.'), message: i.message };
  });
  return { ok: false, problems };
}
