import { useEffect, useState } from 'preact/hooks';
import type * as S from '../../../../gateway/src/http/schemas/index.js';
import { can, useApp } from '../context';
import { fmtZoned, zonedInput, zonedInstant } from '../zoned-time';
import { PinBadge } from './fleet-chain';
import { scheduleText } from '../fleet-schedules-i18n';
import { SaveCancel } from '../widgets';

type Sched = S.FleetSchedule;
type Text = ReturnType<typeof scheduleText>;

/**
 * Preventive-maintenance schedules (docs/fleet.md): each schedule with its next occurrences; an
 * engineer creates and edits schedules, retires one, moves one occurrence or skips it with a
 * reason (kept and shown here). Everyone else reads.
 */
export function FleetSchedules() {
  const { api, lang, session } = useApp();
  const st = scheduleText(lang);
  const engineer = can(session, 'engineer');
  const [data, setData] = useState<S.FleetSchedules | null>(null);
  const [rev, setRev] = useState(0);
  const [err, setErr] = useState('');
  const [editing, setEditing] = useState<string | null>(null);
  useEffect(() => {
    api.fleetSchedules().then(setData, (e: Error) => setErr(e.message));
  }, [api, rev]);
  const changed = () => {
    setErr('');
    setRev((v) => v + 1);
  };
  const failed = (e: Error) => setErr(e.message);
  return (
    <div class="card" data-testid="fleet-schedules">
      <h3>{st('schedules')}</h3>
      {data && <p class="muted">{st('schedulesHint', { zone: data.timeZone })}</p>}
      {err && <p class="error">{err}</p>}
      {engineer && editing !== '' && (
        <button type="button" class="secondary" data-testid="new-schedule" onClick={() => setEditing('')}>
          {st('newSchedule')}
        </button>
      )}
      {editing === '' && (
        <ScheduleForm
          st={st}
          onDone={(saved) => {
            setEditing(null);
            if (saved) changed();
          }}
        />
      )}
      {data?.schedules.map((s) => {
        // A schedule the config file pins: shown locked, without buttons (the gateway refuses anyway).
        const canEdit = engineer && s.pin === null;
        return (
          <div class="row change" key={s.schedule.id} data-schedule={s.schedule.id} data-retired={s.retired}>
            <span>
              <b>{s.schedule.title}</b> <span class="muted">{s.schedule.id}</span>
            </span>
            <span class="muted">
              {every(s, st)}
              {/* Its own zone, when not the one the hint names: its times are on that clock. */}
              {s.schedule.timeZone !== data.timeZone && ` (${s.schedule.timeZone})`} ·{' '}
              {s.schedule.kinds.join(', ')} · {s.origin === 'file' ? st('fromFile') : st('fromHere')}
            </span>
            {s.retired && <span class="pill s-offline">{st('retired')}</span>}
            {s.pin && <PinBadge pin={s.pin} />}
            {canEdit && editing !== s.schedule.id && (
              <button
                type="button"
                class="secondary"
                data-testid="edit-schedule"
                onClick={() => setEditing(s.schedule.id)}
              >
                {st('editSchedule')}
              </button>
            )}
            {canEdit && !s.retired && (
              <button
                type="button"
                class="secondary"
                data-testid="retire-schedule"
                onClick={() => api.retireSchedule(s.schedule.id).then(changed, failed)}
              >
                {st('retireSchedule')}
              </button>
            )}
            {editing === s.schedule.id && (
              <ScheduleForm
                st={st}
                schedule={s.schedule}
                onDone={(saved) => {
                  setEditing(null);
                  if (saved) changed();
                }}
              />
            )}
            {!s.retired && (
              <Occurrences s={s} st={st} engineer={canEdit} onChanged={changed} onError={failed} />
            )}
          </div>
        );
      })}
    </div>
  );
}

function every(s: Sched, st: Text): string {
  const e = s.schedule.every;
  const hour = s.schedule.hour ?? s.schedule.hourUtc ?? 8;
  if ('days' in e) return st('every_days_n', { n: e.days, hour });
  if ('months' in e) return st('every_months_n', { n: e.months, day: e.day ?? 1, hour });
  return st('every_cron_s', { cron: e.cron });
}

