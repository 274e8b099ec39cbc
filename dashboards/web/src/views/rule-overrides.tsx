import { useEffect, useState } from 'preact/hooks';
import type { ConfigChange, EffectiveRules } from '../api';
import { can, useApp } from '../context';
import { fmtTime, unitOf } from '../format';
import { ruleName } from '../labels';
import { LEVELS, changedSet, formOf, mergeSet, type FormValues } from '../overrides';
import { PinBadge } from './fleet-chain';
import { SaveCancel } from '../widgets';

type Rule = EffectiveRules['rules'][number];
type Scope = 'device' | 'site' | 'kind';
const SEVERITIES = ['info', 'warning', 'critical'] as const;

/** The badge of where a value comes from: the default pack, or the layer that set it. */
function Source(props: { rule: Rule; path: string }) {
  const { t } = useApp();
  const s = props.rule.sources[props.path];
  const layer = s?.layer ?? 'default';
  return (
    <span
      class={`src src-${layer}${s?.pinned ? ' src-pinned' : ''}`}
      data-source={layer}
      data-pinned={s?.pinned ? 'true' : undefined}
      title={s ? t(`origin_${s.origin}`) : t('src_default')}
    >
      {t(`src_${layer}`)}
    </span>
  );
}

/**
 * A device's threshold rules as they apply to it, each limit with its source (default, kind,
 * site, device); engineers change a rule for this device, its site or its kind, and every change
 * is listed with who made it and can be put back. `onChanged` lets the charts take the new limits.
 */
export function RuleOverrides(props: { device: string; onChanged: () => void }) {
  const { api, t, session, lang } = useApp();
  const [data, setData] = useState<EffectiveRules | null>(null);
  const [changes, setChanges] = useState<ConfigChange[]>([]);
  const [editing, setEditing] = useState<string | null>(null);
  const [rev, setRev] = useState(0);
  const [err, setErr] = useState('');
  const mayEdit = can(session, 'engineer');

  useEffect(() => {
    api.fleetRules(props.device).then(setData, (e: Error) => setErr(e.message));
    api.configHistory({ entity: 'rule-override', limit: 200 }).then(setChanges, () => setChanges([]));
  }, [api, props.device, rev]);

  if (!data) return err ? <p class="error">{err}</p> : null;
  const [site] = props.device.split('/') as [string];
  // The changes that can reach this device: its own, its site's, its kind's.
  const prefixes = [`device:${props.device}:`, `site:${site}:`, `kind:${data.kind}:`];
  const mine = changes.filter((c) => prefixes.some((p) => c.key.startsWith(p)));
  const thresholds = data.rules.filter((r) => r.def.kind === 'threshold');
  const pinned = new Set(data.rules.filter((r) => r.pin).map((r) => r.rule));
  const changed = () => {
    setRev((v) => v + 1);
    props.onChanged();
  };

  return (
    <section class="fleet" data-testid="thresholds">
      <h3>{t('thresholds')}</h3>
      <p class="muted">{t('thresholdsHint')}</p>
      <div class="rule-cards">
        {thresholds.map((r) => (
          <div class="card rule-card" key={r.rule} data-rule={r.rule}>
            <div class="rule-head">
              <b>{ruleName(r.rule, lang) ?? r.rule}</b> <span class="muted">{r.rule}</span>
              {!r.enabled && <span class="pill s-offline">{t('ruleDisabled')}</span>}
              <Source rule={r} path="enabled" />
              {r.pin && <PinBadge pin={r.pin} />}
              {mayEdit && !r.pin && editing !== r.rule && (
                <button
                  type="button"
                  class="secondary"
                  data-testid="edit-rule"
                  onClick={() => setEditing(r.rule)}
                >
                  {t('editRule')}
                </button>
              )}
            </div>
            {editing === r.rule ? (
              <RuleForm
                data={data}
                rule={r}
                onDone={(saved) => {
                  setEditing(null);
                  if (saved) changed();
                }}
              />
            ) : (
              <ul class="levels">
                {LEVELS.filter((l) => r.def[l] !== undefined).map((l) => {
                  const lv = r.def[l] as { value: number; severity: string; hysteresis: number };
                  return (
                    <li key={l} data-level={l} data-value={lv.value}>
                      {t(`level_${l}`)}: <b>{lv.value}</b> {unitOf(r.def.metric as string)}{' '}
                      <Source rule={r} path={`${l}.value`} />{' '}
                      <span class="muted">
                        {t(`sev_${lv.severity}`)} · {t('hysteresis')} {lv.hysteresis}
                      </span>
                    </li>
                  );
                })}
              </ul>
            )}
          </div>
        ))}
      </div>
      <h3>{t('configHistory')}</h3>
      <div data-testid="config-history">
        {mine.length === 0 ? (
          <p class="empty">{t('none')}</p>
        ) : (
          mine.map((c) => (
            <ChangeRow
              c={c}
              key={c.id}
              // A pinned rule's old changes cannot be put back (the gateway answers 409).
              mayRestore={mayEdit && !pinned.has(c.key.split(':')[2] ?? '')}
              onRestored={changed}
            />
          ))
        )}
      </div>
    </section>
  );
}

