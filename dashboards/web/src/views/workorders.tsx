import { useEffect, useState } from 'preact/hooks';
import { ApiError, listOf, type CalendarEntry, type Ticket } from '../api';
import { can, useApp, useStoreVersion } from '../context';
import { fmtDuration, fmtTime } from '../format';
import { slaOf } from '../sla';
import { useNow } from '../widgets';

const COLUMNS = ['open', 'reopened', 'acknowledged', 'assigned', 'in_progress', 'on_hold', 'resolved'];
const PRIO: Record<string, number> = { critical: 0, high: 1, medium: 2, low: 3 };

function Sla(props: { x: Ticket; now: number }) {
  const { t } = useApp();
  const s = slaOf(props.x, props.now);
  if (!s) return null;
  return (
    <span class={`sla ${s.cls}`} data-sla={s.cls}>
      {t(s.label)}: {s.left > 0 ? `${fmtDuration(s.left)}` : `${t('overdue')} ${fmtDuration(s.left)}`}
    </span>
  );
}

export function WorkOrdersView(props: { id?: string }) {
  const { store, t } = useApp();
  const version = useStoreVersion(store);
  const now = useNow(1000);
  const byStatus = new Map<string, Ticket[]>(COLUMNS.map((c) => [c, []]));
  for (const x of store.tickets.values()) {
    if (!byStatus.has(x.status)) byStatus.set(x.status, []);
    byStatus.get(x.status)!.push(x);
  }
  for (const list of byStatus.values())
    list.sort(
      (a, b) => (PRIO[a.priority] ?? 4) - (PRIO[b.priority] ?? 4) || a.createdAt.localeCompare(b.createdAt),
    );
  return (
    <section class="workorders" data-version={version}>
      <h2>{t('board')}</h2>
      <div class="board">
        {[...byStatus.entries()].map(([status, list]) =>
          list.length === 0 && (status === 'on_hold' || status === 'reopened') ? null : (
            <div class="column" key={status} data-status={status}>
              <h3>
                {t(`status_${status}`)} <span class="count">{list.length}</span>
              </h3>
              {list.map((x) => (
                <a
                  class={`card ticket p-${x.priority}`}
                  href={`#/workorders/${x.id}`}
                  key={x.id}
                  data-ticket={x.id}
                >
                  <span class={`pill p-${x.priority}`}>{t(`prio_${x.priority}`)}</span>
                  <span class="ticket-title">{x.title}</span>
                  <span class="muted">
                    {x.site}
                    {x.device ? `/${x.device}` : ''} · {x.assignee ?? '–'}
                    {x.escalationLevel > 0 ? ` · L${x.escalationLevel}` : ''}
                  </span>
                  <Sla x={x} now={now} />
                </a>
              ))}
            </div>
          ),
        )}
      </div>
      {props.id && <TicketDetail id={props.id} />}
      <Calendar />
    </section>
  );
}

function parseForm(text: string): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim();
    const v = line.slice(i + 1).trim();
    out[k] = v !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
  }
  return Object.keys(out).length ? out : undefined;
}

function TicketDetail(props: { id: string }) {
  const { api, store, session, t } = useApp();
  const version = useStoreVersion(store);
  const now = useNow(1000);
  const [x, setX] = useState<Ticket | null>(null);
  const [err, setErr] = useState('');
  const [assignee, setAssignee] = useState(session.name);
  const [note, setNote] = useState('');
  const [form, setForm] = useState('');
  const live = store.tickets.get(props.id);
  useEffect(() => {
    api.ticket(props.id).then(setX, (e: Error) => setErr(e.message));
  }, [api, props.id, live?.status, live?.assignee, live?.verifiedBy, version > 0 && live === undefined]);
  if (!x) return <div class="drawer">{err || '…'}</div>;
  const act = (action: string) => {
    setErr('');
    const body: { action: string; assignee?: string; note?: string; form?: Record<string, unknown> } = {
      action,
    };
    if (action === 'assign') body.assignee = assignee;
    if (note) body.note = note;
    if (action === 'resolve') {
      const f = parseForm(form);
      if (f) body.form = f;
    }
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
    <aside class="drawer" data-testid="ticket-detail" data-status={x.status}>
      <header>
        <span class={`pill p-${x.priority}`}>{t(`prio_${x.priority}`)}</span>
        <h3>{x.title}</h3>
        <a class="close" href="#/workorders" aria-label={t('close')}>
          ×
        </a>
      </header>
      <p class="muted">
        {x.id} · {x.site}
        {x.device ? `/${x.device}` : ''} · <b data-testid="ticket-status">{t(`status_${x.status}`)}</b> ·{' '}
        {x.assignee ?? '–'}
      </p>
      <Sla x={x} now={now} />
      {can(session, 'engineer') && actions.length > 0 && (
        <div class="ticket-actions">
          {actions.includes('assign') && (
            <label>
              {t('assignee')}{' '}
              <input
                value={assignee}
                onInput={(e) => setAssignee((e.currentTarget as HTMLInputElement).value)}
              />
            </label>
          )}
          <label>
            {t('note')}{' '}
            <input
              name="note"
              value={note}
              onInput={(e) => setNote((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
          {actions.includes('resolve') && (
            <label class="form">
              {t('form')}
              <textarea
                rows={3}
                value={form}
                onInput={(e) => setForm((e.currentTarget as HTMLTextAreaElement).value)}
              />
            </label>
          )}
          <div class="buttons">
            {actions.map((a) => (
              <button
                key={a}
                data-action={a}
                class={a === 'comment' ? 'secondary' : ''}
                onClick={() => act(a)}
              >
                {t(`action_${a}`)}
              </button>
            ))}
          </div>
        </div>
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
            <span class="muted">{fmtTime(h.ts)}</span> <b>{h.actor}</b> {h.action}
            {h.to && h.from !== h.to ? ` → ${t(`status_${h.to}`)}` : ''} {h.note ? `: ${h.note}` : ''}
          </li>
        ))}
      </ol>
    </aside>
  );
}

function Calendar() {
  const { api, t } = useApp();
  const [entries, setEntries] = useState<CalendarEntry[] | null | 'na'>(null);
  useEffect(() => {
    const from = new Date(Date.now() - 7 * 86_400_000).toISOString();
    const to = new Date(Date.now() + 35 * 86_400_000).toISOString();
    api.calendar(from, to).then(
      (r) => setEntries(listOf<CalendarEntry>(r as CalendarEntry[])),
      (e: unknown) => setEntries(e instanceof ApiError && e.status === 404 ? 'na' : []),
    );
  }, [api]);
  return (
    <div class="calendar" data-testid="calendar">
      <h2>{t('calendar')}</h2>
      {entries === 'na' ? (
        <p class="notice">{t('notAvailable')}</p>
      ) : entries === null ? (
        <p class="muted">…</p>
      ) : entries.length === 0 ? (
        <p class="empty">{t('none')}</p>
      ) : (
        <ul class="cal-list">
          {entries.slice(0, 200).map((e, i) => (
            <li key={i} class={`cal-${e.status}`}>
              <span class="cal-date">{fmtTime(e.dueAt)}</span> <b>{e.title}</b>{' '}
              <span class="muted">
                {e.site}
                {e.device ? `/${e.device}` : ''} · {e.status}
              </span>{' '}
              {e.ticketId && <a href={`#/workorders/${e.ticketId}`}>{e.ticketId}</a>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
