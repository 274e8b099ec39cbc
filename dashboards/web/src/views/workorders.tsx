import { Component } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { Ticket } from '../api';
import { can, useApp, useStoreValue } from '../context';
import type { Lang } from '../i18n';
import { ticketTitle } from '../messages';
import { VirtualList } from '../widgets';
import { Calendar } from './calendar';
import { NewTicketForm } from './new-ticket';
import { Sla, TicketDetail } from './ticket-detail';

/** Board columns: the statuses, and held tickets apart whatever their status (their clock is paused). */
const COLUMNS = ['open', 'reopened', 'acknowledged', 'assigned', 'in_progress', 'held', 'resolved'];
const OPTIONAL = new Set(['reopened', 'held']);
const PRIO: Record<string, number> = { critical: 0, high: 1, medium: 2, low: 3 };
const CARD_H = 140;
const COLUMN_MAX_H = 460;

export function WorkOrdersView(props: { id?: string }) {
  const { store, session, t } = useApp();
  // Only a change among the open tickets redraws the board, not every reading.
  const ticketsRev = useStoreValue(store, (s) => s.ticketsRev);
  const [creating, setCreating] = useState(false);
  // Grouped and sorted when a ticket changed, not every second: countdowns tick on their own.
  const { columns, pm } = useMemo(() => {
    const by = new Map<string, Ticket[]>(COLUMNS.map((c) => [c, []]));
    for (const x of store.tickets.values()) {
      const col = x.onHold ? 'held' : x.status;
      if (!by.has(col)) by.set(col, []);
      by.get(col)!.push(x);
    }
    for (const list of by.values())
      list.sort(
        (a, b) =>
          (PRIO[a.priority] ?? 4) - (PRIO[b.priority] ?? 4) ||
          (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0),
      );
    // The calendar asks again when a preventive ticket appears or moves on.
    const pm = [...store.tickets.values()]
      .filter((x) => x.maintenance)
      .map((x) => `${x.id}:${x.status}`)
      .join(',');
    return { columns: [...by.entries()].filter(([c, list]) => list.length > 0 || !OPTIONAL.has(c)), pm };
  }, [ticketsRev]);
  return (
    <section class={`workorders${props.id ? ' with-detail' : ''}`} data-version={ticketsRev}>
      <div class="wo-main">
        <header class="wo-head">
          <h2>{t('board')}</h2>
          {can(session, 'engineer') && !creating && (
            <button data-action="new-ticket" onClick={() => setCreating(true)}>
              + {t('newTicket')}
            </button>
          )}
        </header>
        {creating && (
          <NewTicketForm
            onDone={(x) => {
              setCreating(false);
              if (x) location.hash = `#/workorders/${x.id}`;
            }}
          />
        )}
        <div class="board">
          {columns.map(([status, list]) => (
            <div class={`column col-${status}`} key={status} data-status={status}>
              <h3>
                {status === 'held' ? t('onHold') : t(`status_${status}`)}{' '}
                <span class="count">{list.length}</span>
              </h3>
              <div
                class="column-list"
                style={{ height: `${Math.min(COLUMN_MAX_H, Math.max(1, list.length) * CARD_H)}px` }}
              >
                <VirtualList
                  items={list}
                  heightOf={() => CARD_H}
                  render={(x) => <Card x={x} />}
                  overscan={2}
                />
              </div>
            </div>
          ))}
        </div>
        <Calendar refresh={pm} />
      </div>
      {props.id && <TicketDetail id={props.id} key={props.id} />}
    </section>
  );
}

/** A card renders again only when its ticket (a new object on every change) or the language changed. */
function Card(props: { x: Ticket }) {
  const { t, lang } = useApp();
  return <CardBody x={props.x} lang={lang} t={t} />;
}

class CardBody extends Component<{ x: Ticket; lang: Lang; t: (k: string) => string }> {
  override shouldComponentUpdate(n: { x: Ticket; lang: Lang }): boolean {
    return n.x !== this.props.x || n.lang !== this.props.lang;
  }
  override render() {
    const { x, lang, t } = this.props;
    return (
      <a
        class={`card ticket p-${x.priority}${x.onHold ? ' held' : ''}`}
        href={`#/workorders/${x.id}`}
        data-ticket={x.id}
        data-hold={x.onHold ? 'yes' : 'no'}
      >
        <span class={`pill p-${x.priority}`}>{t(`prio_${x.priority}`)}</span>
        <span class="ticket-title" title={x.title}>
          {ticketTitle(x, lang, false)}
        </span>
        <span class="muted">
          {x.site}
          {x.device ? `/${x.device}` : ''} · {x.assignee ?? '–'}
          {x.escalationLevel > 0 ? ` · L${x.escalationLevel}` : ''}
          {x.onHold ? ` · ${t(`status_${x.status}`)}` : ''}
        </span>
        <Sla x={x} />
      </a>
    );
  }
}
