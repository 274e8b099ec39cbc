import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Alarm, Shelf } from '../api';
import { can, useApp, useStoreValue } from '../context';
import { fmtTime, fmtValue } from '../format';
import { alarmText } from '../messages';
import { VirtualList, useWidth } from '../widgets';
import { ShelveDialog } from './shelve';

const SEV: Record<string, number> = { critical: 0, warning: 1, info: 2 };
/** One line per alarm on a wide screen, two on a phone: the list is virtual, rows have one height. */
const ROW_H = 46;
const ROW_H_NARROW = 76;
const NARROW = 720;
const LIST_MAX_H = 520;

/** One alarm with the actions the role allows; shelving opens the dialog of the view. */
export function AlarmRow(props: { a: Alarm; onChange?: () => void; onShelve?: (a: Alarm) => void }) {
  const { api, store, session, t, lang } = useApp();
  const { a } = props;
  const [err, setErr] = useState('');
  const active = a.state.startsWith('active');
  const unacked = a.state === 'active-unacknowledged' || a.state === 'cleared-unacknowledged';
  const text = alarmText(a.message || a.rule, a.rule, lang);
  return (
    <div class={`row alarm sev-${a.severity}`} data-alarm={a.id} data-rule={a.rule} data-state={a.state}>
      <span class={`pill s-${a.severity}`}>{t(a.severity)}</span>
      <a href={`#/device/${encodeURIComponent(`${a.site}/${a.device}`)}`} class="alarm-device">
        {a.site}/{a.device}
      </a>
      <span class="alarm-msg" title={a.message}>
        {text}
      </span>
      <span class="muted alarm-when">
        {fmtValue(a.value, lang)} · {fmtTime(a.raisedAt, lang)}
        {a.clearedAt ? ` → ${fmtTime(a.clearedAt, lang)}` : ''}
      </span>
      <span class="alarm-state">
        {a.acknowledgedBy ? `${t('acked')}: ${a.acknowledgedBy}` : ''}
        {a.shelved ? ` · ${t('shelved')}` : ''}
        {a.suppressed ? ` · ${t('suppressed')}` : ''}
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
          {active && !a.shelved && props.onShelve && (
            <button class="secondary" data-action="shelve" onClick={() => props.onShelve!(a)}>
              {t('shelve')}
            </button>
          )}
        </span>
      )}
      {err && <span class="error">{err}</span>}
    </div>
  );
}

function Shelves(props: { shelves: Shelf[]; onEnd: (s: Shelf) => void }) {
  const { session, t, lang } = useApp();
  if (props.shelves.length === 0) return null;
  return (
    <div data-testid="shelves">
      <h2>
        {t('shelves')} <span class="count">{props.shelves.length}</span>
      </h2>
      {props.shelves.map((s) => (
        <div class="row shelf" key={s.id} data-shelf={s.id}>
          <b>{[s.site, s.device, s.rule].filter(Boolean).join(' / ')}</b>
          <span class="muted">
            {t('shelfUntil', { t: fmtTime(s.until, lang), user: s.user, reason: s.reason })}
          </span>
          {can(session, 'engineer') && (
            <button class="secondary" data-action="unshelve" onClick={() => props.onEnd(s)}>
              {t('unshelve')}
            </button>
          )}
        </div>
      ))}
    </div>
  );
}

export function AlarmsView() {
  const { api, store, t } = useApp();
  // Only a change among the active alarms redraws the view, not every reading.
  const alarmsRev = useStoreValue(store, (s) => s.alarmsRev);
  const [recent, setRecent] = useState<Alarm[]>([]);
  const [shelves, setShelves] = useState<Shelf[]>([]);
  const [shelving, setShelving] = useState<Alarm | null>(null);
  const [err, setErr] = useState('');
  const [tick, setTick] = useState(0);
  const [setEl, width] = useWidth();
  const rowH = width < NARROW ? ROW_H_NARROW : ROW_H;
  useEffect(() => {
    api.alarms({ state: 'all', limit: 200 }).then(
      (all) => setRecent(all.filter((a) => !a.state.startsWith('active')).slice(0, 100)),
      () => setRecent([]),
    );
    api.shelves().then(setShelves, () => setShelves([]));
  }, [api, tick]);
  // Sorted when the set of active alarms changes, not on every redraw.
  const active = useMemo(
    () =>
      [...store.alarms.values()].sort(
        (a, b) =>
          (SEV[a.severity] ?? 3) - (SEV[b.severity] ?? 3) ||
          (a.raisedAt < b.raisedAt ? 1 : a.raisedAt > b.raisedAt ? -1 : 0),
      ),
    [alarmsRev],
  );
  const refresh = () => setTick((x) => x + 1);
  return (
    <section class="alarms" data-version={alarmsRev}>
      <h2>
        {t('active')} <span class="count">{active.length}</span>
      </h2>
      <div
        data-testid="active-alarms"
        class="alarm-list"
        ref={setEl}
        style={{ height: `${Math.min(LIST_MAX_H, Math.max(1, active.length) * rowH) + 2}px` }}
      >
        {active.length === 0 ? (
          <p class="empty">{t('none')}</p>
        ) : (
          <VirtualList
            items={active}
            heightOf={() => rowH}
            render={(a) => <AlarmRow a={a} onChange={refresh} onShelve={setShelving} />}
          />
        )}
      </div>
      {err && <p class="error">{err}</p>}
      <Shelves
        shelves={shelves}
        onEnd={(s) =>
          api.unshelve(s.id).then(
            () => refresh(),
            (e: Error) => setErr(e.message),
          )
        }
      />
      <h2>{t('recent')}</h2>
      <div data-testid="recent-alarms">
        {recent.length === 0 ? (
          <p class="empty">{t('none')}</p>
        ) : (
          recent.map((a) => <AlarmRow a={a} key={a.id} onChange={refresh} />)
        )}
      </div>
      {shelving && (
        <ShelveDialog
          alarm={shelving}
          onClose={(done) => {
            setShelving(null);
            if (done) refresh();
          }}
        />
      )}
    </section>
  );
}