/** The next occurrences with Move and Skip, and every occurrence moved or skipped with who did it. */
function Occurrences(props: {
  s: Sched;
  st: Text;
  engineer: boolean;
  onChanged: () => void;
  onError: (e: Error) => void;
}) {
  const { api, lang } = useApp();
  const { s, st } = props;
  const id = s.schedule.id;
  // Every time of a schedule on its own zone's wall clock (the gateway fills in the default zone).
  const zone = s.schedule.timeZone;
  const fmtTime = (t: string | number | null | undefined, l: typeof lang) => fmtZoned(t, l, zone);
  const [open, setOpen] = useState<{ dueAt: string; what: 'move' | 'skip' } | null>(null);
  const [value, setValue] = useState('');
  const [err, setErr] = useState('');
  const onValue = (e: Event) => setValue((e.currentTarget as HTMLInputElement).value);
  const submit = (e: Event) => {
    e.preventDefault();
    if (!open) return;
    if (open.what === 'skip' && !value.trim()) return setErr(st('reasonNeeded'));
    const done = () => {
      setOpen(null);
      setErr('');
      props.onChanged();
    };
    const call =
      open.what === 'skip'
        ? api.skipOccurrence(id, { dueAt: open.dueAt, reason: value.trim() })
        : (() => {
            const to = zonedInstant(value, zone);
            return to === undefined
              ? Promise.reject(new Error(st('moveTo')))
              : api.moveOccurrence(id, { dueAt: open.dueAt, to: new Date(to).toISOString() });
          })();
    call.then(done, (x: Error) => setErr(x.message));
  };
  return (
    <div class="occurrences">
      <p class="muted">{st('nextOccurrences')}</p>
      <ul data-testid="next-occurrences">
        {s.next.map((n) => (
          <li key={n.dueAt} data-due={n.dueAt} data-skipped={n.skip !== null} data-moved={n.moveTo !== null}>
            <span class={n.skip !== null || n.moveTo !== null ? 'muted' : ''}>{fmtTime(n.dueAt, lang)}</span>{' '}
            {n.skip !== null && <span data-testid="skip-reason">{st('skipped', { reason: n.skip })}</span>}
            {n.moveTo !== null && <span>{st('movedTo', { t: fmtTime(n.moveTo, lang) })}</span>}
            {props.engineer && n.skip === null && n.moveTo === null && (
              <>
                {' '}
                <button
                  type="button"
                  class="secondary"
                  data-testid="move-occurrence"
                  onClick={() => {
                    setOpen({ dueAt: n.dueAt, what: 'move' });
                    setValue(zonedInput(Date.parse(n.dueAt), zone));
                  }}
                >
                  {st('move')}
                </button>{' '}
                <button
                  type="button"
                  class="secondary"
                  data-testid="skip-occurrence"
                  onClick={() => {
                    setOpen({ dueAt: n.dueAt, what: 'skip' });
                    setValue('');
                  }}
                >
                  {st('skip')}
                </button>
              </>
            )}
            {open?.dueAt === n.dueAt && (
              <form class="rule-form" data-testid="occurrence-form" onSubmit={submit}>
                <label>
                  {open.what === 'skip' ? st('skipReason') : st('moveTo')}
                  {open.what === 'skip' ? (
                    <input name="reason" required value={value} onInput={onValue} />
                  ) : (
                    <input name="moveTo" type="datetime-local" required value={value} onInput={onValue} />
                  )}
                </label>
                {err && <p class="error">{err}</p>}
                <div class="actions">
                  <button type="submit" data-testid="save-occurrence">
                    {st('save')}
                  </button>
                  <button type="button" class="secondary" onClick={() => setOpen(null)}>
                    {st('cancel')}
                  </button>
                </div>
              </form>
            )}
          </li>
        ))}
      </ul>
      {s.occurrences.length > 0 && (
        <>
          <p class="muted">{st('exceptions')}</p>
          <ul data-testid="schedule-exceptions">
            {s.occurrences.map((o) => {
              const passed =
                Date.parse(o.moveTo ?? o.dueAt) <= Date.now() || Date.parse(o.dueAt) <= Date.now();
              return (
                <li key={o.key} data-key={o.key} data-skipped={o.skip !== undefined}>
                  {fmtTime(o.dueAt, lang)} ·{' '}
                  {o.site
                    ? st('exceptionScope', { site: o.device ? `${o.site}/${o.device}` : o.site })
                    : st('everyAsset')}{' '}
                  ·{' '}
                  {o.skip !== undefined
                    ? st('skipped', { reason: o.skip })
                    : st('movedTo', { t: fmtTime(o.moveTo, lang) })}
                  {o.by && <span class="muted"> · {st('setBy', { by: o.by, t: fmtTime(o.at, lang) })}</span>}
                  {props.engineer && o.origin === 'database' && !passed && (
                    <>
                      {' '}
                      <button
                        type="button"
                        class="secondary"
                        data-testid="undo-occurrence"
                        onClick={() =>
                          api
                            .undoOccurrence(s.schedule.id, {
                              dueAt: o.dueAt,
                              ...(o.site ? { site: o.site } : {}),
                              ...(o.device ? { device: o.device } : {}),
                            })
                            .then(props.onChanged, props.onError)
                        }
                      >
                        {st('undo')}
                      </button>
                    </>
                  )}
                </li>
              );
            })}
          </ul>
        </>
      )}
    </div>
  );
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');

/** A schedule created or edited; the gateway checks it with the config file's own schema. */
function ScheduleForm(props: { st: Text; schedule?: Sched['schedule']; onDone: (saved: boolean) => void }) {
  const { api } = useApp();
  const { st } = props;
  const s = props.schedule;
  const e = s?.every;
  const [f, setF] = useState({
    id: s?.id ?? '',
    title: s?.title ?? '',
    kinds: s?.kinds.join(', ') ?? '',
    sites: s?.sites?.join(', ') ?? '',
    per: s?.per ?? 'device',
    everyKind: e && 'cron' in e ? 'cron' : e && 'months' in e ? 'months' : 'days',
    everyValue: e ? ('cron' in e ? e.cron : 'months' in e ? String(e.months) : String(e.days)) : '10',
    day: e && 'months' in e ? String(e.day ?? 1) : '1',
    hour: String(s?.hour ?? s?.hourUtc ?? 8),
    windowHours: String(s?.windowHours ?? 24),
    form: s?.form ?? 'none',
  });
  const [err, setErr] = useState('');
  const set = (k: keyof typeof f) => (ev: Event) =>
    setF((x) => ({ ...x, [k]: (ev.currentTarget as HTMLInputElement | HTMLSelectElement).value }));
  const submit = (ev: Event) => {
    ev.preventDefault();
    const n = Number(f.everyValue);
    const every: S.ScheduleBody['every'] =
      f.everyKind === 'cron'
        ? { cron: f.everyValue.trim() }
        : f.everyKind === 'months'
          ? { months: n, day: Number(f.day) }
          : { days: n };
    const sites = list(f.sites);
    // What the form does not show (anchor, priority, standard, zone) is kept as it was.
    const { hourUtc: _utc, ...kept } = s ?? {};
    const body: S.ScheduleBody = {
      ...(kept as Partial<S.ScheduleBody>),
      id: f.id.trim(),
      title: f.title.trim(),
      kinds: list(f.kinds),
      ...(sites.length ? { sites } : { sites: undefined }),
      per: f.per as 'device' | 'site',
      every,
      ...(f.everyKind === 'cron' ? { hour: undefined } : { hour: Number(f.hour) }),
      windowHours: Number(f.windowHours),
      form: f.form as 'none' | 'disinfection',
    };
    api.putSchedule(body).then(
      () => props.onDone(true),
      (x: Error) => setErr(x.message),
    );
  };
  return (
    <form class="rule-form" data-testid="schedule-form" onSubmit={submit}>
      <label>
        {st('scheduleId')}
        <input name="id" required value={f.id} disabled={s !== undefined} onInput={set('id')} />
      </label>
      <label>
        {st('scheduleTitle')}
        <input name="title" required value={f.title} onInput={set('title')} />
      </label>
      <label>
        {st('scheduleKinds')}
        <input name="kinds" required value={f.kinds} onInput={set('kinds')} />
      </label>
      <label>
        {st('scheduleSites')}
        <input name="sites" value={f.sites} onInput={set('sites')} />
      </label>
      <label>
        {st('schedulePer')}
        <select name="per" value={f.per} onChange={set('per')}>
          <option value="device">{st('per_device')}</option>
          <option value="site">{st('per_site')}</option>
        </select>
      </label>
      <label>
        {st('everyKind')}
        <select name="everyKind" value={f.everyKind} onChange={set('everyKind')}>
          <option value="days">{st('every_days')}</option>
          <option value="months">{st('every_months')}</option>
          <option value="cron">{st('every_cron')}</option>
        </select>
      </label>
      <label>
        {st('everyValue')}
        <input name="everyValue" required value={f.everyValue} onInput={set('everyValue')} />
      </label>
      {f.everyKind === 'months' && (
        <label>
          {st('monthDay')}
          <input name="day" type="number" min={1} max={28} value={f.day} onInput={set('day')} />
        </label>
      )}
      {f.everyKind !== 'cron' && (
        <label>
          {st('hour')}
          <input name="hour" type="number" min={0} max={23} value={f.hour} onInput={set('hour')} />
        </label>
      )}
      <label>
        {st('windowHours')}
        <input
          name="windowHours"
          type="number"
          min={1}
          step="any"
          inputMode="decimal"
          value={f.windowHours}
          onInput={set('windowHours')}
        />
      </label>
      <label>
        {st('completionForm')}
        <select name="form" value={f.form} onChange={set('form')}>
          <option value="none">{st('form_none')}</option>
          <option value="disinfection">{st('form_disinfection')}</option>
        </select>
      </label>
      {err && <p class="error">{err}</p>}
      <SaveCancel
        testId="save-schedule"
        save={st('save')}
        cancel={st('cancel')}
        onCancel={() => props.onDone(false)}
      />
    </form>
  );
}
