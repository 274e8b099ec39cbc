import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, type CalendarEntry } from '../api';
import { useApp } from '../context';
import type { Lang } from '../i18n';
import { scheduleName } from '../labels';
import { occurrenceStatus } from '../occurrence';
import { VirtualList } from '../widgets';

const DAY_H = 34;
const ENTRY_H = 40;
const LIST_MAX_H = 440;

type Row = { type: 'day'; day: string; today: boolean } | { type: 'entry'; e: CalendarEntry };

/** `YYYY-MM-DD` of an instant in the browser's time zone (days are the reader's days). */
function dayOf(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

const DAY_MS = 86_400_000;
/** The calendar shows six weeks at a time, from a Monday. */
const WEEKS = 6;

function mondayOf(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  return d.getTime();
}

const dateLabel = (ms: number, lang: Lang): string =>
  new Date(ms).toLocaleDateString(lang, { year: 'numeric', month: 'short', day: 'numeric' });

/** The preventive-maintenance calendar: six weeks as an agenda grouped by day, each occurrence's status. */
export function Calendar(props: { refresh?: string }) {
  const { api, store, t, lang } = useApp();
  const [start, setStart] = useState(() => mondayOf(Date.now()));
  const end = start + WEEKS * 7 * DAY_MS;
  const [entries, setEntries] = useState<CalendarEntry[] | null | 'na'>(null);
  useEffect(() => {
    api.calendar(new Date(start).toISOString(), new Date(end).toISOString()).then(
      (r) => setEntries(r.occurrences),
      (e: unknown) => setEntries(e instanceof ApiError && e.status === 404 ? 'na' : []),
    );
  }, [api, start, props.refresh]);
  const rows = useMemo(() => {
    const out: Row[] = [];
    if (!Array.isArray(entries)) return out;
    const today = dayOf(Date.now());
    let last = '';
    for (const e of entries) {
      const day = dayOf(Date.parse(e.dueAt));
      if (day !== last) out.push({ type: 'day', day, today: day === today });
      last = day;
      out.push({ type: 'entry', e });
    }
    return out;
  }, [entries]);
  const height = Math.min(
    LIST_MAX_H,
    rows.reduce((h, r) => h + (r.type === 'day' ? DAY_H : ENTRY_H), 0),
  );
  const now = Date.now();
  // Whole weeks: a day's occurrences are never split across two pages.
  const shift = (n: number) => setStart((s) => mondayOf(s + n * WEEKS * 7 * DAY_MS + DAY_MS / 2));
  return (
    <div class="calendar" data-testid="calendar">
      <header class="cal-head">
        <h2>{t('calendar')}</h2>
        <button class="secondary" aria-label="earlier" onClick={() => shift(-1)}>
          ‹
        </button>
        <b data-testid="cal-range">
          {dateLabel(start, lang)} – {dateLabel(end - DAY_MS, lang)}
        </b>
        <button class="secondary" aria-label="later" onClick={() => shift(1)}>
          ›
        </button>
      </header>
      {entries === 'na' ? (
        <p class="notice">{t('notAvailable')}</p>
      ) : entries === null ? (
        <p class="muted">…</p>
      ) : entries.length === 0 ? (
        <p class="empty">{t('none')}</p>
      ) : (
        <div class="cal-list" style={{ height: `${height}px` }}>
          <VirtualList
            items={rows}
            heightOf={(r) => (r.type === 'day' ? DAY_H : ENTRY_H)}
            render={(r) =>
              r.type === 'day' ? (
                <div class={`cal-day${r.today ? ' today' : ''}`} data-day={r.day}>
                  {new Date(`${r.day}T12:00:00`).toLocaleDateString(lang, {
                    weekday: 'short',
                    month: 'short',
                    day: 'numeric',
                  })}
                  {r.today ? ` · ${t('today')}` : ''}
                </div>
              ) : (
                <CalEntry
                  e={r.e}
                  lang={lang}
                  status={occurrenceStatus(
                    r.e,
                    r.e.ticketId ? store.tickets.get(r.e.ticketId)?.resolveDueAt : null,
                    now,
                  )}
                />
              )
            }
          />
        </div>
      )}
    </div>
  );
}

function CalEntry(props: { e: CalendarEntry; lang: Lang; status: { key: string; cls: string } }) {
  const { t } = useApp();
  const { e, lang } = props;
  const time = new Date(e.dueAt).toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' });
  return (
    <div class="cal-entry" data-schedule={e.schedule} data-status={props.status.cls}>
      <span class="cal-time">{time}</span>
      <span class={`pill ${props.status.cls}`}>{t(props.status.key)}</span>
      <b class="cal-title">{scheduleName(e.schedule, lang) ?? e.title}</b>
      <span class="muted">
        {e.site}
        {e.device ? `/${e.device}` : ''}
      </span>
      {e.ticketId && <a href={`#/workorders/${e.ticketId}`}>{e.ticketId}</a>}
    </div>
  );
}
