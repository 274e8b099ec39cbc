import { useMemo, useState } from 'preact/hooks';
import type { NewTicket, Ticket } from '../api';
import { useApp, useStoreValue } from '../context';
import { Field } from '../widgets';

const PRIORITIES: Array<NonNullable<NewTicket['priority']>> = ['critical', 'high', 'medium', 'low'];

/** A work order raised by hand (`POST /api/tickets`, engineer): what, where, how urgent. */
export function NewTicketForm(props: { onDone: (t: Ticket | null) => void }) {
  const { api, store, t } = useApp();
  // The board around the form redraws only for tickets: devices that appear come in here.
  const layout = useStoreValue(store, (s) => s.layout);
  const sites = useMemo(() => [...new Set([...store.devices.values()].map((d) => d.site))].sort(), [layout]);
  const [title, setTitle] = useState('');
  const [site, setSite] = useState(sites[0] ?? '');
  const [device, setDevice] = useState('');
  const [priority, setPriority] = useState<NonNullable<NewTicket['priority']>>('medium');
  const [note, setNote] = useState('');
  const [err, setErr] = useState('');
  const devices = useMemo(
    () =>
      [...store.devices.values()]
        .filter((d) => d.site === site)
        .map((d) => d.id)
        .sort(),
    [site, layout],
  );
  return (
    <form
      class="card new-ticket"
      data-testid="new-ticket"
      onSubmit={(e) => {
        e.preventDefault();
        setErr('');
        const body: NewTicket = { title: title.trim(), site, priority };
        if (device) body.device = device;
        if (note.trim()) body.note = note.trim();
        api.createTicket(body).then(
          (x) => {
            store.putTicket(x);
            props.onDone(x);
          },
          (x: Error) => setErr(x.message),
        );
      }}
    >
      <h3>{t('newTicket')}</h3>
      <Field
        label={t('ticketTitle')}
        name="title"
        required
        maxLength={500}
        value={title}
        onValue={setTitle}
      />
      <Field
        label={t('site')}
        name="site"
        list="ticket-sites"
        required
        value={site}
        onValue={(v) => {
          setSite(v);
          setDevice('');
        }}
      />
      <datalist id="ticket-sites">
        {sites.map((s) => (
          <option key={s} value={s} />
        ))}
      </datalist>
      <label>
        {t('deviceOptional')}
        <select
          name="device"
          value={device}
          onChange={(e) => setDevice((e.currentTarget as HTMLSelectElement).value)}
        >
          <option value="">–</option>
          {devices.map((d) => (
            <option key={d} value={d}>
              {d}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t('priority')}
        <select
          name="priority"
          value={priority}
          onChange={(e) => setPriority((e.currentTarget as HTMLSelectElement).value as typeof priority)}
        >
          {PRIORITIES.map((p) => (
            <option key={p} value={p}>
              {t(`prio_${p}`)}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t('note')}
        <textarea
          name="note"
          rows={2}
          value={note}
          onInput={(e) => setNote((e.currentTarget as HTMLTextAreaElement).value)}
        />
      </label>
      {err && (
        <p class="error" data-testid="new-ticket-error">
          {err}
        </p>
      )}
      <div class="buttons">
        <button type="submit" data-action="create">
          {t('create')}
        </button>
        <button type="button" class="secondary" onClick={() => props.onDone(null)}>
          {t('cancel')}
        </button>
      </div>
    </form>
  );
}
