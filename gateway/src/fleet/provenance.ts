import { overrideSpecificity } from '../rules/compile.js';
import { deepMerge } from '../rules/merge.js';
import { ruleSchema, type OverrideDef, type RuleDef, type RulesConfig } from '../rules/schema.js';

/** The layer a rule's value comes from, least to most specific. */
export type ValueLayer = 'default' | 'critical' | 'kind' | 'site' | 'device';

export interface ValueSource {
  layer: ValueLayer;
  /** The config file, or an operator's change in the database. */
  origin: 'file' | 'database';
  /** Pinned in the config file (`fleet.pinned`): operators cannot change it. */
  pinned?: boolean;
}

export interface EffectiveRule {
  rule: string;
  enabled: boolean;
  /** The rule as it applies to the device, every layer merged in. */
  def: RuleDef;
  /** Each value set by a layer above the default pack, by its key path (`low.value`, `enabled`). */
  sources: Record<string, ValueSource>;
}

export interface Subject {
  site: string;
  device: string;
  kind: string;
  critical: boolean;
}

/**
 * The rules of one device with where each value comes from: the default pack, the critical-asset
 * settings, then the overrides for its kind, site and the device itself (config/rules/compile.ts
 * applies them in the same order). `fileOverrides` is how many of `rules.overrides` came from the
 * config file; the rest are operators' changes.
 */
export function effectiveRules(rules: RulesConfig, fileOverrides: number, d: Subject): EffectiveRule[] {
  const all = [...rules.pack, ...rules.custom].filter(
    (r) => r.kind !== 'read-rate' && (r.kinds.includes(d.kind) || r.kinds.includes('*')),
  );
  const matching = rules.overrides
    .map((o, idx) => ({ o, idx }))
    .filter(({ o }) => applies(o, d))
    .sort((a, b) => overrideSpecificity(a.o) - overrideSpecificity(b.o) || a.idx - b.idx);
  return all.map((rule) => {
    const sources: Record<string, ValueSource> = {};
    let merged: RuleDef = rule;
    if (d.critical && rule.critical) {
      merged = deepMerge(merged, rule.critical);
      for (const p of leafPaths(rule.critical)) sources[p] = { layer: 'critical', origin: 'file' };
    }
    for (const { o, idx } of matching) {
      if (o.rule !== rule.id) continue;
      merged = deepMerge(merged, o.set);
      const src: ValueSource = { layer: layerOf(o), origin: idx < fileOverrides ? 'file' : 'database' };
      for (const p of leafPaths(o.set)) sources[p] = src;
    }
    const def = merged === rule ? rule : ruleSchema.parse(merged);
    return { rule: rule.id, enabled: def.enabled, def, sources };
  });
}

function applies(o: OverrideDef, d: Subject): boolean {
  if (o.kind !== undefined && o.kind !== d.kind) return false;
  if (o.site !== undefined && o.site !== d.site) return false;
  if (o.device !== undefined && o.device !== d.device) return false;
  if (o.critical !== undefined && o.critical !== d.critical) return false;
  return true;
}

function layerOf(o: OverrideDef): ValueLayer {
  if (o.device !== undefined) return 'device';
  if (o.site !== undefined) return 'site';
  if (o.critical !== undefined) return 'critical';
  return 'kind';
}

/** `{low: {value: 1}}` → `['low.value']`; arrays are one value. */
export function leafPaths(v: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (typeof x === 'object' && x !== null && !Array.isArray(x))
      out.push(...leafPaths(x as Record<string, unknown>, p));
    else out.push(p);
  }
  return out;
}
