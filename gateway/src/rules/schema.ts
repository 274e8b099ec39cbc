import { z } from 'zod';
import { DEFAULT_RULE_PACK } from './default-pack.js';
import { deepMerge } from './merge.js';
import { overrideSchema, ruleSchema, type RuleDef } from './rule-schema.js';

export * from './rule-schema.js';

/** The rules config at key `rules`: the default pack (replaceable), custom rules and overrides. */
export const rulesSchema = z
  .strictObject({
    /** The default rule pack of DOMAIN.md; replace it wholesale, or change it with overrides. */
    pack: z.array(ruleSchema).prefault(DEFAULT_RULE_PACK),
    /** Rules added to the pack. */
    custom: z.array(ruleSchema).default([]),
    overrides: z.array(overrideSchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    const byId = new Map<string, RuleDef>();
    const lists = [
      ['pack', cfg.pack],
      ['custom', cfg.custom],
    ] as const;
    for (const [key, list] of lists) {
      list.forEach((r, i) => {
        if (byId.has(r.id))
          ctx.addIssue({ code: 'custom', path: [key, i, 'id'], message: `duplicate rule id ${r.id}` });
        byId.set(r.id, r);
        if (r.critical) checkMerge(ctx, r, r.critical, [key, i, 'critical']);
      });
    }
    cfg.overrides.forEach((o, i) => {
      const r = byId.get(o.rule);
      if (!r)
        ctx.addIssue({ code: 'custom', path: ['overrides', i, 'rule'], message: `unknown rule ${o.rule}` });
      else checkMerge(ctx, r, o.set, ['overrides', i, 'set']);
    });
  });

function checkMerge(
  ctx: z.RefinementCtx,
  rule: RuleDef,
  set: Record<string, unknown>,
  path: (string | number)[],
): void {
  if ('id' in set || 'kind' in set) {
    ctx.addIssue({ code: 'custom', path, message: 'may not change id or kind' });
    return;
  }
  const res = ruleSchema.safeParse(deepMerge(rule, set));
  if (res.success) return;
  for (const issue of res.error.issues) {
    ctx.addIssue({
      code: 'custom',
      path: [...path, ...(issue.path as (string | number)[])],
      message: issue.message,
    });
  }
}

export type RulesConfig = z.infer<typeof rulesSchema>;
export type RulesConfigInput = z.input<typeof rulesSchema>;
/** Parses a rules config (or the defaults for `undefined`); throws a ZodError with key paths. */
export function parseRules(input: unknown = {}): RulesConfig {
  return rulesSchema.parse(input);
}
