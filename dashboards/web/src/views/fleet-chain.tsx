import { useState } from 'preact/hooks';
import type * as S from '../../../../gateway/src/http/schemas/index.js';
import { useApp } from '../context';
import { SaveCancel } from '../widgets';

type Contact = S.Contacts['chain'][number];
/** A contact as the form edits it: every field a string, empty meaning absent. */
type Row = { name: string; webhook: string; email: string; contact: string; language: '' | 'en' | 'zh' };

const rowOf = (c: Contact): Row => ({
  name: c.name,
  webhook: c.webhook ?? '',
  email: c.email ?? '',
  contact: c.contact ?? '',
  language: c.language ?? '',
});

/** The row as the API takes it: empty fields left out, so the gateway's defaults apply. */
function contactOf(r: Row): Contact {
  return {
    name: r.name.trim(),
    ...(r.webhook.trim() ? { webhook: r.webhook.trim() } : {}),
    ...(r.email.trim() ? { email: r.email.trim() } : {}),
    ...(r.contact.trim() ? { contact: r.contact.trim() } : {}),
    ...(r.language ? { language: r.language } : {}),
  };
}

/** The lock shown where the config file pins a value (docs/fleet.md "Pinning"). */
export function PinBadge(props: { pin: string }) {
  const { t } = useApp();
  return (
    <span
      class="pill pin"
      data-testid="pinned"
      data-pin={props.pin}
      title={t('pinnedTitle', { pin: props.pin })}
    >
      <span aria-hidden="true">🔒</span> {t('pinned')}
    </span>
  );
}

/**
 * The escalation chain in force (level 1 first, this week's on-call contact marked) and, for the
 * admin, an editor of the whole chain: add, remove and reorder contacts, saved in one change
 * (`PUT /api/fleet/contacts`). A chain pinned in the config file shows its lock and no editor.
 */
export function FleetChain(props: { contacts: S.Contacts; admin: boolean; onChanged: () => void }) {
  const { t } = useApp();
  const c = props.contacts;
  const [editing, setEditing] = useState(false);
  return (
    <div class="card chain" data-testid="chain">
      <h3>
        {t('chainInForce')} {c.pin && <PinBadge pin={c.pin} />}
      </h3>
      <p data-testid="on-call-week">
        {t('onCallThisWeek', { week: c.week, name: c.onCall?.name ?? c.chain[0]?.name ?? '–' })}
      </p>
      <ol class="chain-list" data-testid="chain-in-force">
        {c.chain.map((k, i) => (
          <li key={`${i}-${k.name}`} data-name={k.name}>
            <b>{k.name}</b>
            {i === 0 && c.onCall && <span class="pill s-info">{t('onCallBadge')}</span>}{' '}
            <span class="muted">{[k.contact, k.email, k.webhook].filter(Boolean).join(' · ')}</span>
          </li>
        ))}
      </ol>
      {props.admin && !c.pin && !editing && (
        <button type="button" class="secondary" data-testid="edit-chain" onClick={() => setEditing(true)}>
          {t('editChain')}
        </button>
      )}
      {editing && (
        <ChainForm
          initial={c.configured}
          onDone={(saved) => {
            setEditing(false);
            if (saved) props.onChanged();
          }}
        />
      )}
    </div>
  );
}

function ChainForm(props: { initial: Contact[]; onDone: (saved: boolean) => void }) {
  const { api, t } = useApp();
  const [rows, setRows] = useState<Row[]>(() => props.initial.map(rowOf));
  const [note, setNote] = useState('');
  const [err, setErr] = useState('');
  const field = (i: number, k: keyof Row) => (e: Event) => {
    const v = (e.currentTarget as HTMLInputElement | HTMLSelectElement).value;
    setRows((rs) => rs.map((r, j) => (j === i ? { ...r, [k]: v } : r)));
  };
  const move = (i: number, by: -1 | 1) =>
    setRows((rs) => {
      const j = i + by;
      if (j < 0 || j >= rs.length) return rs;
      const next = [...rs];
      [next[i], next[j]] = [next[j]!, next[i]!];
      return next;
    });
  const text = (
    i: number,
    k: Exclude<keyof Row, 'language'>,
    label: string,
    mode: 'text' | 'tel' | 'email' = 'text',
  ) => (
    <label>
      {label}
      <input name={k} inputMode={mode} value={rows[i]![k]} onInput={field(i, k)} />
    </label>
  );
  return (
    <form
      class="rule-form chain-form"
      data-testid="chain-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (rows.length === 0 || rows.some((r) => !r.name.trim())) return setErr(t('chainNeedsName'));
        api.setChain(rows.map(contactOf), note.trim() || undefined).then(
          () => props.onDone(true),
          (x: Error) => setErr(x.message),
        );
      }}
    >
      {rows.map((r, i) => (
        <fieldset key={i} data-testid="chain-row" data-index={i} data-name={r.name}>
          <legend>{t('chainLevel', { n: i + 1 })}</legend>
          {text(i, 'name', t('contactName'))}
          {text(i, 'contact', t('contactPhone'), 'tel')}
          {text(i, 'email', t('contactEmail'), 'email')}
          {text(i, 'webhook', t('contactWebhook'))}
          <label>
            {t('contactLanguage')}
            <select name="language" value={r.language} onChange={field(i, 'language')}>
              <option value="">{t('langDefault')}</option>
              <option value="zh">中文</option>
              <option value="en">English</option>
            </select>
          </label>
          <div class="actions">
            <button
              type="button"
              class="secondary"
              data-testid="move-up"
              disabled={i === 0}
              onClick={() => move(i, -1)}
            >
              ↑ {t('moveUp')}
            </button>
            <button
              type="button"
              class="secondary"
              data-testid="move-down"
              disabled={i === rows.length - 1}
              onClick={() => move(i, 1)}
            >
              ↓ {t('moveDown')}
            </button>
            <button
              type="button"
              class="secondary"
              data-testid="remove-contact"
              disabled={rows.length === 1}
              onClick={() => setRows((rs) => rs.filter((_, j) => j !== i))}
            >
              {t('removeContact')}
            </button>
          </div>
        </fieldset>
      ))}
      <button
        type="button"
        class="secondary"
        data-testid="add-contact"
        disabled={rows.length >= 20}
        onClick={() =>
          setRows((rs) => [...rs, { name: '', webhook: '', email: '', contact: '', language: '' }])
        }
      >
        {t('addContact')}
      </button>
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
        testId="save-chain"
        save={t('saveChain')}
        cancel={t('cancel')}
        onCancel={() => props.onDone(false)}
      />
    </form>
  );
}
