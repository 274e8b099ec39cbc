import { Component } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { Device } from '../api';
import { useApp, useStoreVersion } from '../context';
import { labelOf, unitOf } from '../format';
import { PRIMARY, type TileState } from '../store';
import { Sparkline, ValueText, VirtualList, useWidth } from '../widgets';
import { DemoPanel } from './demo';

const RANK: Record<TileState, number> = { critical: 0, warning: 1, offline: 2, normal: 3 };
const TILE_W = 230;
const ROW_H = 132;
const HEAD_H = 44;

type Row =
  | { type: 'site'; site: string; counts: Record<TileState, number> }
  | { type: 'tiles'; devices: Array<{ d: Device; s: TileState }> };

/** The latest values a tile shows: the sparkline's metric first, then the others, at most three. */
function tileMetrics(d: Device): string[] {
  const p = PRIMARY[d.kind];
  const names = Object.keys(d.latest).filter((m) => typeof d.latest[m]?.value === 'number');
  names.sort((a, b) => (a === p ? -1 : b === p ? 1 : a.localeCompare(b)));
  return names.slice(0, 3);
}

export function Overview() {
  const { store, t } = useApp();
  const version = useStoreVersion(store);
  const [filter, setFilter] = useState('');
  const [setEl, width] = useWidth();
  const perRow = Math.max(1, Math.floor((width - 8) / TILE_W));

  const { rows, counts, alarmCounts, ticketCounts } = useMemo(() => {
    const now = Date.now();
    const f = filter.trim().toLowerCase();
    const counts: Record<TileState, number> = { critical: 0, warning: 0, offline: 0, normal: 0 };
    const bySite = new Map<string, Array<{ d: Device; s: TileState }>>();
    for (const d of store.devices.values()) {
      const s = store.tileState(d, now);
      counts[s]++;
      if (f && !`${d.site} ${d.id} ${d.kind} ${d.name ?? ''}`.toLowerCase().includes(f)) continue;
      let list = bySite.get(d.site);
      if (!list) bySite.set(d.site, (list = []));
      list.push({ d, s });
    }
    const sites = [...bySite.entries()].map(([site, list]) => {
      list.sort(
        (a, b) => RANK[a.s] - RANK[b.s] || a.d.kind.localeCompare(b.d.kind) || a.d.id.localeCompare(b.d.id),
      );
      const c: Record<TileState, number> = { critical: 0, warning: 0, offline: 0, normal: 0 };
      for (const x of list) c[x.s]++;
      const worst = list.length ? RANK[list[0]!.s] : 3;
      return { site, list, c, worst };
    });
    // Whatever is abnormal comes first: sites by their worst tile, tiles by state.
    sites.sort((a, b) => a.worst - b.worst || a.site.localeCompare(b.site));
    const rows: Row[] = [];
    for (const s of sites) {
      rows.push({ type: 'site', site: s.site, counts: s.c });
      for (let i = 0; i < s.list.length; i += perRow)
        rows.push({ type: 'tiles', devices: s.list.slice(i, i + perRow) });
    }
    const alarmCounts: Record<string, number> = { critical: 0, warning: 0, info: 0 };
    for (const a of store.alarms.values()) alarmCounts[a.severity] = (alarmCounts[a.severity] ?? 0) + 1;
    const ticketCounts: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0 };
    for (const tk of store.tickets.values()) ticketCounts[tk.priority] = (ticketCounts[tk.priority] ?? 0) + 1;
    return { rows, counts, alarmCounts, ticketCounts };
    // version: the store mutates in place; a new version means new data.
  }, [version, filter, perRow]);

  return (
    <section class="overview">
      <div class="summary">
        <div class="card" data-testid="device-counts">
          <h3>{t('devices')}</h3>
          {(['critical', 'warning', 'offline', 'normal'] as const).map((s) => (
            <span class={`pill s-${s}`} key={s}>
              {t(s)} <b>{counts[s]}</b>
            </span>
          ))}
        </div>
        <a class="card" href="#/alarms" data-testid="alarm-counts">
          <h3>{t('activeAlarms')}</h3>
          {(['critical', 'warning', 'info'] as const).map((s) => (
            <span class={`pill s-${s}`} key={s}>
              {t(s)} <b>{alarmCounts[s] ?? 0}</b>
            </span>
          ))}
        </a>
        <a class="card" href="#/workorders" data-testid="ticket-counts">
          <h3>{t('openTickets')}</h3>
          {(['critical', 'high', 'medium', 'low'] as const).map((p) => (
            <span class={`pill p-${p}`} key={p}>
              {t(`prio_${p}`)} <b>{ticketCounts[p] ?? 0}</b>
            </span>
          ))}
        </a>
        <DemoPanel />
      </div>
      <input
        class="filter"
        type="search"
        placeholder="site / device / kind"
        value={filter}
        onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)}
      />
      <div class="tiles-wrap" ref={setEl}>
        <VirtualList
          items={rows}
          heightOf={(r) => (r.type === 'site' ? HEAD_H : ROW_H)}
          class="tiles"
          render={(r) =>
            r.type === 'site' ? (
              <div class="site-head">
                <h2>{r.site}</h2>
                {(['critical', 'warning', 'offline'] as const).map((s) =>
                  r.counts[s] > 0 ? (
                    <span class={`pill s-${s}`} key={s}>
                      {t(s)} {r.counts[s]}
                    </span>
                  ) : null,
                )}
              </div>
            ) : (
              <div class="tile-row">
                {r.devices.map(({ d, s }) => (
                  <Tile d={d} s={s} version={version} key={d.key} />
                ))}
              </div>
            )
          }
        />
      </div>
    </section>
  );
}

interface TileProps {
  d: Device;
  s: TileState;
  version: number;
}

/** A tile renders again only when its state or the store's data changed, not on every scroll. */
class Tile extends Component<TileProps> {
  override shouldComponentUpdate(next: TileProps): boolean {
    return next.version !== this.props.version || next.s !== this.props.s || next.d !== this.props.d;
  }
  override render() {
    return <TileBody {...this.props} />;
  }
}

function TileBody(props: TileProps) {
  const { store, t } = useApp();
  const { d, s } = props;
  return (
    <a
      class={`tile s-${s}`}
      href={`#/device/${encodeURIComponent(d.key)}`}
      data-device={d.key}
      data-state={s}
    >
      <div class="tile-head">
        <span class="tile-id">{d.name ?? d.id}</span>
        <span class="tile-state">{t(s)}</span>
      </div>
      <div class="tile-kind">{d.kind}</div>
      <div class="tile-values">
        {tileMetrics(d).map((m) => (
          <span class="tv" key={m} title={m}>
            <span class="tv-name">{labelOf(m)}</span>
            <span class="tv-val">
              <ValueText v={d.latest[m]} t={t} />
              <small>{unitOf(m)}</small>
            </span>
          </span>
        ))}
      </div>
      <Sparkline ring={store.sparks.get(d.key)} state={s} version={props.version} />
    </a>
  );
}
