import { useEffect, useState } from 'preact/hooks';
import type * as S from '../../../../gateway/src/http/schemas/index.js';
import { can, useApp } from '../context';
import { SaveCancel } from '../widgets';

type Hook = S.ChannelsJson['webhooks'][number];
const EVENTS = ['created', 'updated', 'escalated'] as const;

/**
 * Notification channels (docs/fleet.md): the webhooks and the email channel in force, from the
 * file or changed here. Admins add, edit, disable, remove and test them; secrets are write-only, so
 * their fields are never filled in (blank keeps the one set).
 */
export function FleetChannelsView() {
  const { api, t, session } = useApp();
  const admin = can(session, 'admin');
  const [data, setData] = useState<S.ChannelsJson | null>(null);
  const [rev, setRev] = useState(0);
  const [err, setErr] = useState('');
  const [editing, setEditing] = useState<string | null>(null);
  const [verdicts, setVerdicts] = useState<Record<string, string>>({});
  useEffect(() => {
    api.channels().then(setData, (e: Error) => setErr(e.message));
  }, [api, rev]);
  const changed = () => setRev((v) => v + 1);
  const fail = (e: Error) => setErr(e.message);
  const verdictText = (v: string) =>
    v === 'delivered' || v === 'retry' || v === 'dead' ? t(`verdict_${v}`) : v;
  const test = (channel: string) =>
    api.testChannel(channel).then(
      (r) =>
        setVerdicts((v) => ({
          ...v,
          [channel]: `${verdictText(r.verdict)}${r.status !== null ? ` (${r.status})` : ''}${r.error ? `: ${r.error}` : ''}`,
        })),
      fail,
    );
  return (
    <div class="card fleet-channels" data-testid="fleet-channels">
      <h3>{t('channels')}</h3>
      <p class="muted">{t('channelsHint')}</p>
      {err && <p class="error">{err}</p>}
      <h4>{t('webhooks')}</h4>
      {data?.webhooks.length === 0 && <p class="empty">{t('none')}</p>}
      {data?.webhooks.map((w) => (
        <div class="row change" key={w.name} data-webhook={w.name} data-disabled={w.disabled}>
          <span class="channel-line">
            <b>{w.name}</b> <span class="muted channel-url">{w.url}</span>{' '}
            <span class="pill">{t(w.origin === 'file' ? 'origin_file' : 'origin_database')}</span>{' '}
            {w.disabled && <span class="pill s-offline">{t('disabledLabel')}</span>}{' '}
            <span class="muted">{w.secretSet ? t('secretSetLabel') : t('noSecret')}</span>
            {w.usedBy.length > 0 && (
              <span class="muted"> · {t('usedBy', { names: w.usedBy.join(', ') })}</span>
            )}
          </span>
          {verdicts[`webhook:${w.name}`] && (
            <span class="muted" data-testid="test-verdict">
              {t('testVerdict', { verdict: verdicts[`webhook:${w.name}`]! })}
            </span>
          )}
          {admin && editing !== w.name && (
            <span class="actions">
              <button
                type="button"
                class="secondary"
                data-testid="edit-webhook"
                onClick={() => setEditing(w.name)}
              >
                {t('editRule')}
              </button>
              {!w.disabled && (
                <button
                  type="button"
                  class="secondary"
                  data-testid="test-webhook"
                  onClick={() => void test(`webhook:${w.name}`)}
                >
                  {t('sendTest')}
                </button>
              )}
              {w.origin === 'database' && (
                <button
                  type="button"
                  class="secondary"
                  data-testid="remove-webhook"
                  onClick={() => api.removeWebhook(w.name).then(changed, fail)}
                >
                  {t('remove')}
                </button>
              )}
            </span>
          )}
          {editing === w.name && (
            <WebhookForm
              hook={w}
              onDone={(saved) => {
                setEditing(null);
                if (saved) changed();
              }}
            />
          )}
        </div>
      ))}
      {admin && editing !== '' && (
        <button type="button" data-testid="add-webhook" onClick={() => setEditing('')}>
          {t('addWebhook')}
        </button>
      )}
      {editing === '' && (
        <WebhookForm
          onDone={(saved) => {
            setEditing(null);
            if (saved) changed();
          }}
        />
      )}
      {data && (
        <EmailForm email={data.email} admin={admin} onSaved={changed} onTest={() => void test('email')} />
      )}
      {verdicts.email && (
        <p class="muted" data-testid="email-verdict">
          {t('testVerdict', { verdict: verdicts.email })}
        </p>
      )}
    </div>
  );
}

