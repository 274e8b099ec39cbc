// Maintenance completion forms: which fields a ticket's form has and how their values are sent.
// Pure, so it is tested without a browser.
import { localInput } from './format.js';

/** One field of a maintenance completion form, as the gateway checks it at resolve. */
export interface FormField {
  name: string;
  type: 'datetime' | 'number' | 'select' | 'text';
  required: boolean;
  options?: string[];
}

/**
 * The completion forms a maintenance ticket may demand (`maintenance.form`), field by field as
 * the gateway validates them (docs/workorders.md): tank disinfection records when it was done
 * and how much disinfectant was used (rule: "消毒时间, 消毒灵使用量").
 */
export const FORMS: Record<string, FormField[]> = {
  disinfection: [
    { name: 'disinfectedAt', type: 'datetime', required: true },
    { name: 'amount', type: 'number', required: true },
    { name: 'unit', type: 'select', required: true, options: ['g', 'kg', 'mL', 'L'] },
    { name: 'disinfectant', type: 'text', required: false },
  ],
};

/** The form's values as the API takes them: times in RFC 3339, numbers as numbers, blanks left out. */
export function formValues(
  fields: FormField[],
  raw: Record<string, string>,
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const f of fields) {
    const v = (raw[f.name] ?? '').trim();
    if (v === '') continue;
    out[f.name] = f.type === 'number' ? Number(v) : f.type === 'datetime' ? new Date(v).toISOString() : v;
  }
  return out;
}

/** A form's starting values: done now, by the kilogram. */
export function formDefaults(form: string): Record<string, string> {
  const v: Record<string, string> = {};
  for (const f of FORMS[form] ?? []) {
    if (f.type === 'datetime') v[f.name] = localInput(Date.now());
    if (f.type === 'select') v[f.name] = f.name === 'unit' ? 'kg' : f.options![0]!;
  }
  return v;
}
