import { useEffect, useState } from 'preact/hooks';
import type { Alarm } from '../api';
import { can, useApp, useStoreVersion } from '../context';
import { fmtTime, fmtValue } from '../format';

const SEV: Record<string, number> = { critical: 0, warning: 1, info: 2 };

/** One alarm with the actions the role allows. */
export function AlarmRow(props: { a: Alarm; onChange?: () => void }) {
  const { api, store, session, t } = useApp();
  const { a } = props;
  const [err, setErr] = useState('');
  const active = a.state.startsWith('active');
  const unacked = a.state === 'active-unacknowledged' || a.state === 'cleared-unacknowledged';
  return (
    <div class={`row alarm sev-${a.severity}`} data-alarm={a.id} data-rule={a.rule} data-state={a.state}>
      <span class={`pill s-${a.severity}`}>{t(a.severity)}</span>
      <a href={`#/device/${encodeURIComponent(`${a.site}/${a.device}`)}`} class="alarm-device">
        {a.site}/{a.device}
      </a>
      <span class="alarm-msg">{a.message || a.rule}</span>
      <span class="muted">
        {fmtValue(a.value)} · {fmtTime(a.raisedAt)}
        {a.clearedAt ? ` → ${fmtTime(a.clearedAt)}` : ''}
      </span>
      <span class="alarm-state">
        {a.acknowledgedBy ? `${t('acked')}: ${a.acknowledgedBy}` : ''}
        {a.shelved ? ` · ${t('shelved')}` : ''}
      </span>
      {can(session, 'engineer') && (
        <span class="actions">
          {unacked && (
            <button
              data-action="ack"
              onClick={() =>
                api.ackAlarm(a.id).then(
                  (x) => {
                    store.putAlarm(x);
                    props.onChange?.();
                  },
                  (e: Error) => setErr(e.message),
                )
              }
            >
              {t('ack')}
            </button>
          )}
          {active && !a.shelved && (
            <button
              class="secondary"
              data-action="shelve"
              onClick={() =>
                api.shelve({ site: a.site, device: a.device, rule: a.rule, durationMin: 60 }).then(
                  () => props.onChange?.(),
                  (e: Error) => setErr(e.message),
                )
              }
            >
              {t('shelve')}
            </button>
          )}
        </span>
      )}
      {err && <span class="error">{err}</span>}
    </div>
  );
}

export function AlarmsView() {
  const { api, store, t } = useApp();
  const version = useStoreVersion(store);
  const [recent, setRecent] = useState<Alarm[]>([]);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    api.alarms('all', 200).then(
      (all) => setRecent(all.filter((a) => !a.state.startsWith('active'))),
      () => setRecent([]),
    );
  }, [api, tick, store.alarms.size]);
  const active = [...store.alarms.values()].sort(
    (a, b) => (SEV[a.severity] ?? 3) - (SEV[b.severity] ?? 3) || b.raisedAt.localeCompare(a.raisedAt),
  );
  const refresh = () => setTick((x) => x + 1);
  return (
    <section class="alarms" data-version={version}>
      <h2>
        {t('active')} <span class="count">{active.length}</span>
      </h2>
      <div data-testid="active-alarms">
        {active.length === 0 ? (
          <p class="empty">{t('none')}</p>
        ) : (
          active.map((a) => <AlarmRow a={a} key={a.id} onChange={refresh} />)
        )}
      </div>
      <h2>{t('recent')}</h2>
      <div data-testid="recent-alarms">
        {recent.length === 0 ? (
          <p class="empty">{t('none')}</p>
        ) : (
          recent.slice(0, 100).map((a) => <AlarmRow a={a} key={a.id} onChange={refresh} />)
        )}
      </div>
    </section>
  );
}