/** One webhook created or edited; the secret and header values are never filled in. */
function WebhookForm(props: { hook?: Hook; onDone: (saved: boolean) => void }) {
  const { api, t } = useApp();
  const h = props.hook;
  const [name, setName] = useState(h?.name ?? '');
  const [url, setUrl] = useState(h?.url ?? '');
  const [secret, setSecret] = useState('');
  const [events, setEvents] = useState<string[]>(
    (h?.events as string[] | undefined)?.map((e) => e.replace('ticket.', '')) ?? [...EVENTS],
  );
  const [headers, setHeaders] = useState(Object.keys(h?.headers ?? {}).map((n) => ({ name: n, value: '' })));
  const [disabled, setDisabled] = useState(h?.disabled ?? false);
  const [err, setErr] = useState('');
  const submit = () => {
    const body: S.WebhookBody = {
      name: name.trim(),
      url: url.trim(),
      ...(secret ? { secret } : {}),
      // All three: every event, as when the list is absent.
      ...(events.length < EVENTS.length ? { events: events.map((e) => `ticket.${e}`) } : {}),
      headers: Object.fromEntries(
        headers.filter((x) => x.name.trim()).map((x) => [x.name.trim(), x.value === '' ? null : x.value]),
      ),
      disabled,
    };
    api.putWebhook(body).then(
      () => props.onDone(true),
      (x: Error) => setErr(x.message),
    );
  };
  const value = (set: (v: string) => void) => (e: Event) => set((e.currentTarget as HTMLInputElement).value);
  return (
    <form
      class="rule-form"
      data-testid="webhook-form"
      autocomplete="off"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label>
        {t('webhookName')}
        <input name="name" value={name} readOnly={h !== undefined} onInput={value(setName)} />
      </label>
      <label>
        {t('webhookUrl')}
        <input name="url" type="url" inputMode="url" value={url} onInput={value(setUrl)} />
      </label>
      <label>
        {t('signingSecret')}
        <input
          name="secret"
          type="password"
          autocomplete="new-password"
          placeholder={h?.secretSet ? t('secretKeep') : ''}
          value={secret}
          onInput={value(setSecret)}
        />
      </label>
      <fieldset>
        <legend>{t('events')}</legend>
        {EVENTS.map((ev) => (
          <label class="check" key={ev}>
            <input
              type="checkbox"
              name={`event-${ev}`}
              checked={events.includes(ev)}
              onChange={(e) =>
                setEvents((xs) =>
                  (e.currentTarget as HTMLInputElement).checked ? [...xs, ev] : xs.filter((x) => x !== ev),
                )
              }
            />
            {t(`ev_${ev}`)}
          </label>
        ))}
      </fieldset>
      {headers.map((x, i) => (
        <div class="header-row" key={i}>
          <label>
            {t('headerName')}
            <input
              name={`header-name-${i}`}
              value={x.name}
              onInput={(e) => {
                const v = (e.currentTarget as HTMLInputElement).value;
                setHeaders((hs) => hs.map((y, j) => (j === i ? { ...y, name: v } : y)));
              }}
            />
          </label>
          <label>
            {t('headerValue')}
            <input
              name={`header-value-${i}`}
              type="password"
              autocomplete="new-password"
              placeholder={t('secretKeep')}
              value={x.value}
              onInput={(e) => {
                const v = (e.currentTarget as HTMLInputElement).value;
                setHeaders((hs) => hs.map((y, j) => (j === i ? { ...y, value: v } : y)));
              }}
            />
          </label>
        </div>
      ))}
      <button
        type="button"
        class="secondary"
        data-testid="add-header"
        onClick={() => setHeaders((hs) => [...hs, { name: '', value: '' }])}
      >
        {t('addHeader')}
      </button>
      {h && (
        <label class="check">
          <input
            type="checkbox"
            name="disabled"
            checked={disabled}
            onChange={(e) => setDisabled((e.currentTarget as HTMLInputElement).checked)}
          />
          {t('disable')}
        </label>
      )}
      {err && <p class="error">{err}</p>}
      <SaveCancel
        testId="save-webhook"
        save={t('save')}
        cancel={t('cancel')}
        onCancel={() => props.onDone(false)}
      />
    </form>
  );
}

