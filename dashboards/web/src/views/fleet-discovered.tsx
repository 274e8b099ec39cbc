import { useEffect, useState } from 'preact/hooks';
import type { Device } from '../api';
import { useApp } from '../context';
import { fmtTime } from '../format';

/**
 * Devices that publish but are not declared (the registry's discovered ones, `GET /api/devices`),
 * each with one-click adoption for the admin (`POST /api/fleet/devices/:site/:id/adopt`): declared
 * with the kind it reports as, after which it leaves this list and shows among the declared ones.
 * `rev` reloads the list when the page changed something else.
 */
export function FleetDiscovered(props: { admin: boolean; rev: number; onAdopted: () => void }) {
  const { api, t, lang } = useApp();
  const [found, setFound] = useState<Device[]>([]);
  const [busy, setBusy] = useState<string | null>(null);
  const [err, setErr] = useState('');
  const [own, setOwn] = useState(0);
  useEffect(() => {
    api.devices().then(
      (ds) => setFound(ds.filter((d) => d.discovered).sort((a, b) => a.key.localeCompare(b.key))),
      (e: Error) => setErr(e.message),
    );
  }, [api, props.rev, own]);
  const adopt = (d: Device) => {
    setBusy(d.key);
    setErr('');
    api.adoptDevice(d.site, d.id).then(
      () => {
        setBusy(null);
        setOwn((v) => v + 1);
        props.onAdopted();
      },
      (e: Error) => {
        setBusy(null);
        setErr(e.message);
      },
    );
  };
  return (
    <div class="card" data-testid="fleet-discovered">
      <h3>{t('discovered')}</h3>
      <p class="muted">{t('discoveredHint')}</p>
      {err && (
        <p class="error" role="alert">
          {err}
        </p>
      )}
      {found.length === 0 ? (
        <p class="empty">{t('noDiscovered')}</p>
      ) : (
        found.map((d) => (
          <div class="row change" key={d.key} data-discovered={d.key}>
            <span>
              <b>{d.key}</b> <span class="muted">{d.kind}</span>
            </span>
            {d.lastSeen !== null && (
              <span class="muted">{t('lastSeen', { t: fmtTime(d.lastSeen, lang) })}</span>
            )}
            {props.admin && (
              <button type="button" data-testid="adopt" disabled={busy === d.key} onClick={() => adopt(d)}>
                {t('adopt')}
              </button>
            )}
          </div>
        ))
      )}
    </div>
  );
}
