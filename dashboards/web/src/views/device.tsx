import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, type Alarm, type Rule, type Threshold, type Ticket } from '../api';
import { MetricChart } from '../chart';
import { useApp, useStoreVersion } from '../context';
import { fmtTime, labelOf, unitOf } from '../format';
import { AlarmRow } from './alarms';
import { ValueText } from '../widgets';

const RANGES: Record<string, number> = {
  '1h': 3600_000,
  '6h': 6 * 3600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
};
const MAX_LIVE_POINTS = 5000;

/** Thresholds of the rules on this metric, as lines for the chart. */
function thresholdsOf(rules: Rule[], metric: string): Threshold[] {
  const out: Threshold[] = [];
  for (const r of rules) {
    if (r.metric !== metric) continue;
    for (const t of [r.lowLow, r.low, r.high, r.highHigh]) if (t && typeof t.value === 'number') out.push(t);
  }
  return out;
}

export function DeviceView(props: { id: string }) {
  const { api, store, t } = useApp();
  const version = useStoreVersion(store);
  const key = props.id;
  const d = store.devices.get(key);
  const [range, setRange] = useState('1h');
  const [rules, setRules] = useState<Rule[]>([]);
  const [noHistory, setNoHistory] = useState(false);
  const [alarms, setAlarms] = useState<Alarm[]>([]);
  const [tickets, setTickets] = useState<Ticket[]>([]);
  const series = useRef(new Map<string, [number[], number[]]>());
  const [dataVersion, setDataVersion] = useState(0);

  const metrics = useMemo(
    () =>
      d
        ? Object.keys(d.latest)
            .filter((m) => typeof d.latest[m]?.value === 'number')
            .sort()
        : [],
    [d, version],
  );
  const metricKey = metrics.join(',');

  useEffect(() => {
    api.rules(key).then(setRules, () => setRules([]));
    const [site, id] = key.split('/');
    fetchAlarms(site!, id!).then(setAlarms, () => setAlarms([]));
    api.tickets().then(
      (all) => setTickets(all.filter((x) => x.site === site && x.device === id)),
      () => setTickets([]),
    );
    async function fetchAlarms(site: string, id: string): Promise<Alarm[]> {
      const all = await api.alarms('all', 200);
      return all.filter((a) => a.site === site && a.device === id);
    }
  }, [api, key, version > 0 && store.alarms.size]);

  // History for the range, then live readings appended as they come.
  useEffect(() => {
    let cancelled = false;
    const to = Date.now();
    const from = to - RANGES[range]!;
    const next = new Map<string, [number[], number[]]>();
    for (const m of metrics) {
      const l = d?.latest[m];
      next.set(m, l && typeof l.value === 'number' ? [[l.ts / 1000], [l.value]] : [[], []]);
    }
    series.current = next;
    setDataVersion((v) => v + 1);
    Promise.all(
      metrics.map(async (m) => {
        const pts = await api.readings(key, m, from, to);
        const xs: number[] = [];
        const ys: number[] = [];
        for (const p of pts) {
          if (typeof p.value !== 'number') continue;
          xs.push(p.ts / 1000);
          ys.push(p.value);
        }
        if (!cancelled && xs.length > 0) series.current.set(m, [xs, ys]);
      }),
    ).then(
      () => {
        if (cancelled) return;
        setNoHistory(false);
        setDataVersion((v) => v + 1);
      },
      (err: unknown) => {
        if (!cancelled && err instanceof ApiError) setNoHistory(true);
      },
    );
    const off = store.onReading(key, (r) => {
      const ts = Date.parse(r.ts) / 1000;
      for (const [m, v] of Object.entries(r.values)) {
        if (typeof v !== 'number') continue;
        let s = series.current.get(m);
        if (!s) series.current.set(m, (s = [[], []]));
        s[0].push(ts);
        s[1].push(v);
        if (s[0].length > MAX_LIVE_POINTS) {
          s[0].shift();
          s[1].shift();
        }
      }
    });
    return () => {
      cancelled = true;
      off();
    };
  }, [api, key, range, metricKey]);

  // Live points join the chart at the store's redraw pace.
  useEffect(() => setDataVersion((v) => v + 1), [version]);

  if (!d) return <p class="empty">{t('none')}</p>;
  const state = store.tileState(d);
  return (
    <section class="device">
      <header class="device-head">
        <h2>
          <span class={`dot s-${state}`} /> {d.site} / {d.name ?? d.id}
        </h2>
        <span class={`pill s-${state}`} data-testid="device-state">
          {t(state)}
        </span>
        <span class="muted">{d.kind}</span>
        <span class="muted">{d.location ?? ''}</span>
        <label class="range">
          {t('range')}{' '}
          <select value={range} onChange={(e) => setRange((e.currentTarget as HTMLSelectElement).value)}>
            {Object.keys(RANGES).map((r) => (
              <option key={r} value={r}>
                {r}
              </option>
            ))}
          </select>
        </label>
      </header>
      {noHistory && <p class="notice">{t('noHistory')}</p>}
      <div class="charts">
        {metrics.map((m) => (
          <div class="chart-card" key={m}>
            <h3>
              {labelOf(m)}{' '}
              <b>
                <ValueText v={d.latest[m]} t={t} />
              </b>{' '}
              <small>{unitOf(m)}</small>
            </h3>
            <MetricChart
              metric={m}
              unit={unitOf(m)}
              data={series.current.get(m) ?? [[], []]}
              thresholds={thresholdsOf(rules, m)}
              version={dataVersion}
            />
          </div>
        ))}
      </div>
      <div class="two-col">
        <div>
          <h3>{t('alarms')}</h3>
          {alarms.length === 0 ? (
            <p class="empty">{t('none')}</p>
          ) : (
            alarms.map((a) => <AlarmRow a={a} key={a.id} />)
          )}
        </div>
        <div>
          <h3>{t('workorders')}</h3>
          {tickets.length === 0 ? (
            <p class="empty">{t('none')}</p>
          ) : (
            tickets.map((x) => (
              <a class={`row p-${x.priority}`} href={`#/workorders/${x.id}`} key={x.id}>
                <span class={`pill p-${x.priority}`}>{t(`prio_${x.priority}`)}</span> {x.title}{' '}
                <span class="muted">
                  {t(`status_${x.status}`)} · {fmtTime(x.createdAt)}
                </span>
              </a>
            ))
          )}
        </div>
      </div>
    </section>
  );
}
