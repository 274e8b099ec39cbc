import type { DeviceConfig, KindConfig } from '../config/schema.js';
import { GatewayError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { qualityOfMetric, type DeviceRefs, type Reading, type ReadingListener } from '../core/types.js';
import type { DeviceLookup } from '../ingest/derive.js';
import type { MeterClass } from '../rules/types.js';
import { BUILTIN_KINDS } from '../ingest/catalogue.js';
import { parseSnapshot, type RegistrySnapshot } from './snapshot.js';
import { LatestValues, type LatestValue } from './latest-values.js';

export type { LatestValue } from './latest-values.js';

export type { RegistrySnapshot } from './snapshot.js';

/**
 * Every device the gateway knows: those declared in the config and those discovered on the
 * topic convention. `onReading` runs for every accepted reading, so it only mutates existing
 * objects; snapshots for the API are built on request.
 */

export type DeviceState = 'online' | 'stale' | 'offline';

export interface DeviceEntry {
  /** `${site}/${id}`, unique across the gateway. */
  readonly key: string;
  readonly site: string;
  /** Device id, unique within its site. */
  readonly id: string;
  readonly kind: string;
  readonly name: string | undefined;
  readonly location: string | undefined;
  readonly critical: boolean;
  readonly discovered: boolean;
  readonly reportIntervalSec: number;
  readonly ratedMaxFlow: number | undefined;
  readonly registerMax: number | undefined;
  /** Commercial, residential or in-home, for read-rate targets; undefined for non-meters. */
  readonly meterClass: MeterClass | undefined;
  /** Epoch ms the gateway first saw data from it (discovered: when it was discovered). */
  readonly firstSeen: number | undefined;
  /** Epoch ms of the newest reading (the reading's own time). */
  readonly lastSeen: number | undefined;
  readonly latest: ReadonlyMap<string, Readonly<LatestValue>>;
}

/** JSON-ready view of a device, as the HTTP API returns it. Times are epoch milliseconds. */
export interface DeviceSnapshot {
  key: string;
  id: string;
  site: string;
  kind: string;
  name: string | null;
  location: string | null;
  critical: boolean;
  discovered: boolean;
  reportIntervalSec: number;
  ratedMaxFlow: number | null;
  registerMax: number | null;
  meterClass: MeterClass | null;
  state: DeviceState;
  firstSeen: number | null;
  lastSeen: number | null;
  latest: Record<string, LatestValue>;
}

export interface DeviceFilter {
  site?: string;
  kind?: string;
  state?: DeviceState;
  discovered?: boolean;
  critical?: boolean;
}

export type ResolveResult =
  | { ok: true; entry: DeviceEntry }
  | { ok: false; error: 'not_found' }
  | { ok: false; error: 'ambiguous'; keys: string[] };

export interface RegistryOptions {
  /** Kinds declared in the config; they take precedence over the built-in catalogue. */
  kinds?: Readonly<Record<string, KindConfig>>;
  /** Online while the newest data is at most this many reporting intervals old. Default 1.5. */
  onlineIntervals?: number;
  /** Offline once the newest data is more than this many intervals old (DOMAIN.md: 3). */
  offlineIntervals?: number;
  /**
   * Epoch ms the gateway started listening. A declared device that never reported is judged by
   * this instead of its last data, so a restart does not declare every device offline at once.
   */
  startedAt?: number;
  log?: Logger;
}

/** Reporting interval of a kind nobody declared (the config's default for kinds). */
const FALLBACK_INTERVAL_SEC = 300;

interface MutableEntry {
  key: string;
  site: string;
  id: string;
  kind: string;
  name: string | undefined;
  location: string | undefined;
  critical: boolean;
  discovered: boolean;
  reportIntervalSec: number;
  ratedMaxFlow: number | undefined;
  registerMax: number | undefined;
  meterClass: MeterClass | undefined;
  firstSeen: number | undefined;
  lastSeen: number | undefined;
  latest: LatestValues;
}

export type DeviceListener = (device: DeviceEntry) => void;

export class DeviceRegistry implements ReadingListener, DeviceLookup {
  /** site → device id → entry: looked up without building a key string per reading. */
  private readonly bySite = new Map<string, Map<string, MutableEntry>>();
  /** Bare device id → entries with that id on any site, for `get(id)`. */
  private readonly byId = new Map<string, MutableEntry[]>();
  private readonly listeners = new Set<DeviceListener>();
  /** Keys of devices their source declared offline (a Sparkplug death), whatever their last data. */
  private readonly down = new Set<string>();
  private readonly kinds: Readonly<Record<string, KindConfig>>;
  private readonly onlineIntervals: number;
  private readonly offlineIntervals: number;
  private readonly startedAt: number;
  private readonly log: Logger | undefined;
  private count = 0;

  constructor(devices: readonly DeviceConfig[] = [], opts: RegistryOptions = {}) {
    this.kinds = opts.kinds ?? {};
    this.onlineIntervals = opts.onlineIntervals ?? 1.5;
    this.offlineIntervals = opts.offlineIntervals ?? 3;
    this.startedAt = opts.startedAt ?? Date.now();
    this.log = opts.log;
    for (const [i, d] of devices.entries()) {
      if (this.lookup(d.site, d.id)) {
        throw new GatewayError('GW_ERR_CONFIG', `devices.${i}: duplicate device ${d.site}/${d.id}`);
      }
      this.add({
        key: `${d.site}/${d.id}`,
        site: d.site,
        id: d.id,
        ...this.declared(d),
        firstSeen: undefined,
        lastSeen: undefined,
        latest: new LatestValues(),
      });
    }
  }

  get size(): number {
    return this.count;
  }

  lookup(site: string, device: string): DeviceEntry | undefined {
    return this.bySite.get(site)?.get(device);
  }

  /** The device, discovering it (and telling onChange listeners) when it is unknown. */
  ensure(site: string, kind: string, device: string, now = Date.now()): DeviceEntry {
    return this.ensureMutable(site, kind, device, now);
  }

  /**
   * True when the device is known with another kind. A discovered device keeps the kind it was
   * first seen with too: one device writing into two measurements would split its history.
   */
  kindMismatch(site: string, device: string, kind: string): boolean {
    const e = this.bySite.get(site)?.get(device);
    return e !== undefined && e.kind !== kind;
  }

  registerMax(site: string, device: string): number | undefined {
    return this.bySite.get(site)?.get(device)?.registerMax;
  }

  /** Called for every accepted reading; must not throw. */
  onReading(r: Reading, refs?: DeviceRefs): void {
    let e = refs?.registry as MutableEntry | undefined;
    if (e === undefined) {
      e = this.ensureMutable(r.site, r.kind, r.device, r.ts);
      if (refs) refs.registry = e;
    }
    const ts = r.ts;
    if (e.lastSeen === undefined || ts > e.lastSeen) e.lastSeen = ts;
    if (e.firstSeen === undefined) e.firstSeen = ts;
    const latest = e.latest;
    const fields = r.fields;
    // An out-of-order reading does not replace a newer value (set() keeps the newest).
    if (r.quality === undefined) for (const metric in fields) latest.set(metric, fields[metric]!, ts, 'good');
    else for (const metric in fields) latest.set(metric, fields[metric]!, ts, qualityOfMetric(r, metric));
  }

  /**
   * What a source knows for certain about a device's presence (Sparkplug B death and birth
   * certificates): offline holds until the source says online again.
   */
  setPresence(site: string, device: string, online: boolean): void {
    const key = `${site}/${device}`;
    if (online) this.down.delete(key);
    else this.down.add(key);
  }

  /** Every device, declared and discovered, in no particular order. */
  *entries(): IterableIterator<DeviceEntry> {
    for (const site of this.bySite.values()) yield* site.values();
  }

  /** Subscribes to newly discovered devices; returns the unsubscribe function. */
  onChange(fn: DeviceListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Online: data at most `onlineIntervals` (1.5) reporting intervals old. Stale: older, up to
   * `offlineIntervals` (3). Offline: older than that (DOMAIN.md: "no data for 3 reporting
   * intervals"). A device that never reported counts from the registry's start.
   */
  stateOf(device: DeviceEntry, now = Date.now()): DeviceState {
    if (this.down.size > 0 && this.down.has(device.key)) return 'offline';
    const age = now - (device.lastSeen ?? this.startedAt);
    const interval = device.reportIntervalSec * 1000;
    if (age <= this.onlineIntervals * interval) return 'online';
    if (age <= this.offlineIntervals * interval) return 'stale';
    return 'offline';
  }

  /** JSON-ready snapshots, ordered by site then device id. */
  list(filter: DeviceFilter = {}, now = Date.now()): DeviceSnapshot[] {
    const out: DeviceSnapshot[] = [];
    const sites = filter.site !== undefined ? [filter.site] : [...this.bySite.keys()].sort();
    for (const site of sites) {
      const devices = this.bySite.get(site);
      if (!devices) continue;
      for (const id of [...devices.keys()].sort()) {
        const e = devices.get(id)!;
        if (filter.kind !== undefined && e.kind !== filter.kind) continue;
        if (filter.discovered !== undefined && e.discovered !== filter.discovered) continue;
        if (filter.critical !== undefined && e.critical !== filter.critical) continue;
        const snap = this.toSnapshot(e, now);
        if (filter.state !== undefined && snap.state !== filter.state) continue;
        out.push(snap);
      }
    }
    return out;
  }

  /** One device by `site/device`, or by a bare device id when only one site has it. */
  get(id: string, now = Date.now()): DeviceSnapshot | undefined {
    const r = this.resolve(id);
    return r.ok ? this.toSnapshot(r.entry, now) : undefined;
  }

  /** Like get(), but says why nothing was found (the API answers 404 or 409). */
  resolve(id: string): ResolveResult {
    const slash = id.indexOf('/');
    if (slash >= 0) {
      const e = this.lookup(id.slice(0, slash), id.slice(slash + 1));
      return e ? { ok: true, entry: e } : { ok: false, error: 'not_found' };
    }
    const matches = this.byId.get(id);
    if (!matches || matches.length === 0) return { ok: false, error: 'not_found' };
    if (matches.length > 1) return { ok: false, error: 'ambiguous', keys: matches.map((e) => e.key).sort() };
    return { ok: true, entry: matches[0]! };
  }

  /** Discovered devices as plain JSON, for the caller to persist. */
  snapshot(): RegistrySnapshot {
    const devices: RegistrySnapshot['devices'] = [];
    for (const site of this.bySite.values()) {
      for (const e of site.values()) {
        if (!e.discovered) continue;
        devices.push({
          site: e.site,
          device: e.id,
          kind: e.kind,
          firstSeen: e.firstSeen ?? null,
          lastSeen: e.lastSeen ?? null,
        });
      }
    }
    return { version: 1, devices };
  }

  /**
   * Re-registers discovered devices from a snapshot() without telling onChange listeners (they
   * are not new). Devices now declared in the config keep their declaration; malformed entries
   * are skipped. Returns how many devices were restored.
   */
  restore(data: unknown): number {
    const snap = parseSnapshot(data);
    let restored = 0;
    for (const d of snap.devices) {
      if (this.lookup(d.site, d.device)) continue;
      this.add(this.discoveredEntry(d.site, d.kind, d.device, d.firstSeen ?? undefined));
      const e = this.bySite.get(d.site)!.get(d.device)!;
      e.lastSeen = d.lastSeen ?? undefined;
      restored++;
    }
    return restored;
  }

  private ensureMutable(site: string, kind: string, device: string, now: number): MutableEntry {
    const existing = this.bySite.get(site)?.get(device);
    if (existing) return existing;
    const e = this.discoveredEntry(site, kind, device, now);
    this.add(e);
    for (const fn of this.listeners) {
      try {
        fn(e);
      } catch (err) {
        // A failing listener must not stop ingestion of the reading that discovered the device.
        this.log?.error({ err, device: e.key }, 'device listener failed');
      }
    }
    return e;
  }

  private discoveredEntry(site: string, kind: string, device: string, firstSeen?: number): MutableEntry {
    return {
      key: `${site}/${device}`,
      site,
      id: device,
      kind,
      name: undefined,
      location: undefined,
      critical: false,
      discovered: true,
      reportIntervalSec: this.kindInterval(kind),
      ratedMaxFlow: undefined,
      registerMax: undefined,
      meterClass: undefined,
      firstSeen,
      lastSeen: undefined,
      latest: new LatestValues(),
    };
  }

  /** What a declared device's config sets on its entry (at start and at runtime alike). */
  private declared(d: DeviceConfig) {
    return {
      kind: d.kind,
      name: d.name,
      location: d.location,
      critical: d.critical,
      discovered: false,
      reportIntervalSec: d.reportIntervalSec ?? this.kindInterval(d.kind),
      ratedMaxFlow: d.ratedMaxFlow,
      registerMax: d.registerMax,
      meterClass: d.meterClass,
    };
  }

  /**
   * Declares a device at runtime (an operator's change, fleet/): a new one is added, a known one
   * (declared or discovered) takes the declared settings in place, keeping its latest values.
   * Returns whether anything changed.
   */
  declare(d: DeviceConfig): boolean {
    const e = this.bySite.get(d.site)?.get(d.id);
    const next = this.declared(d);
    if (!e) {
      this.add({
        key: `${d.site}/${d.id}`,
        site: d.site,
        id: d.id,
        ...next,
        firstSeen: undefined,
        lastSeen: undefined,
        latest: new LatestValues(),
      });
      return true;
    }
    let changed = false;
    for (const [k, v] of Object.entries(next) as [keyof typeof next, unknown][]) {
      if (e[k] === v) continue;
      (e as unknown as Record<string, unknown>)[k] = v;
      changed = true;
    }
    return changed;
  }

  /** Removes a device (retired by an operator); its history stays in InfluxDB. */
  forget(site: string, device: string): boolean {
    const bySite = this.bySite.get(site);
    const e = bySite?.get(device);
    if (!bySite || !e) return false;
    bySite.delete(device);
    if (bySite.size === 0) this.bySite.delete(site);
    const same = this.byId.get(device)?.filter((x) => x !== e) ?? [];
    if (same.length) this.byId.set(device, same);
    else this.byId.delete(device);
    this.down.delete(e.key);
    this.count--;
    return true;
  }

  private kindInterval(kind: string): number {
    return (
      this.kinds[kind]?.reportIntervalSec ?? BUILTIN_KINDS[kind]?.reportIntervalSec ?? FALLBACK_INTERVAL_SEC
    );
  }

  private add(e: MutableEntry): void {
    let site = this.bySite.get(e.site);
    if (!site) this.bySite.set(e.site, (site = new Map()));
    site.set(e.id, e);
    const same = this.byId.get(e.id);
    if (same) same.push(e);
    else this.byId.set(e.id, [e]);
    this.count++;
  }

  private toSnapshot(e: MutableEntry | DeviceEntry, now: number): DeviceSnapshot {
    const latest: Record<string, LatestValue> = {};
    for (const [metric, v] of e.latest) latest[metric] = v;
    return {
      key: e.key,
      id: e.id,
      site: e.site,
      kind: e.kind,
      name: e.name ?? null,
      location: e.location ?? null,
      critical: e.critical,
      discovered: e.discovered,
      reportIntervalSec: e.reportIntervalSec,
      ratedMaxFlow: e.ratedMaxFlow ?? null,
      registerMax: e.registerMax ?? null,
      meterClass: e.meterClass ?? null,
      state: this.stateOf(e, now),
      firstSeen: e.firstSeen ?? null,
      lastSeen: e.lastSeen ?? null,
      latest,
    };
  }
}
