import { useEffect, useState } from 'preact/hooks';
import type { DemoDevice } from '../api';
import { can, useApp } from '../context';
import { faultName, kindName } from '../labels';

/** Shown only when the gateway runs the demo (`/api/demo` answers): trigger the simulators' faults. */
export function DemoPanel() {
  const { api, session, t, lang } = useApp();
  const [devices, setDevices] = useState<DemoDevice[] | null>(null);
  const [device, setDevice] = useState('');
  const [fault, setFault] = useState('');
  const [msg, setMsg] = useState('');
  useEffect(() => {
    api
      .demoDevices()
      .then((r) => {
        const list = r.devices;
        setDevices(list);
        const tank = list.find((d) => d.kind === 'chlorination') ?? list[0];
        if (tank) {
          setDevice(tank.id);
          setFault(tank.available.includes('chlorine-loss') ? 'chlorine-loss' : (tank.available[0] ?? ''));
        }
      })
      .catch(() => setDevices(null));
  }, [api]);
  if (!devices || !can(session, 'engineer')) return null;
  const current = devices.find((d) => d.id === device);
  return (
    <div class="card demo" data-testid="demo-panel">
      <h3>{t('demo')}</h3>
      <p class="hint">{t('demoHint')}</p>
      <select
        aria-label="device"
        value={device}
        onChange={(e) => {
          const id = (e.currentTarget as HTMLSelectElement).value;
          setDevice(id);
          setFault(devices.find((d) => d.id === id)?.available[0] ?? '');
        }}
      >
        {devices.map((d) => (
          <option value={d.id} key={d.id}>
            {d.site}/{d.id} ({kindName(d.kind, lang)})
          </option>
        ))}
      </select>
      <select
        aria-label="fault"
        value={fault}
        onChange={(e) => setFault((e.currentTarget as HTMLSelectElement).value)}
      >
        {(current?.available ?? []).map((f) => (
          <option value={f} key={f}>
            {faultName(f, lang)}
          </option>
        ))}
      </select>
      <button
        onClick={() =>
          api.demoFault(device, fault).then(
            () => setMsg(`${faultName(fault, lang)} → ${device}`),
            (e: Error) => setMsg(e.message),
          )
        }
      >
        {t('trigger')}
      </button>
      <button
        class="secondary"
        onClick={() =>
          api.demoClear(device).then(
            () => setMsg(''),
            (e: Error) => setMsg(e.message),
          )
        }
      >
        {t('clearFaults')}
      </button>
      {msg && (
        <span class="hint" data-testid="demo-msg">
          {msg}
        </span>
      )}
    </div>
  );
}
