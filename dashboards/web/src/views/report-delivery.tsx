import { useEffect, useState } from 'preact/hooks';
import type { ReportStatus } from '../api';
import { useApp } from '../context';

// Kept here rather than in i18n.ts: the words of this panel only.
const WORDS = {
  en: {
    title: 'Generated and delivered',
    none: 'Not generated yet: it is generated when the month has ended.',
    due: 'due',
    generated: 'generated',
    all: 'all sites',
    pending: 'pending',
    delivered: 'delivered',
    failed: 'failed',
    attempts: 'attempts',
    ticket: 'overdue ticket',
  },
  zh: {
    title: '生成与发送',
    none: '尚未生成：月份结束后自动生成。',
    due: '截止',
    generated: '已生成',
    all: '全部站点',
    pending: '待发送',
    delivered: '已发送',
    failed: '失败',
    attempts: '尝试次数',
    ticket: '逾期工单',
  },
} as const;

/** Whether the month's report was generated, and delivered to each recipient or failed. */
export function ReportDelivery(props: { month: string }) {
  const { api, lang } = useApp();
  const w = WORDS[lang === 'zh-CN' ? 'zh' : 'en'];
  const [s, setS] = useState<ReportStatus | null>(null);
  useEffect(() => {
    setS(null);
    api.reportStatus(props.month).then(setS, () => setS(null));
  }, [api, props.month]);
  if (!s) return null;
  return (
    <div class="card" data-testid="report-delivery">
      <h3>
        {w.title}{' '}
        <span class="muted">
          ({w.due} {new Date(s.dueAt).toLocaleString()})
        </span>
      </h3>
      {s.reports.length === 0 ? (
        <p class="muted">{w.none}</p>
      ) : (
        <p>
          {w.generated}:{' '}
          {s.reports.map((r) => `${r.site ?? w.all} ${new Date(r.generatedAt).toLocaleString()}`).join(', ')}
        </p>
      )}
      {s.deliveries.length > 0 && (
        <table class="table">
          <tbody>
            {s.deliveries.map((d) => (
              <tr key={d.recipient} class={d.status === 'failed' ? 'miss' : ''} data-status={d.status}>
                <td>{d.recipient}</td>
                <td>{d.site ?? w.all}</td>
                <td>{d.channel}</td>
                <td>{w[d.status]}</td>
                <td>
                  {w.attempts} {d.attempts}
                </td>
                <td class="muted">{d.status === 'delivered' ? d.deliveredAt : (d.lastError ?? '')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {s.overdueTicket && (
        <p class="error">
          {w.ticket}: <a href={`#/workorders/${encodeURIComponent(s.overdueTicket)}`}>{s.overdueTicket}</a>
        </p>
      )}
    </div>
  );
}