/** The email channel: SMTP relay, sender, recipients; the password is never filled in. */
function EmailForm(props: {
  email: S.ChannelsJson['email'];
  admin: boolean;
  onSaved: () => void;
  onTest: () => void;
}) {
  const { api, t } = useApp();
  const e = props.email as S.ChannelsJson['email'] & {
    smtp: { host?: string; port?: number; user?: string };
    from?: string;
    to?: string[];
  };
  const [f, setF] = useState({
    enabled: e.enabled,
    host: e.smtp.host ?? '',
    port: String(e.smtp.port ?? 587),
    user: e.smtp.user ?? '',
    pass: '',
    from: e.from ?? '',
    to: (e.to ?? []).join(', '),
  });
  const [err, setErr] = useState('');
  const text = (k: 'host' | 'port' | 'user' | 'pass' | 'from' | 'to') => (ev: Event) =>
    setF((x) => ({ ...x, [k]: (ev.currentTarget as HTMLInputElement).value }));
  const submit = () => {
    const body: S.EmailBody = {
      enabled: f.enabled,
      smtp: {
        host: f.host.trim(),
        port: Number(f.port),
        ...(f.user.trim() ? { user: f.user.trim() } : {}),
        ...(f.pass ? { pass: f.pass } : {}),
      },
      ...(f.from.trim() ? { from: f.from.trim() } : {}),
      to: f.to
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    };
    api.putEmail(body).then(
      () => {
        setErr('');
        setF((x) => ({ ...x, pass: '' }));
        props.onSaved();
      },
      (x: Error) => setErr(x.message),
    );
  };
  return (
    <form
      class="rule-form"
      data-testid="email-form"
      autocomplete="off"
      onSubmit={(ev) => {
        ev.preventDefault();
        submit();
      }}
    >
      <h4>
        {t('email')} <span class="pill">{t(e.origin === 'file' ? 'origin_file' : 'origin_database')}</span>{' '}
        <span class="muted">{e.smtp.passSet ? t('secretSetLabel') : ''}</span>
      </h4>
      <fieldset disabled={!props.admin}>
        <label class="check">
          <input
            type="checkbox"
            name="emailEnabled"
            checked={f.enabled}
            onChange={(ev) =>
              setF((x) => ({ ...x, enabled: (ev.currentTarget as HTMLInputElement).checked }))
            }
          />
          {t('emailEnabled')}
        </label>
        <label>
          {t('smtpHost')}
          <input name="smtpHost" value={f.host} onInput={text('host')} />
        </label>
        <label>
          {t('smtpPort')}
          <input name="smtpPort" type="number" inputMode="numeric" value={f.port} onInput={text('port')} />
        </label>
        <label>
          {t('smtpUser')}
          <input name="smtpUser" value={f.user} onInput={text('user')} />
        </label>
        {props.admin && (
          <label>
            {t('smtpPass')}
            <input
              name="smtpPass"
              type="password"
              autocomplete="new-password"
              placeholder={e.smtp.passSet ? t('secretKeep') : ''}
              value={f.pass}
              onInput={text('pass')}
            />
          </label>
        )}
        <label>
          {t('mailFrom')}
          <input name="mailFrom" type="email" value={f.from} onInput={text('from')} />
        </label>
        <label>
          {t('mailTo')}
          <input name="mailTo" value={f.to} onInput={text('to')} />
        </label>
      </fieldset>
      {err && <p class="error">{err}</p>}
      {props.admin && (
        <div class="actions">
          <button type="submit" data-testid="save-email">
            {t('save')}
          </button>
          {e.enabled && (
            <button type="button" class="secondary" data-testid="test-email" onClick={props.onTest}>
              {t('sendTest')}
            </button>
          )}
        </div>
      )}
    </form>
  );
}
