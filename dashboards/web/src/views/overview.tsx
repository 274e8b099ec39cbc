import { Component } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { Device } from '../api';
import { useApp, useStoreVersion } from '../context';
import { unitOf } from '../format';
import type { Lang } from '../i18n';
import { kindName, metricName } from '../labels';
import { PRIMARY, type Ring, type TileState } from '../store';
import { Sparkline, ValueText, VirtualList, useWidth } from '../widgets';
import { DemoPanel } from './demo';

const RANK: Record<TileState, number> = { critical: 0, warning: 1, offline: 2, normal: 3 };
const STATES = ['critical', 'warning', 'offline', 'normal'] as const;
/** Narrowest tile; tiles share the row's width, so a phone shows one full-width tile per row. */
const MIN_TILE_W = 222;
const GAP = 8;
/** Room for the list's scrollbar. */
const SCROLLBAR = 16;
/** Tile padding and borders: the sparkline gets the rest of the tile's width. */
const TILE_CHROME = 22;
const ROW_H = 132;
const HEAD_H = 44;

type Row =
  { type: 'site'; site: string; counts: Record<TileState, number> } | { type: 'tiles'; devices: Device[] };

/** The latest values a tile shows: the sparkline's metric first, then the others, at most three. */
function tileMetrics(d: Device): string[] {
  const p = PRIMARY[d.kind];
  const names = Object.keys(d.latest).filter((m) => typeof d.latest[m]?.value === 'number');
  names.sort((a, b) => (a === p ? -1 : b === p ? 1 : a < b ? -1 : a > b ? 1 : 0));
  return names.slice(0, 3);
}

const zero = (): Record<TileState, number> => ({ critical: 0, warning: 0, offline: 0, normal: 0 });

export function Overview() {
  const { store, t, lang } = useApp();
  const version = useStoreVersion(store);
  const [filter, setFilter] = useState('');
  const [setEl, width] = useWidth();
  const inner = Math.max(MIN_TILE_W, width - SCROLLBAR);
  const perRow = Math.max(1, Math.floor((inner + GAP) / (MIN_TILE_W + GAP)));
  const tileW = (inner - GAP * (perRow - 1)) / perRow;

  // Sorted again only when a device appears or a tile changes state (store.layout), not on every
  // reading: the sort keys are plain strings compared without the locale.
  const { rows, counts } = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const counts = zero();
    const bySite = new Map<string, Array<{ d: Device; rank: number; key: string }>>();
    for (const d of store.devices.values()) {
      const s = store.states.get(d.key) ?? 'normal';
      counts[s]++;
      if (f && !`${d.site} ${d.id} ${d.kind} ${d.name ?? ''}`.toLowerCase().includes(f)) continue;
      let list = bySite.get(d.site);
      if (!list) bySite.set(d.site, (list = []));
      list.push({ d, rank: RANK[s], key: `${d.kind}\u0000${d.id}` });
    }
    const sites = [...bySite.entries()].map(([site, list]) => {
      list.sort((a, b) => a.rank - b.rank || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const c = zero();
      for (const x of list) c[STATES[x.rank]!]++;
      return { site, list, c, worst: list.length ? list[0]!.rank : 3 };
    });
    // Whatever is abnormal comes first: sites by their worst tile, tiles by state.
    sites.sort((a, b) => a.worst - b.worst || (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
    const rows: Row[] = [];
    for (const s of sites) {
      rows.push({ type: 'site', site: s.site, counts: s.c });
      for (let i = 0; i < s.list.length; i += perRow)
        rows.push({ type: 'tiles', devices: s.list.slice(i, i + perRow).map((x) => x.d) });
    }
    return { rows, counts };
  }, [store.layout, filter, perRow]);

  const { alarmCounts, ticketCounts } = useMemo(() => {
    const alarmCounts: Record<string, number> = { critical: 0, warning: 0, info: 0 };
    for (const a of store.alarms.values()) alarmCounts[a.severity] = (alarmCounts[a.severity] ?? 0) + 1;
    const ticketCounts: Record<string, number> = { critical: 0, high: 0, medium: 0, low: 0 };
    for (const tk of store.tickets.values()) ticketCounts[tk.priority] = (ticketCounts[tk.priority] ?? 0) + 1;
    return { alarmCounts, ticketCounts };
  }, [store.alarmsRev, store.ticketsRev]);

  return (
    <section class="overview" data-version={version}>
      <div class="summary">
        <div class="card" data-testid="device-counts">
          <h3>{t('devices')}</h3>
          {STATES.map((s) => (
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
        placeholder={t('filter')}
        aria-label={t('filter')}
        value={filter}
        onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)}
      />
      <div class="tiles-wrap" ref={setEl}>
        {/* One row beyond each edge, not three: a fling brings in a row a frame either way, and every
            row more in the DOM is more for the browser to paint and sort out on each of those frames
            (bench/RESULTS.md, "Dashboard"); one row covers a frame of 120 px scrolling. */}
        <VirtualList
          items={rows}
          heightOf={(r) => (r.type === 'site' ? HEAD_H : ROW_H)}
          overscan={1}
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
              <div class="tile-row" style={{ gridTemplateColumns: `repeat(${perRow}, minmax(0, 1fr))` }}>
                {r.devices.map((d, col) => (
                  // Keyed by column: a recycled row patches its tiles in place.
                  <Tile
                    key={col}
                    d={d}
                    s={store.states.get(d.key) ?? 'normal'}
                    rev={store.rev(d.key)}
                    ring={store.sparks.get(d.key)}
                    sparkW={tileW - TILE_CHROME}
                    lang={lang}
                    label={t(store.states.get(d.key) ?? 'normal')}
                    t={t}
                  />
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
  /** The device's revision in the store: a tile renders again only when it moved. */
  rev: number;
  ring: Ring | undefined;
  sparkW: number;
  lang: Lang;
  label: string;
  t: (key: string) => string;
}

class Tile extends Component<TileProps> {
  override shouldComponentUpdate(n: TileProps): boolean {
    const p = this.props;
    return n.rev !== p.rev || n.d !== p.d || n.s !== p.s || n.sparkW !== p.sparkW || n.lang !== p.lang;
  }
  override render() {
    const { d, s, lang } = this.props;
    const primary = PRIMARY[d.kind];
    const ts = (primary && d.latest[primary]?.ts) ?? d.lastSeen ?? 0;
    return (
      <a
        class={`tile s-${s}`}
        href={`#/device/${encodeURIComponent(d.key)}`}
        data-device={d.key}
        data-state={s}
        data-ts={ts}
      >
        <div class="tile-head">
          <span class="tile-id">{d.name ?? d.id}</span>
          <span class="tile-state">{this.props.label}</span>
        </div>
        <div class="tile-kind">{kindName(d.kind, lang)}</div>
        <div class="tile-values">
          {tileMetrics(d).map((m) => (
            <span class="tv" key={m} title={m}>
              <span class="tv-name">{metricName(m, lang)}</span>
              <span class="tv-val">
                <ValueText v={d.latest[m]} t={this.props.t} lang={lang} />
                <small>{unitOf(m)}</small>
              </span>
            </span>
          ))}
        </div>
        <Sparkline ring={this.props.ring} state={s} rev={this.props.rev} width={this.props.sparkW} />
      </a>
    );
  }
}
