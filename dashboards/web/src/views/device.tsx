import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, type Alarm, type DeviceRules, type Threshold, type Ticket } from '../api';
import { MetricChart, type Series } from '../chart';
import { useApp, useStoreValue } from '../context';
import { qualityIn } from '../quality';
import { fmtDuration, fmtTime, localInput, unitOf } from '../format';
import { kindName, metricName } from '../labels';
import { ticketTitle } from '../messages';
import { Field, ValueText, useWidth } from '../widgets';
import { AlarmRow } from './alarms';
import { RuleOverrides } from './rule-overrides';
import { ShelveDialog } from './shelve';

const HOUR = 3600_000;
export const RANGES: Record<string, number> = {
  '1h': HOUR,
  '6h': 6 * HOUR,
  '24h': 24 * HOUR,
  '7d': 7 * 24 * HOUR,
  '30d': 30 * 24 * HOUR,
};
const MAX_LIVE_POINTS = 5000;
/** As in style.css `.charts`: the narrowest chart and the gap between charts. */
const CHART_MIN_W = 420;
const CHART_GAP = 12;
/** The y axis and the card's padding take this much of a chart's width. */
const CHART_CHROME = 76;

const empty = (): Series => [[], [], [], []];

/** A range picked from the presets (ending now, live points join) or from/to given by hand. */
type Range = { preset: string } | { from: number; to: number };

function RangePicker(props: { range: Range; onChange: (r: Range) => void }) {
  const { t } = useApp();
  const custom = !('preset' in props.range);
  const [from, setFrom] = useState(localInput(Date.now() - 24 * HOUR));
  const [to, setTo] = useState(localInput(Date.now()));
  const [open, setOpen] = useState(custom);
  return (
    <div class="range">
      <label>
        {t('range')}{' '}
        <select
          data-testid="range"
          value={open ? 'custom' : 'preset' in props.range ? props.range.preset : 'custom'}
          onChange={(e) => {
            const v = (e.currentTarget as HTMLSelectElement).value;
            setOpen(v === 'custom');
            if (v !== 'custom') props.onChange({ preset: v });
          }}
        >
          {Object.keys(RANGES).map((r) => (
            <option key={r} value={r}>
              {t(`range_${r}`)}
            </option>
          ))}
          <option value="custom">{t('range_custom')}</option>
        </select>
      </label>
      {open && (
        <form
          class="custom-range"
          data-testid="custom-range"
          onSubmit={(e) => {
            e.preventDefault();
            const a = Date.parse(from);
            const b = Date.parse(to);
            if (a < b) props.onChange({ from: a, to: b });
          }}
        >
          <Field label={t('from')} name="from" datetime required value={from} onValue={setFrom} />
          <Field label={t('to')} name="to" datetime required min={from} value={to} onValue={setTo} />
          <button type="submit">{t('apply')}</button>
        </form>
      )}
    </div>
  );
}