/** What a change set, in a few words: `low.value 0.5`, or removed. */
function summary(c: ConfigChange, t: (k: string) => string): string {
  const after = c.after as { set?: Record<string, unknown> } | null;
  if (!after) return t('removed');
  return `${t('created')} ${JSON.stringify(after.set ?? {})}`;
}

function ChangeRow(props: { c: ConfigChange; mayRestore: boolean; onRestored: () => void }) {
  const { api, t, lang } = useApp();
  const { c } = props;
  const [err, setErr] = useState('');
  return (
    <div class="row change" data-change={c.id} data-key={c.key}>
      <span>
        <b>{c.key}</b> {summary(c, t)}
      </span>
      <span class="muted">
        {t('changedBy', { actor: c.actor, t: fmtTime(c.at, lang) })}
        {c.note ? ` · ${c.note}` : ''}
      </span>
      {props.mayRestore && (
        <button
          type="button"
          class="secondary"
          data-testid="restore"
          onClick={() =>
            api.restoreChange(c.id).then(
              () => props.onRestored(),
              (e: Error) => setErr(e.message),
            )
          }
        >
          {t('restore')}
        </button>
      )}
      {err && <span class="error">{err}</span>}
    </div>
  );
}

function RuleForm(props: { data: EffectiveRules; rule: Rule; onDone: (saved: boolean) => void }) {
  const { api, t } = useApp();
  const { data, rule } = props;
  const def = rule.def;
  const [scope, setScope] = useState<Scope>('device');
  const [form, setForm] = useState<FormValues>(() => formOf(def));
  const [note, setNote] = useState('');
  const [err, setErr] = useState('');
  const target =
    scope === 'device' ? `${data.site}/${data.device}` : scope === 'site' ? data.site : data.kind;
  const set = (k: string) => (e: Event) => {
    const el = e.currentTarget as HTMLInputElement | HTMLSelectElement;
    const v = el instanceof HTMLInputElement && el.type === 'checkbox' ? String(el.checked) : el.value;
    setForm((f) => ({ ...f, [k]: v }));
  };
  const num = (k: string, label: string) => (
    <label>
      {label}
      <input name={k} type="number" step="any" inputMode="decimal" value={form[k] ?? ''} onInput={set(k)} />
    </label>
  );
  return (
    <form
      class="rule-form"
      data-testid="rule-form"
      onSubmit={(e) => {
        e.preventDefault();
        const { set: patch, bad } = changedSet(def, form);
        if (bad.length) return setErr(bad.join(', '));
        if (Object.keys(patch).length === 0) return setErr(t('nothingChanged'));
        const existing = data.overrides.find(
          (o) => o.scope === scope && o.target === target && o.rule === rule.rule,
        );
        api
          .putOverride({
            scope,
            target,
            rule: rule.rule,
            set: mergeSet(existing?.set ?? {}, patch),
            ...(note.trim() ? { note: note.trim() } : {}),
          })
          .then(
            () => props.onDone(true),
            (x: Error) => setErr(x.message),
          );
      }}
    >
      <label>
        {t('scope')}
        <select
          name="scope"
          value={scope}
          onChange={(e) => setScope((e.currentTarget as HTMLSelectElement).value as Scope)}
        >
          <option value="device">{t('scope_device')}</option>
          <option value="site">{t('scope_site', { site: data.site })}</option>
          <option value="kind">{t('scope_kind', { kind: data.kind })}</option>
        </select>
      </label>
      {LEVELS.filter((l) => def[l] !== undefined).map((l) => (
        <fieldset key={l} data-level={l}>
          <legend>{t(`level_${l}`)}</legend>
          {num(`${l}.value`, t('limit'))}
          {num(`${l}.hysteresis`, t('hysteresis'))}
          {num(`${l}.onDelayMs`, t('onDelayS'))}
          {num(`${l}.offDelayMs`, t('offDelayS'))}
          <label>
            {t('severity')}
            <select name={`${l}.severity`} value={form[`${l}.severity`]} onChange={set(`${l}.severity`)}>
              {SEVERITIES.map((s) => (
                <option value={s} key={s}>
                  {t(`sev_${s}`)}
                </option>
              ))}
            </select>
          </label>
        </fieldset>
      ))}
      <label class="check">
        <input name="enabled" type="checkbox" checked={form.enabled === 'true'} onChange={set('enabled')} />
        {t('ruleEnabled')}
      </label>
      <label>
        {t('changeNote')}
        <input
          name="note"
          value={note}
          maxLength={500}
          onInput={(e) => setNote((e.currentTarget as HTMLInputElement).value)}
        />
      </label>
      {err && (
        <p class="error" role="alert">
          {err}
        </p>
      )}
      <SaveCancel
        testId="save-override"
        save={t('save')}
        cancel={t('cancel')}
        onCancel={() => props.onDone(false)}
      />
    </form>
  );
}
