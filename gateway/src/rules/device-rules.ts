import type { CompiledRules } from './compile.js';
import { LEVEL_NAMES, type LevelName } from './evaluators/levels.js';
import { ratedFlowLimit } from './evaluators/threshold.js';
import type { RuleDef } from './schema.js';
import type { Severity } from './types.js';

/** What decides which rules reach a device and how: its kind, whether it is critical, its rated flow. */
export interface RuleSubject {
  site: string;
  device: string;
  kind: string;
  critical: boolean;
  ratedMaxFlow?: number | undefined;
}

/** One limit on a metric's own value, as a chart draws it. */
export interface EffectiveThreshold {
  rule: string;
  metric: string;
  level: LevelName;
  value: number;
  severity: Severity;
}

/**
 * The rules that apply to one device, as the engine binds them: only those of its kind, with
 * critical-asset settings and site/device overrides merged in, disabled ones left out.
 */
export function rulesForDevice(compiled: CompiledRules, d: RuleSubject): RuleDef[] {
  return compiled.forKind(d.kind).flatMap((r) => {
    const res = compiled.resolve(r, d);
    return res ? [res.def] : [];
  });
}

/**
 * The limits on metric values among a device's effective rules: threshold levels, and the rated
 * flow limit when the device has a rated flow. Rates of change and time-based rules have no line
 * on a value chart, so they are not here.
 */
export function thresholdsOf(rules: readonly RuleDef[], d: RuleSubject): EffectiveThreshold[] {
  const out: EffectiveThreshold[] = [];
  for (const r of rules) {
    if (r.kind === 'threshold') {
      for (const level of LEVEL_NAMES) {
        const l = r[level];
        if (l) out.push({ rule: r.id, metric: r.metric, level, value: l.value, severity: l.severity });
      }
    } else if (r.kind === 'rated-flow' && d.ratedMaxFlow !== undefined) {
      out.push({
        rule: r.id,
        metric: r.metric,
        level: 'high',
        value: ratedFlowLimit(r, d.ratedMaxFlow),
        severity: r.severity,
      });
    }
  }
  return out;
}
