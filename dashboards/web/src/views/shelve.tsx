import { useState } from 'preact/hooks';
import type { Alarm } from '../api';
import { useApp } from '../context';
import { alarmText } from '../messages';

/** Minutes a shelf may last, as offered (the gateway accepts up to a year). */
export const SHELVE_MINUTES = [15, 60, 240, 480, 1440];

/**
 * Shelving an alarm's rule on its device for a while, with the reason the gateway records. A
 * dialog over the page, not inside the (virtual) list, so it keeps its place while rows move.
 */
export function ShelveDialog(props: { alarm: Alarm; onClose: (shelved: boolean) => void }) {
  const { api, t, lang } = useApp();
  const a = props.alarm;
  const [minutes, setMinutes] = useState(60);
  const [reason, setReason] = useState('');
  const [err, setErr] = useState('');
  const label = (m: number) => (m < 60 ? t('minutes_n', { n: m }) : t('hours_n', { n: m / 60 }));
  return (
    <div class="modal" role="dialog" aria-modal="true" data-testid="shelve-dialog">
      <form
        class="modal-box"
        // The missing reason is said in the dialog's own words and language.
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (!reason.trim()) return setErr(t('reasonNeeded'));
          api
            .shelve({
              site: a.site,
              device: a.device,
              rule: a.rule,
              durationMin: minutes,
              reason: reason.trim(),
            })
            .then(
              () => props.onClose(true),
              (x: Error) => setErr(x.message),
            );
        }}
      >
        <h3>{t('shelve').replace('…', '')}</h3>
        <p>
          <b>
            {a.site}/{a.device}
          </b>{' '}
          {alarmText(a.message || a.rule, a.rule, lang)}
        </p>
        <label>
          {t('shelveFor')}
          <select
            name="duration"
            value={minutes}
            onChange={(e) => setMinutes(Number((e.currentTarget as HTMLSelectElement).value))}
          >
            {SHELVE_MINUTES.map((m) => (
              <option key={m} value={m}>
                {label(m)}
              </option>
            ))}
          </select>
        </label>
        <label>
          {t('reason')}
          <textarea
            name="reason"
            rows={2}
            required
            value={reason}
            onInput={(e) => setReason((e.currentTarget as HTMLTextAreaElement).value)}
          />
        </label>
        {err && <p class="error">{err}</p>}
        <div class="buttons">
          <button type="submit" data-action="shelve-confirm">
            {t('shelveNow')}
          </button>
          <button type="button" class="secondary" onClick={() => props.onClose(false)}>
            {t('cancel')}
          </button>
        </div>
      </form>
    </div>
  );
}
