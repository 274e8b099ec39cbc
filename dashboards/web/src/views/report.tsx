import { useEffect, useState } from 'preact/hooks';
import { ApiError, type MonthlyReport } from '../api';
import { useApp } from '../context';
import { pct } from '../format';
import { ruleName } from '../labels';
import { Bars } from '../widgets';
import { ReportDelivery } from './report-delivery';

function lastMonth(): string {
  const d = new Date();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - 1);
  return d.toISOString().slice(0, 7);
}

const num = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : v.toFixed(1));

export function ReportView() {
  const { api, t, lang } = useApp();
  const [month, setMonth] = useState(lastMonth());
  const [r, setR] = useState<MonthlyReport | null | 'na' | string>(null);
  useEffect(() => {
    setR(null);
    api
      .monthly(month)
      .then(setR, (e: unknown) =>
        setR(
          e instanceof ApiError && e.status === 404 && e.code === 'GW_ERR_NOT_FOUND'
            ? 'na'
            : (e as Error).message,
        ),
      );
  }, [api, month]);
  const csv = async () => {
    const res = await fetch(`/api/reports/monthly?month=${month}&format=csv`, { credentials: 'same-origin' });
    const blob = await res.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `service-report-${month}.csv`;
    a.click();
    URL.revokeObjectURL(a.href);
  };
  return (
    <section class="report">
      <header class="report-head">
        <h2>{t('report')}</h2>
        <label>
          {t('month')}{' '}
          <input
            type="month"
            value={month}
            onChange={(e) => setMonth((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        {typeof r === 'object' && r !== null && <button onClick={() => void csv()}>{t('download')}</button>}
      </header>
      <ReportDelivery month={month} />
      {r === 'na' ? (
        <p class="notice" data-testid="report-na">
          {t('notAvailable')}
        </p>
      ) : r === null ? (
        <p class="muted">…</p>
      ) : typeof r === 'string' ? (
        <p class="error">{r}</p>
      ) : (
        <div class="report-body" data-testid="report">
          <div class="kpis">
            <Kpi label={t('opened')} value={String(r.tickets.opened.total)} testid="kpi-opened" />
            <Kpi label={t('closed')} value={String(r.tickets.closed.total)} />
            <Kpi label={t('responseTime')} value={`${num(r.response.meanMin)} / ${num(r.response.p90Min)}`} />
            <Kpi
              label={t('resolutionTime')}
              value={`${num(r.resolution.meanMin)} / ${num(r.resolution.p90Min)}`}
            />
            <Kpi label={t('slaResponse')} value={pct(r.sla.response.rate)} />
            <Kpi label={t('slaResolution')} value={pct(r.sla.resolution.rate)} />
            <Kpi label={t('repeats')} value={`${r.repeats.count} (${pct(r.repeats.rate)})`} />
            <Kpi label={t('escalations')} value={String(r.escalations.total)} />
            <Kpi label={t('preventive')} value={pct(r.preventive.onTimeRate)} />
          </div>
          <div class="two-col">
            <div class="card">
              <h3>{t('byPriority')}</h3>
              <Bars data={r.tickets.opened.byPriority} label={(k) => t(`prio_${k}`)} />
            </div>
            <div class="card">
              <h3>{t('bySeverity')}</h3>
              <Bars data={r.alarms.bySeverity} label={(k) => t(k)} />
            </div>
          </div>
          <div class="card">
            <h3>{t('alarms')}</h3>
            <Bars data={r.alarms.byRule} label={(k) => ruleName(k, lang) ?? k} />
          </div>
          <div class="card">
            <h3>{t('readRates')}</h3>
            <table class="table" data-testid="read-rates">
              <thead>
                <tr>
                  <th>{t('col_site')}</th>
                  <th>{t('col_class')}</th>
                  <th>{t('col_period')}</th>
                  <th>{t('col_reported')}</th>
                  <th>{t('col_rate')}</th>
                  <th>{t('col_target')}</th>
                </tr>
              </thead>
              <tbody>
                {r.readRates.map((x, i) => (
                  <tr key={i} class={x.met ? '' : 'miss'}>
                    <td>{x.site}</td>
                    <td>{t(`class_${x.meterClass}`)}</td>
                    <td>{t(`period_${x.period}`)}</td>
                    <td>
                      {x.reported}/{x.expected}
                    </td>
                    <td>{pct(x.rate)}</td>
                    <td>≥ {pct(x.target)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </section>
  );
}

function Kpi(props: { label: string; value: string; testid?: string }) {
  return (
    <div class="kpi" data-testid={props.testid}>
      <span class="kpi-label">{props.label}</span>
      <span class="kpi-value">{props.value}</span>
    </div>
  );
}
