import { useEffect, useState } from 'preact/hooks';
import type { MaintenanceWindow, WindowSchedule } from '../api';
import { can, useApp } from '../context';
import { fmtTime } from '../format';

type Kind = WindowSchedule['type'];

/** A `datetime-local` value (local time, no zone) as RFC 3339. */
const localToIso = (v: string): string => new Date(v).toISOString();

/** What a window's schedule says, for the list. */
function scheduleText(s: WindowSchedule, t: (k: string) => string, lang: 'en' | 'zh-CN'): string {
  if (s.type === 'once') return `${fmtTime(s.from, lang)} → ${fmtTime(s.to, lang)}`;
  const rule = s.type === 'rrule' ? s.rrule.replace(/\n/g, ' ') : `${s.cron} (${s.timeZone ?? 'UTC'})`;
  return `${t(s.type === 'rrule' ? 'windowRrule' : 'windowCron')}: ${rule}, ${s.durationMin} min`;
}

/**
 * Maintenance windows: planned work set in advance (once, or recurring by RRULE or cron) over a
 * site, device, kind or rule; alarms inside one are recorded as suppressed and page nobody.
 * Engineers set them and end them early.
 */
export function WindowsView() {
  const { api, t, lang, session } = useApp();
  const [list, setList] = useState<MaintenanceWindow[] | null>(null);
  const [all, setAll] = useState(false);
  const [err, setErr] = useState('');
  const [version, setVersion] = useState(0);
  useEffect(() => {
    api.windows(all).then(setList, (e: Error) => setErr(e.message));
  }, [api, all, version]);
  const engineer = can(session, 'engineer');
  return (
    <section class="windows" data-testid="windows">
      <h2>{t('windows')}</h2>
      {engineer && <NewWindowForm onDone={() => setVersion((v) => v + 1)} />}
      <label>
        <input
          type="checkbox"
          checked={all}
          onChange={(e) => setAll((e.currentTarget as HTMLInputElement).checked)}
        />{' '}
        {t('showEnded')}
      </label>
      {err && <p class="error">{err}</p>}
      {list && list.length === 0 && <p class="muted">{t('none')}</p>}
      {list?.map((w) => (
        <div class="row window" key={w.id} data-window={w.id} data-active={String(w.active)}>
          <span class="pill">
            {w.endedAt ? t('windowEnded') : w.active ? t('windowActive') : t('windowNext')}
          </span>
          <span>{[w.site, w.device, w.kind, w.rule].filter((x) => x !== null).join(' · ')}</span>
          <span class="muted">{scheduleText(w.schedule, t, lang)}</span>
          {!w.endedAt && !w.active && w.next && (
            <span class="muted">
              {t('windowNext')}: {fmtTime(w.next.from, lang)}
            </span>
          )}
          <span>{w.reason}</span>
          <span class="muted">
            {t('windowSetBy')}: {w.createdBy}
            {w.endedBy ? ` · ${t('windowEnded')}: ${w.endedBy} ${fmtTime(w.endedAt, lang)}` : ''}
          </span>
          {engineer && !w.endedAt && (
            <button
              data-action="end-window"
              onClick={() =>
                api.endWindow(w.id).then(
                  () => setVersion((v) => v + 1),
                  (e: Error) => setErr(e.message),
                )
              }
            >
              {t('windowEnd')}
            </button>
          )}
        </div>
      ))}
    </section>
  );
}

function NewWindowForm(props: { onDone: () => void }) {
  const { api, t } = useApp();
  const [scope, setScope] = useState({ site: '', device: '', kind: '', rule: '' });
  const [kind, setKind] = useState<Kind>('once');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [rule, setRule] = useState('');
  const [duration, setDuration] = useState(60);
  const [reason, setReason] = useState('');
  const [err, setErr] = useState('');
  const text = (name: string, value: string, set: (v: string) => void) => (
    <input name={name} value={value} onInput={(e) => set((e.currentTarget as HTMLInputElement).value)} />
  );
  const submit = (e: Event) => {
    e.preventDefault();
    const given = Object.fromEntries(Object.entries(scope).filter(([, v]) => v.trim() !== ''));
    if (Object.keys(given).length === 0) return setErr(t('windowScopeNeeded'));
    if (!reason.trim()) return setErr(t('reasonNeeded'));
    let schedule: WindowSchedule;
    try {
      schedule =
        kind === 'once'
          ? { type: 'once', from: localToIso(from), to: localToIso(to) }
          : kind === 'rrule'
            ? { type: 'rrule', rrule: rule, durationMin: duration }
            : { type: 'cron', cron: rule, durationMin: duration };
    } catch (x) {
      return setErr((x as Error).message);
    }
    api.createWindow({ ...given, schedule, reason: reason.trim() }).then(
      () => {
        setErr('');
        setReason('');
        props.onDone();
      },
      (x: Error) => setErr(x.message),
    );
  };
  return (
    <form class="window-form" noValidate onSubmit={submit} data-testid="new-window">
      <h3>{t('newWindow')}</h3>
      <fieldset>
        <legend>{t('windowScope')}</legend>
        {(['site', 'device', 'kind', 'rule'] as const).map((k) => (
          <label key={k}>
            {k}
            {text(k, scope[k], (v) => setScope({ ...scope, [k]: v }))}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>{t('windowSchedule')}</legend>
        <select
          name="type"
          value={kind}
          onChange={(e) => setKind((e.currentTarget as HTMLSelectElement).value as Kind)}
        >
          <option value="once">{t('windowOnce')}</option>
          <option value="rrule">{t('windowRrule')}</option>
          <option value="cron">{t('windowCron')}</option>
        </select>
        {kind === 'once' ? (
          <>
            <label>
              {t('windowFrom')}
              <input
                type="datetime-local"
                name="from"
                value={from}
                onInput={(e) => setFrom((e.currentTarget as HTMLInputElement).value)}
              />
            </label>
            <label>
              {t('windowTo')}
              <input
                type="datetime-local"
                name="to"
                value={to}
                onInput={(e) => setTo((e.currentTarget as HTMLInputElement).value)}
              />
            </label>
          </>
        ) : (
          <>
            <label>
              {kind === 'rrule' ? 'RRULE' : 'cron'}
              {kind === 'rrule' ? (
                <textarea
                  name="rrule"
                  rows={2}
                  placeholder={'DTSTART:20260105T020000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO'}
                  value={rule}
                  onInput={(e) => setRule((e.currentTarget as HTMLTextAreaElement).value)}
                />
              ) : (
                text('cron', rule, setRule)
              )}
            </label>
            <label>
              {t('windowDuration')}
              <input
                type="number"
                name="duration"
                min={1}
                value={duration}
                onInput={(e) => setDuration(Number((e.currentTarget as HTMLInputElement).value))}
              />
            </label>
          </>
        )}
      </fieldset>
      <label>
        {t('reason')}
        {text('reason', reason, setReason)}
      </label>
      {err && <p class="error">{err}</p>}
      <button type="submit" data-action="create-window">
        {t('windowCreate')}
      </button>
    </form>
  );
}
