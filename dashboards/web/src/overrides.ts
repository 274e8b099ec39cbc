// What the threshold form sends: the fields a person changed, as an override's `set`, merged
// into what the chosen scope already overrides. Pure, so it is tested without a browser.

export const LEVELS = ['lowLow', 'low', 'high', 'highHigh'] as const;
export type Level = (typeof LEVELS)[number];
export const LEVEL_FIELDS = ['value', 'hysteresis', 'severity', 'onDelayMs', 'offDelayMs'] as const;
export type LevelField = (typeof LEVEL_FIELDS)[number];

/** The form's values: `low.value` → "0.3", `enabled` → "true". Delays are shown in seconds. */
export type FormValues = Record<string, string>;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The form's starting values from a rule's effective definition. */
export function formOf(def: Obj): FormValues {
  const out: FormValues = { enabled: String(def.enabled !== false) };
  for (const l of LEVELS) {
    const lv = def[l];
    if (!isObj(lv)) continue;
    for (const f of LEVEL_FIELDS) {
      const v = lv[f];
      if (v === undefined) continue;
      out[`${l}.${f}`] = f.endsWith('DelayMs') ? String(Number(v) / 1000) : String(v);
    }
  }
  return out;
}

/**
 * The fields that differ from the effective definition, as a partial rule (`{low: {value: 0.5}}`).
 * A number that does not parse is returned as a problem instead; the gateway checks the rest.
 */
export function changedSet(def: Obj, form: FormValues): { set: Obj; bad: string[] } {
  const before = formOf(def);
  const set: Obj = {};
  const bad: string[] = [];
  for (const [k, raw] of Object.entries(form)) {
    const v = raw.trim();
    if (v === before[k]) continue;
    if (k === 'enabled') {
      set.enabled = v === 'true';
      continue;
    }
    const [level, field] = k.split('.') as [Level, LevelField];
    let value: unknown = v;
    if (field !== 'severity') {
      const n = Number(v);
      if (v === '' || !Number.isFinite(n)) {
        bad.push(k);
        continue;
      }
      value = field.endsWith('DelayMs') ? Math.round(n * 1000) : n;
    }
    const lv = (set[level] as Obj | undefined) ?? {};
    lv[field] = value;
    set[level] = lv;
  }
  return { set, bad };
}

/** `patch` merged into `base` key by key (a level keeps what it already overrode). */
export function mergeSet(base: Obj, patch: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const cur = out[k];
    out[k] = isObj(cur) && isObj(v) ? mergeSet(cur, v) : v;
  }
  return out;
}