export function DeviceView(props: { id: string }) {
  const { api, store, t, lang } = useApp();
  const key = props.id;
  // This device's revision: bumped by its readings and state changes, not by other devices'.
  const rev = useStoreValue(store, (s) => s.rev(key));
  const d = store.devices.get(key);
  const [range, setRange] = useState<Range>({ preset: '1h' });
  const [rules, setRules] = useState<DeviceRules | null>(null);
  const [noHistory, setNoHistory] = useState('');
  const [bucket, setBucket] = useState<number | null>(null);
  const [alarms, setAlarms] = useState<Alarm[]>([]);
  const [tickets, setTickets] = useState<Ticket[]>([]);
  const [shelving, setShelving] = useState<Alarm | null>(null);
  const series = useRef(new Map<string, Series>());
  /** Per metric, the instants (epoch s) of values that are not good: marked, never drawn as values. */
  const notGood = useRef(new Map<string, number[]>());
  // Bumped when `series` gets new arrays (a range's history): only to render the charts again.
  const [, setDataVersion] = useState(0);
  // 0 until measured: the history is asked for once, at the charts' real width.
  const [setChartsEl, chartsW] = useWidth(0);
  const cols = Math.max(1, Math.floor((chartsW + CHART_GAP) / (CHART_MIN_W + CHART_GAP)));
  // About one bucket per pixel of a chart's plot area.
  const points = Math.max(
    50,
    Math.round(((chartsW - CHART_GAP * (cols - 1)) / cols - CHART_CHROME) / 10) * 10,
  );
  const [site, id] = key.split('/') as [string, string];

  const metrics = useMemo(
    () =>
      d
        ? Object.keys(d.latest)
            .filter((m) => typeof d.latest[m]?.value === 'number')
            .sort()
        : [],
    [d, rev],
  );
  const metricKey = metrics.join(',');

  useEffect(() => {
    api.rules(key).then(setRules, () => setRules(null));
  }, [api, key]);

  // The device's own alarms and work orders, asked of the gateway again when one of them changed.
  const events = useStoreValue(store, (s) => s.eventRevs.get(key) ?? 0);
  useEffect(() => {
    api.alarms({ state: 'all', site, device: id, limit: 50 }).then(setAlarms, () => setAlarms([]));
    api.tickets({ site, device: id }).then(setTickets, () => setTickets([]));
  }, [api, key, events]);

  const thresholds = useMemo(() => {
    const by = new Map<string, Threshold[]>();
    for (const th of rules?.thresholds ?? []) {
      let list = by.get(th.metric);
      if (!list) by.set(th.metric, (list = []));
      list.push(th);
    }
    return by;
  }, [rules]);

  // History for the range (downsampled by the gateway to the charts' width), then live readings
  // appended as they come when the range ends now.
  const rangeKey = 'preset' in range ? range.preset : `${range.from}-${range.to}`;
  useEffect(() => {
    if (chartsW === 0) return undefined;
    let cancelled = false;
    const live = 'preset' in range;
    const to = live ? Date.now() : range.to;
    const from = live ? to - RANGES[range.preset]! : range.from;
    const next = new Map<string, Series>();
    for (const m of metrics) {
      const l = d?.latest[m];
      next.set(
        m,
        live && l && typeof l.value === 'number' ? [[l.ts / 1000], [l.value], [l.value], [l.value]] : empty(),
      );
    }
    series.current = next;
    notGood.current = new Map(metrics.map((m) => [m, []]));
    setDataVersion((v) => v + 1);
    Promise.all(
      metrics.map(async (m) => {
        const h = await api.readings(key, m, from, to, points);
        const s = empty();
        for (const p of h.points) {
          if (typeof p.value !== 'number') continue;
          s[0].push(p.ts / 1000);
          s[1].push(p.value);
          s[2].push(typeof p.min === 'number' ? p.min : p.value);
          s[3].push(typeof p.max === 'number' ? p.max : p.value);
        }
        if (!cancelled && (s[0].length > 0 || !live)) series.current.set(m, s);
        if (!cancelled)
          notGood.current.set(
            m,
            (h.notGood ?? []).map((x) => x.ts / 1000),
          );
        return h.interval;
      }),
    ).then(
      (intervals) => {
        if (cancelled) return;
        setNoHistory('');
        setBucket(intervals[0] ?? null);
        setDataVersion((v) => v + 1);
      },
      (err: unknown) => {
        if (!cancelled && err instanceof ApiError) setNoHistory(err.message);
      },
    );
    if (!live)
      return () => {
        cancelled = true;
      };
    const off = store.onReading(key, (r) => {
      const ts = Date.parse(r.ts) / 1000;
      for (const [m, v] of Object.entries(r.values)) {
        if (typeof v !== 'number') continue;
        if (qualityIn(r, m) !== 'good') {
          const marks = notGood.current.get(m);
          if (marks) {
            marks.push(ts);
            if (marks.length > MAX_LIVE_POINTS) marks.shift();
          }
          continue;
        }
        let s = series.current.get(m);
        if (!s) series.current.set(m, (s = empty()));
        s[0].push(ts);
        s[1].push(v);
        s[2].push(v);
        s[3].push(v);
        if (s[0].length > MAX_LIVE_POINTS) for (const col of s) col.shift();
      }
    });
    return () => {
      cancelled = true;
      off();
    };
  }, [api, key, rangeKey, metricKey, points]);

  if (!d) return <p class="empty">{t('none')}</p>;
  const state = store.states.get(d.key) ?? store.tileState(d);
  return (
    <section class="device">
      <header class="device-head">
        <h2>
          <span class={`dot s-${state}`} /> {d.site} / {d.name ?? d.id}
        </h2>
        <span class={`pill s-${state}`} data-testid="device-state">
          {t(state)}
        </span>
        <span class="muted">{kindName(d.kind, lang)}</span>
        <span class="muted">{d.location ?? ''}</span>
        {bucket !== null && (
          <span class="muted" data-testid="interval">
            {t('perPoint', { d: fmtDuration(bucket, lang) })}
          </span>
        )}
        <RangePicker range={range} onChange={setRange} />
      </header>
      {noHistory && (
        <p class="notice" title={noHistory}>
          {t('noHistory')}
        </p>
      )}
      <div class="charts" ref={setChartsEl}>
        {metrics.map((m) => (
          <div class="chart-card" key={m}>
            <h3>
              {metricName(m, lang)}{' '}
              <b>
                <ValueText v={d.latest[m]} t={t} lang={lang} />
              </b>{' '}
              <small>{unitOf(m)}</small>
            </h3>
            <MetricChart
              metric={m}
              unit={unitOf(m)}
              data={series.current.get(m) ?? empty()}
              notGood={notGood.current.get(m) ?? NO_MARKS}
              thresholds={thresholds.get(m) ?? NONE}
              version={rev}
            />
          </div>
        ))}
      </div>
      <div class="two-col">
        <div data-testid="device-alarms">
          <h3>{t('alarms')}</h3>
          {alarms.length === 0 ? (
            <p class="empty">{t('none')}</p>
          ) : (
            alarms.map((a) => <AlarmRow a={a} key={a.id} onShelve={setShelving} />)
          )}
        </div>
        <div data-testid="device-tickets">
          <h3>{t('workorders')}</h3>
          {tickets.length === 0 ? (
            <p class="empty">{t('none')}</p>
          ) : (
            tickets.map((x) => (
              <a class={`row p-${x.priority}`} href={`#/workorders/${x.id}`} key={x.id} data-ticket={x.id}>
                <span class={`pill p-${x.priority}`}>{t(`prio_${x.priority}`)}</span> {ticketTitle(x, lang)}{' '}
                <span class="muted">
                  {t(`status_${x.status}`)} · {fmtTime(x.createdAt, lang)}
                </span>
              </a>
            ))
          )}
        </div>
      </div>
      <RuleOverrides device={key} onChanged={() => api.rules(key).then(setRules, () => setRules(null))} />
      {shelving && <ShelveDialog alarm={shelving} onClose={() => setShelving(null)} />}
    </section>
  );
}

const NONE: Threshold[] = [];
const NO_MARKS: number[] = [];
