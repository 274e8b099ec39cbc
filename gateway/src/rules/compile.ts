import { deepMerge } from './merge.js';
import { ruleSchema, type OverrideDef, type RuleDef, type RulesConfig } from './schema.js';
import type { DeviceFacts } from './types.js';

/** A rule as it applies to one class of devices, after critical-asset and site/device overrides. */
export interface ResolvedRule {
  /** Small and unique within one CompiledRules: devices resolving to the same rules share a plan. */
  id: number;
  def: RuleDef;
  /** Identity of the effective definition: a state survives a reload only if this is unchanged. */
  hash: string;
  /** Compiled params shared by every device with the same resolution (see Evaluator.perDevice). */
  shared?: unknown;
}

interface IndexedOverride {
  o: OverrideDef;
  idx: number;
  specificity: number;
}

/**
 * Resolves overrides once per distinct combination (rule, matching overrides, critical), not per
 * device or reading: 10,000 devices of one site share a handful of resolved rules.
 */
export class CompiledRules {
  readonly rules: RuleDef[];
  private readonly byKindCache = new Map<string, RuleDef[]>();
  private readonly overrides = new Map<string, IndexedOverride[]>();
  private readonly resolved = new Map<string, ResolvedRule | null>();
  /** Devices some override names: only for them does resolution depend on more than site and critical. */
  private readonly namedDevices = new Set<string>();

  constructor(readonly config: RulesConfig) {
    this.rules = [...config.pack, ...config.custom];
    config.overrides.forEach((o, idx) => {
      const specificity = overrideSpecificity(o);
      let list = this.overrides.get(o.rule);
      if (!list) this.overrides.set(o.rule, (list = []));
      list.push({ o, idx, specificity });
      if (o.device !== undefined) this.namedDevices.add(o.device);
    });
    // Most specific applied last, so it wins; config order breaks ties.
    for (const list of this.overrides.values())
      list.sort((a, b) => a.specificity - b.specificity || a.idx - b.idx);
  }

  /** Every rule that can apply to a kind (enabled or not: an override may enable it for a site). */
  forKind(kind: string): RuleDef[] {
    let list = this.byKindCache.get(kind);
    if (!list) {
      list = this.rules.filter(
        (r) => r.kind !== 'read-rate' && (r.kinds.includes(kind) || r.kinds.includes('*')),
      );
      this.byKindCache.set(kind, list);
    }
    return list;
  }

  /** Whether an override names this device id (then its rules are resolved for it alone). */
  namesDevice(device: string): boolean {
    return this.namedDevices.has(device);
  }

  readRateRules(): RuleDef[] {
    return this.rules.filter((r) => r.kind === 'read-rate' && r.enabled);
  }

  /** The effective rule for a device, or null when disabled for it. */
  resolve(
    rule: RuleDef,
    facts: Pick<DeviceFacts, 'site' | 'device' | 'critical' | 'kind'>,
  ): ResolvedRule | null {
    const matched: IndexedOverride[] = [];
    for (const io of this.overrides.get(rule.id) ?? []) {
      const o = io.o;
      if (o.kind !== undefined && o.kind !== facts.kind) continue;
      if (o.site !== undefined && o.site !== facts.site) continue;
      if (o.device !== undefined && o.device !== facts.device) continue;
      if (o.critical !== undefined && o.critical !== facts.critical) continue;
      matched.push(io);
    }
    const useCritical = facts.critical && rule.critical !== undefined;
    const key = `${rule.id}|${useCritical ? 'c' : ''}|${matched.map((m) => m.idx).join(',')}`;
    const hit = this.resolved.get(key);
    if (hit !== undefined) return hit;
    let merged: RuleDef = rule;
    if (useCritical) merged = deepMerge(merged, rule.critical!);
    for (const m of matched) merged = deepMerge(merged, m.o.set);
    if (merged !== rule) merged = ruleSchema.parse(merged);
    const { critical: _critical, description: _description, ...effective } = merged;
    const res = merged.enabled
      ? { id: this.resolved.size, def: merged, hash: JSON.stringify(effective) }
      : null;
    this.resolved.set(key, res);
    return res;
  }
}

/**
 * How specific an override is: the more specific applies later and wins. Kind, then critical,
 * then site, then device, so a device's own value beats its site's, which beats its kind's.
 */
export function overrideSpecificity(o: OverrideDef): number {
  return (
    (o.kind !== undefined ? 1 : 0) +
    (o.critical !== undefined ? 2 : 0) +
    (o.site !== undefined ? 4 : 0) +
    (o.device !== undefined ? 8 : 0)
  );
}
