import { useEffect, useState } from 'preact/hooks';
import type { ApiError, Ticket, TicketAction, TicketActionBody } from '../api';
import { can, useApp } from '../context';
import { fmtDuration, fmtTime } from '../format';
import { historyNote, ticketTitle } from '../messages';
import { slaOf } from '../sla';
import { Field, useNow } from '../widgets';
import { FORMS, formDefaults, formValues } from '../forms';
import { CompletionForm } from './completion-form';

/** A ticket's running deadline; only this re-renders every second, not the board. */
export function Sla(props: { x: Ticket }) {
  const { t, lang } = useApp();
  const now = useNow();
  const s = slaOf(props.x, now);
  if (!s) return null;
  const text =
    s.label === 'held'
      ? t('clockPaused', { left: fmtDuration(s.left, lang) })
      : `${t(s.label)}: ${s.left > 0 ? fmtDuration(s.left, lang) : `${t('overdue')} ${fmtDuration(s.left, lang)}`}`;
  return (
    <span class={`sla ${s.cls}`} data-sla={s.cls}>
      {text}
    </span>
  );
}

const historyAction = (t: (k: string) => string, action: string): string => {
  const k = `action_${action}`;
  const s = t(k);
  return s === k ? action : s;
};

export function TicketDetail(props: { id: string }) {
  const { api, store, session, t, lang } = useApp();
  const [x, setX] = useState<Ticket | null>(null);
  const [err, setErr] = useState('');
  const [assignee, setAssignee] = useState(session.name);
  const [note, setNote] = useState('');
  const [form, setForm] = useState<Record<string, string>>({});
  const live = store.tickets.get(props.id);
  useEffect(() => {
    api.ticket(props.id).then(
      (next) => {
        setX(next);
        setErr('');
      },
      (e: Error) => setErr(e.message),
    );
  }, [api, props.id, live?.status, live?.assignee, live?.verifiedBy, live?.onHold, live?.escalationLevel]);
  const formName = x?.maintenance?.form;
  useEffect(() => setForm(formName ? formDefaults(formName) : {}), [props.id, formName]);
  if (!x)
    return (
      <aside class="detail" data-testid="ticket-detail-loading">
        {err || '…'}
      </aside>
    );
  const fields = formName ? FORMS[formName] : undefined;
  const act = (action: TicketAction) => {
    setErr('');
    const body: TicketActionBody = { action };
    if (action === 'assign') body.assignee = assignee;
    if (note) body.note = note;
    if (action === 'resolve' && fields) body.form = formValues(fields, form);
    api.act(x.id, body).then(
      (next) => {
        setX(next);
        store.putTicket(next);
        setNote('');
      },
      (e: ApiError) => setErr(e.message),
    );
  };
  const actions = x.allowedActions ?? [];
  return (
    <aside
      class="detail"
      data-testid="ticket-detail"
      data-status={x.status}
      data-hold={x.onHold ? 'yes' : 'no'}
    >
      <header>
        <span class={`pill p-${x.priority}`}>{t(`prio_${x.priority}`)}</span>
        <h3 title={x.title}>{ticketTitle(x, lang)}</h3>
        <a class="close" href="#/workorders" aria-label={t('close')}>
          ×
        </a>
      </header>
      <p class="muted">
        {x.id} · {x.site}
        {x.device ? `/${x.device}` : ''} · <b data-testid="ticket-status">{t(`status_${x.status}`)}</b>
        {x.onHold ? (
          <>
            {' · '}
            <b class="held">{t('onHold')}</b> ({t('heldSince', { t: fmtTime(x.heldSince, lang) })}
            {x.holdReason ? `, ${x.holdReason.replace(/_/g, ' ')}` : ''})
          </>
        ) : null}{' '}
        · {x.assignee ?? '–'}
      </p>
      <Sla x={x} />
      {x.maintenance?.record && (
        <dl class="record">
          {Object.entries(x.maintenance.record)
            .filter(([k]) => k !== 'form')
            .map(([k, v]) => (
              <div key={k}>
                <dt>{t(`field_${k}`)}</dt>
                <dd>{k === 'disinfectedAt' ? fmtTime(String(v), lang) : String(v)}</dd>
              </div>
            ))}
        </dl>
      )}
      {can(session, 'engineer') && actions.length > 0 && (
        <form class="ticket-actions" onSubmit={(e) => e.preventDefault()}>
          {actions.includes('assign') && (
            <Field label={t('assignee')} name="assignee" value={assignee} onValue={setAssignee} />
          )}
          <Field label={t('note')} name="note" value={note} onValue={setNote} />
          {actions.includes('resolve') && formName && fields && (
            <CompletionForm form={formName} values={form} onChange={setForm} />
          )}
          <div class="buttons">
            {actions.map((a) => (
              <button
                key={a}
                type="button"
                data-action={a}
                class={a === 'comment' || a === 'hold' ? 'secondary' : ''}
                onClick={() => act(a)}
              >
                {t(`action_${a}`)}
              </button>
            ))}
          </div>
        </form>
      )}
      {err && (
        <p class="error" data-testid="ticket-error">
          {err}
        </p>
      )}
      <h4>{t('history')}</h4>
      <ol class="history">
        {(x.history ?? []).map((h, i) => (
          <li key={i}>
            <span class="muted">{fmtTime(h.ts, lang)}</span> <b>{h.actor}</b> {historyAction(t, h.action)}
            {h.to && h.from !== h.to ? ` → ${t(`status_${h.to}`)}` : ''}{' '}
            {h.note ? `: ${historyNote(h.note, x.rule, lang)}` : ''}
          </li>
        ))}
      </ol>
    </aside>
  );
}
