import { useApp } from '../context';
import { FORMS, type FormField } from '../forms';

/** Inputs for one form; the values are the caller's, which sends them with resolve. */
export function CompletionForm(props: {
  form: string;
  values: Record<string, string>;
  onChange: (v: Record<string, string>) => void;
}) {
  const { t } = useApp();
  const fields = FORMS[props.form];
  if (!fields) return null;
  const values = props.values;
  const set = (name: string, value: string) => props.onChange({ ...values, [name]: value });
  const attrs = (f: FormField) => ({
    name: f.name,
    required: f.required,
    value: values[f.name] ?? '',
    onInput: (e: Event) => set(f.name, (e.currentTarget as HTMLInputElement).value),
  });
  return (
    <fieldset class="completion" data-testid="completion-form" data-form={props.form}>
      <legend>{t(`form_${props.form}`)}</legend>
      {fields.map((f) => (
        <label key={f.name}>
          {t(`field_${f.name}`)}
          {f.required ? <span class="muted"> *</span> : null}
          {f.type === 'select' ? (
            <select
              name={f.name}
              value={values[f.name]}
              onChange={(e) => set(f.name, (e.currentTarget as HTMLSelectElement).value)}
            >
              {f.options!.map((o) => (
                <option key={o} value={o}>
                  {o}
                </option>
              ))}
            </select>
          ) : f.type === 'number' ? (
            <input {...attrs(f)} type="number" step="any" min="0" />
          ) : f.type === 'datetime' ? (
            <input {...attrs(f)} type="datetime-local" />
          ) : (
            <input {...attrs(f)} type="text" />
          )}
        </label>
      ))}
    </fieldset>
  );
}
