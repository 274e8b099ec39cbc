import { useEffect, useState } from 'preact/hooks';
import type { ConfigChange } from '../api';
import type * as S from '../../../../gateway/src/http/schemas/index.js';
import { can, useApp } from '../context';
import { FleetSchedules } from './fleet-schedules';
import { FleetChain, PinBadge } from './fleet-chain';
import { FleetDiscovered } from './fleet-discovered';
import { FleetChannelsView } from './fleet-channels';
import { SaveCancel } from '../widgets';

/**
 * Fleet management (docs/fleet.md): who is on call this week, the escalation chain, the declared
 * devices (retire) and a CSV import checked before anything is written. Changing them is the
 * admin's; everyone else reads.
 */
export function FleetView() {
  const { api, t, session } = useApp();
  const admin = can(session, 'admin');
  const [contacts, setContacts] = useState<S.Contacts | null>(null);
  const [devices, setDevices] = useState<S.FleetDevice[]>([]);
  const [rev, setRev] = useState(0);
  const [err, setErr] = useState('');
  const [editing, setEditing] = useState<string | null>(null);
  useEffect(() => {
    api.contacts().then(setContacts, (e: Error) => setErr(e.message));
    api.fleetDevices().then(setDevices, () => setDevices([]));
  }, [api, rev]);
  const changed = () => setRev((v) => v + 1);
  return (
    <section class="fleet-view" data-testid="fleet">
      {err && <p class="error">{err}</p>}
      {contacts && <OnCall contacts={contacts} admin={admin && !contacts.pin} onChanged={changed} />}
      {contacts && <FleetChain contacts={contacts} admin={admin} onChanged={changed} />}
      <FleetDiscovered admin={admin} rev={rev} onAdopted={changed} />
      {admin && <CsvImport onImported={changed} />}
      <FleetSchedules />
      <FleetChannelsView />
      <h3>{t('devicesDeclared')}</h3>
      <div data-testid="fleet-devices">
        {devices.length === 0 ? (
          <p class="empty">{t('none')}</p>
        ) : (
          devices.map((d) => {
            const key = `${d.device.site}/${d.device.id}`;
            return (
              <div class="row change" key={key} data-device={key} data-retired={d.retired}>
                <span>
                  <b>{key}</b> {d.device.name ?? ''} <span class="muted">{d.device.kind}</span>
                </span>
                {d.retired && <span class="pill s-offline">{t('retiredLabel')}</span>}
                {d.pin && <PinBadge pin={d.pin} />}
                {admin && !d.pin && !d.retired && editing !== key && (
                  <button
                    type="button"
                    class="secondary"
                    data-testid="edit-device"
                    onClick={() => setEditing(key)}
                  >
                    {t('editRule')}
                  </button>
                )}
                {editing === key && (
                  <DeviceForm
                    device={d.device}
                    onDone={(saved) => {
                      setEditing(null);
                      if (saved) changed();
                    }}
                  />
                )}
                {admin && !d.pin && !d.retired && (
                  <button
                    type="button"
                    class="secondary"
                    data-testid="retire"
                    onClick={() =>
                      api
                        .retireDevice(d.device.site, d.device.id)
                        .then(changed, (e: Error) => setErr(e.message))
                    }
                  >
                    {t('retire')}
                  </button>
                )}
              </div>
            );
          })
        )}
      </div>
    </section>
  );
}

function OnCall(props: { contacts: S.Contacts; admin: boolean; onChanged: () => void }) {
  const { api, t } = useApp();
  const c = props.contacts;
  const [name, setName] = useState(c.onCall?.name ?? '');
  const [reach, setReach] = useState(c.onCall?.contact ?? '');
  const [err, setErr] = useState('');
  return (
    <div class="card" data-testid="on-call">
      <h3>{t('onCall', { week: c.week })}</h3>
      <p data-testid="on-call-now">{c.onCall ? c.onCall.name : t('nobodyOnCall')}</p>
      <p class="muted">
        {t('escalationChain')}: {c.chain.map((k) => k.name).join(' → ')}
      </p>
      {props.admin && (
        <form
          class="rule-form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!name.trim()) return;
            const contact = { name: name.trim(), ...(reach.trim() ? { contact: reach.trim() } : {}) };
            api.setOnCall(contact).then(
              (_r: { change: ConfigChange | null }) => props.onChanged(),
              (x: Error) => setErr(x.message),
            );
          }}
        >
          <label>
            {t('onCallName')}
            <input
              name="onCallName"
              value={name}
              onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
          <label>
            {t('onCallReach')}
            <input
              name="onCallReach"
              value={reach}
              onInput={(e) => setReach((e.currentTarget as HTMLInputElement).value)}
            />
          </label>
          {err && <p class="error">{err}</p>}
          <div class="actions">
            <button type="submit" data-testid="save-on-call">
              {t('save')}
            </button>
          </div>
        </form>
      )}
    </div>
  );
}

function CsvImport(props: { onImported: () => void }) {
  const { api, t } = useApp();
  const [csv, setCsv] = useState('');
  const [res, setRes] = useState<S.ImportResult | null>(null);
  const [err, setErr] = useState('');
  const run = (dryRun: boolean) =>
    api.importDevices(csv, dryRun).then(
      (r) => {
        setRes(r);
        setErr('');
        if (!dryRun) props.onImported();
      },
      (x: Error) => setErr(x.message),
    );
  return (
    <div class="card" data-testid="csv-import">
      <h3>{t('importCsv')}</h3>
      <p class="muted">{t('importHint')}</p>
      <textarea
        name="csv"
        rows={6}
        value={csv}
        onInput={(e) => setCsv((e.currentTarget as HTMLTextAreaElement).value)}
      />
      <input
        type="file"
        accept=".csv,text/csv"
        onChange={(e) => {
          const f = (e.currentTarget as HTMLInputElement).files?.[0];
          if (f) void f.text().then(setCsv);
        }}
      />
      <div class="actions">
        <button
          type="button"
          class="secondary"
          data-testid="csv-check"
          disabled={!csv}
          onClick={() => void run(true)}
        >
          {t('dryRun')}
        </button>
        <button type="button" data-testid="csv-import-apply" disabled={!csv} onClick={() => void run(false)}>
          {t('applyImport')}
        </button>
      </div>
      {err && <p class="error">{err}</p>}
      {res && (
        <div data-testid="csv-result">
          <p>{t('importResult', { valid: res.valid, rows: res.rows, imported: res.imported })}</p>
          <ul>
            {res.problems.map((p) => (
              <li key={p.line} class="error" data-line={p.line}>
                {t('badRow', { line: p.line, reason: p.reason })}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

const METER_CLASSES = ['', 'commercial', 'residential', 'in-home'] as const;

/** A device's declared settings; a changed site moves it (declared there, retired here). */
function DeviceForm(props: { device: S.FleetDevice['device']; onDone: (saved: boolean) => void }) {
  const { api, t } = useApp();
  const d = props.device;
  const [f, setF] = useState({
    site: d.site,
    name: d.name ?? '',
    location: d.location ?? '',
    critical: d.critical,
    ratedMaxFlow: d.ratedMaxFlow === undefined ? '' : String(d.ratedMaxFlow),
    meterClass: d.meterClass ?? '',
  });
  const [err, setErr] = useState('');
  const text = (k: 'site' | 'name' | 'location' | 'ratedMaxFlow') => (e: Event) =>
    setF((x) => ({ ...x, [k]: (e.currentTarget as HTMLInputElement).value }));
  const submit = async (): Promise<void> => {
    const flow = f.ratedMaxFlow.trim() === '' ? undefined : Number(f.ratedMaxFlow);
    const body: S.DeviceBody = {
      site: d.site,
      id: d.id,
      kind: d.kind,
      critical: f.critical,
      ...(d.reportIntervalSec !== undefined ? { reportIntervalSec: d.reportIntervalSec } : {}),
      ...(d.registerMax !== undefined ? { registerMax: d.registerMax } : {}),
      ...(f.name.trim() ? { name: f.name.trim() } : {}),
      ...(f.location.trim() ? { location: f.location.trim() } : {}),
      ...(flow !== undefined ? { ratedMaxFlow: flow } : {}),
      ...(f.meterClass ? { meterClass: f.meterClass as NonNullable<S.DeviceBody['meterClass']> } : {}),
    };
    await api.putDevice(body);
    if (f.site.trim() !== d.site) await api.moveDevice(d.site, d.id, f.site.trim());
  };
  return (
    <form
      class="rule-form"
      data-testid="device-form"
      onSubmit={(e) => {
        e.preventDefault();
        submit().then(
          () => props.onDone(true),
          (x: Error) => setErr(x.message),
        );
      }}
    >
      <label>
        {t('deviceName')}
        <input name="name" value={f.name} onInput={text('name')} />
      </label>
      <label>
        {t('deviceLocation')}
        <input name="location" value={f.location} onInput={text('location')} />
      </label>
      <label>
        {t('moveToSite')}
        <input name="site" value={f.site} onInput={text('site')} />
      </label>
      <label>
        {t('ratedMaxFlow')}
        <input
          name="ratedMaxFlow"
          type="number"
          step="any"
          inputMode="decimal"
          value={f.ratedMaxFlow}
          onInput={text('ratedMaxFlow')}
        />
      </label>
      <label>
        {t('meterClass')}
        <select
          name="meterClass"
          value={f.meterClass}
          onChange={(e) => setF((x) => ({ ...x, meterClass: (e.currentTarget as HTMLSelectElement).value }))}
        >
          {METER_CLASSES.map((m) => (
            <option value={m} key={m}>
              {m || '–'}
            </option>
          ))}
        </select>
      </label>
      <label class="check">
        <input
          name="critical"
          type="checkbox"
          checked={f.critical}
          onChange={(e) => setF((x) => ({ ...x, critical: (e.currentTarget as HTMLInputElement).checked }))}
        />
        {t('deviceCritical')}
      </label>
      {err && <p class="error">{err}</p>}
      <SaveCancel
        testId="save-device"
        save={t('save')}
        cancel={t('cancel')}
        onCancel={() => props.onDone(false)}
      />
    </form>
  );
}
