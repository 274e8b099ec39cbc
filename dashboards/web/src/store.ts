// Everything live in one place: the devices with their latest values, active alarms and open
// tickets, fed by one EventSource. Views re-render at most every REDRAW_MS (one requestAnimationFrame
// after a batch), however many events arrive: 10,000 devices reporting must not mean 10,000 renders.
// What changed is counted per device (`revs`), per tile state (`layout`) and per list (`alarmsRev`,
// `ticketsRev`), so a redraw touches only the tiles and lists that changed.
import { Ring } from './ring';
import { Api, type Alarm, type Device, type MetricValue, type Ticket } from './api';
import { qualityIn, type ReadingQuality } from './quality';

export type Conn = 'connecting' | 'live' | 'reconnecting' | 'stale';
export { Ring };
export type TileState = 'critical' | 'warning' | 'offline' | 'normal';

const REDRAW_MS = 250;
/** How often tiles are checked for having gone offline without any event. */
const SWEEP_MS = 5000;
/** The gateway pings every 15 s unless its ping says otherwise. */
const DEFAULT_PING_MS = 15_000;
/** Missed pings before the stream counts as dead and is opened again. */
const PINGS_MISSED = 2.5;

/** The metric a tile's sparkline follows, per kind. */
export const PRIMARY: Record<string, string> = {
  chlorination: 'free_chlorine_mgl',
  'env-probe': 'temperature_c',
  'gas-meter': 'flow_m3h',
  'water-meter': 'flow_lph',
};

export interface ReadingEvent extends ReadingQuality {
  site: string;
  device: string;
  kind: string;
  ts: string;
  values: Record<string, MetricValue>;
}

type ReadingListener = (r: ReadingEvent) => void;

const isActive = (a: Alarm) => a.state === 'active-unacknowledged' || a.state === 'active-acknowledged';
type Worst = 'critical' | 'warning';
/** The worse of a device's worst so far and one more alarm's severity (info does not colour a tile). */
const worse = (w: Worst | undefined, severity: string): Worst | undefined =>
  severity === 'critical' ? 'critical' : severity === 'warning' && w !== 'critical' ? 'warning' : w;
const deviceKey = (a: Alarm): string => `${a.site}/${a.device}`;
const OPEN_TICKET = new Set(['open', 'acknowledged', 'assigned', 'in_progress', 'resolved', 'reopened']);

export class Store {
  readonly devices = new Map<string, Device>();
  readonly sparks = new Map<string, Ring>();
  readonly alarms = new Map<string, Alarm>();
  readonly tickets = new Map<string, Ticket>();
  /** Per device key: bumped whenever what its tile shows changed. */
  readonly revs = new Map<string, number>();
  /** Per device key: bumped when one of its alarms or work orders changed (its view asks again). */
  readonly eventRevs = new Map<string, number>();
  /** Per device key: its tile state when last looked at. */
  readonly states = new Map<string, TileState>();
  /** Bumped when a device appears or a tile changes state: only then is the grid sorted again. */
  layout = 0;
  alarmsRev = 0;
  ticketsRev = 0;
  conn: Conn = 'connecting';
  /** When the stream last said anything (an event or a ping). */
  lastEventAt = 0;
  /** Bumped on every redraw that has changes; views compare it to skip work. */
  version = 0;
  error: string | null = null;
  private es: EventSource | null = null;
  private pingMs = DEFAULT_PING_MS;
  private dirty = false;
  private timer: number | undefined;
  private sweepTimer: number | undefined;
  private streamTimer: number | undefined;
  private retryTimer: number | undefined;
  private readonly subs = new Set<() => void>();
  private readonly readingSubs = new Map<string, Set<ReadingListener>>();
  private lastFlush = 0;
  private hadError = false;
  /** Per device key: the worst active alarm severity (recomputed on alarm changes). */
  private worst = new Map<string, Worst>();
  /** Per device key: the ids of its active alarms, so an alarm event looks at its own device only. */
  private readonly alarmIds = new Map<string, Set<string>>();

  constructor(readonly api: Api) {}

  async start(): Promise<void> {
    await this.loadSnapshot();
    this.connect();
    this.sweepTimer = window.setInterval(() => this.sweep(), SWEEP_MS);
    this.streamTimer = window.setInterval(() => this.checkStream(), 1000);
  }

  stop(): void {
    this.es?.close();
    this.es = null;
    window.clearInterval(this.sweepTimer);
    window.clearInterval(this.streamTimer);
    window.clearTimeout(this.retryTimer);
    window.clearTimeout(this.timer);
  }

  subscribe(fn: () => void): () => void {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  /** Every reading of one device as it arrives (the device view's live chart). */
  onReading(key: string, fn: ReadingListener): () => void {
    let set = this.readingSubs.get(key);
    if (!set) this.readingSubs.set(key, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  rev(key: string): number {
    return this.revs.get(key) ?? 0;
  }

  async loadSnapshot(): Promise<void> {
    const [devices, alarms, tickets] = await Promise.all([
      this.api.devices(),
      this.api.alarms({ state: 'active', limit: 5000 }),
      this.api.ticketsIn([...OPEN_TICKET]).catch(() => [] as Ticket[]),
    ]);
    for (const d of devices) {
      this.devices.set(d.key, d);
      this.bump(d.key);
      const p = PRIMARY[d.kind];
      const v = p ? d.latest[p]?.value : undefined;
      if (typeof v === 'number' && !this.sparks.has(d.key)) {
        const r = new Ring();
        r.push(v);
        this.sparks.set(d.key, r);
      }
    }
    this.alarms.clear();
    for (const a of alarms) this.alarms.set(a.id, a);
    this.tickets.clear();
    for (const t of tickets) if (OPEN_TICKET.has(t.status)) this.tickets.set(t.id, t);
    this.alarmsRev++;
    this.ticketsRev++;
    this.recomputeWorst();
    this.layout++;
    this.sweep();
    this.markDirty();
  }

  private connect(): void {
    this.es?.close();
    window.clearTimeout(this.retryTimer);
    // The session cookie goes with it: no credential in the URL (proxies and history keep URLs).
    const es = new EventSource('/api/live');
    this.es = es;
    es.onopen = () => {
      this.setConn('live');
      this.lastEventAt = Date.now();
      // Whatever happened while disconnected is in the snapshot, not in the stream.
      if (this.hadError) void this.loadSnapshot().catch(() => undefined);
      this.hadError = false;
    };
    es.onerror = () => {
      this.hadError = true;
      this.setConn('reconnecting');
      // A refused stream (the gateway answered an error) is closed for good: start a new one.
      if (es.readyState === EventSource.CLOSED) {
        window.clearTimeout(this.retryTimer);
        this.retryTimer = window.setTimeout(() => this.connect(), 3000);
      }
    };
    const on = (type: string, fn: (data: never) => void) =>
      es.addEventListener(type, (e) => {
        this.touch();
        fn(JSON.parse((e as MessageEvent<string>).data) as never);
      });
    on('reading', (r: ReadingEvent) => this.onReadingEvent(r));
    on('alarm', (e: { event: string; alarm: Alarm }) => this.onAlarmEvent(e));
    on('ticket', (e: { event: string; ticket: Ticket }) => this.onTicketEvent(e));
    on('ping', (p: { everyMs?: number }) => {
      if (typeof p.everyMs === 'number' && p.everyMs > 0) this.pingMs = p.everyMs;
    });
  }

  private setConn(c: Conn): void {
    if (this.conn === c) return;
    this.conn = c;
    this.markDirty();
  }

  /** Every few seconds: tiles whose device fell silent turn offline without any event. */
  private sweep(): void {
    const now = Date.now();
    for (const d of this.devices.values()) this.refreshState(d, now);
  }

  /** Every second: a stream that said nothing, not even a ping, for 2.5 pings is opened again. */
  private checkStream(): void {
    if (this.conn === 'live' && Date.now() - this.lastEventAt > this.pingMs * PINGS_MISSED) {
      // The socket may look open while nothing comes through (a proxy or NAT dropped it).
      this.setConn('stale');
      this.hadError = true;
      this.connect();
    }
  }

  private touch(): void {
    this.lastEventAt = Date.now();
    if (this.conn !== 'live') this.setConn('live');
  }

  private bumpEvents(key: string): void {
    this.eventRevs.set(key, (this.eventRevs.get(key) ?? 0) + 1);
  }

  private bump(key: string): void {
    this.revs.set(key, (this.revs.get(key) ?? 0) + 1);
  }

  /** Recomputes one tile's state; a change re-sorts the grid. */
  private refreshState(d: Device, now: number): void {
    const s = this.tileState(d, now);
    if (this.states.get(d.key) === s) return;
    this.states.set(d.key, s);
    this.bump(d.key);
    this.layout++;
    this.markDirty();
  }

  private onReadingEvent(r: ReadingEvent): void {
    const key = `${r.site}/${r.device}`;
    const ts = Date.parse(r.ts);
    let d = this.devices.get(key);
    if (!d) {
      d = {
        key,
        id: r.device,
        site: r.site,
        kind: r.kind,
        name: null,
        location: null,
        critical: false,
        discovered: true,
        reportIntervalSec: 60,
        ratedMaxFlow: null,
        registerMax: null,
        meterClass: null,
        state: 'online',
        firstSeen: ts,
        lastSeen: ts,
        latest: {},
      };
      this.devices.set(key, d);
      this.layout++;
    }
    for (const [m, v] of Object.entries(r.values)) d.latest[m] = { value: v, ts, quality: qualityIn(r, m) };
    d.lastSeen = ts;
    d.state = 'online';
    const p = PRIMARY[d.kind];
    const v = p ? r.values[p] : undefined;
    // A value its source does not vouch for (a restarted PLC's 0) is shown, marked, but not drawn.
    if (typeof v === 'number' && p !== undefined && qualityIn(r, p) === 'good') {
      let ring = this.sparks.get(key);
      if (!ring) this.sparks.set(key, (ring = new Ring()));
      ring.push(v);
    }
    this.bump(key);
    this.refreshState(d, Date.now());
    const subs = this.readingSubs.get(key);
    if (subs) for (const fn of subs) fn(r);
    this.markDirty();
  }

  private onAlarmEvent(e: { event: string; alarm: Alarm }): void {
    this.putAlarm(e.alarm);
  }

  private onTicketEvent(e: { event: string; ticket: Ticket }): void {
    const prev = this.tickets.get(e.ticket.id);
    this.putTicket({ ...prev, ...e.ticket });
  }

  /** After an action the answer is the newest state; the stream's event may come a moment later. */
  putTicket(t: Ticket): void {
    if (OPEN_TICKET.has(t.status)) this.tickets.set(t.id, t);
    else this.tickets.delete(t.id);
    this.ticketsRev++;
    if (t.device) this.bumpEvents(`${t.site}/${t.device}`);
    this.markDirty();
  }

  putAlarm(a: Alarm): void {
    const key = deviceKey(a);
    if (isActive(a)) {
      this.alarms.set(a.id, a);
      this.indexAlarm(key, a.id);
    } else {
      this.alarms.delete(a.id);
      const ids = this.alarmIds.get(key);
      ids?.delete(a.id);
      if (ids?.size === 0) this.alarmIds.delete(key);
    }
    this.alarmsRev++;
    this.bumpEvents(key);
    this.recomputeWorstOf(key);
    this.markDirty();
  }

  private indexAlarm(key: string, id: string): void {
    let ids = this.alarmIds.get(key);
    if (!ids) this.alarmIds.set(key, (ids = new Set()));
    ids.add(id);
  }

  /** One device's worst severity, from its own active alarms. */
  private recomputeWorstOf(key: string): void {
    let w: Worst | undefined;
    for (const id of this.alarmIds.get(key) ?? []) w = worse(w, this.alarms.get(id)?.severity ?? '');
    const before = this.worst.get(key);
    if (w) this.worst.set(key, w);
    else this.worst.delete(key);
    const d = before === w ? undefined : this.devices.get(key);
    if (d) this.refreshState(d, Date.now());
  }

  /** Every device's worst severity and the alarm index, from all active alarms (a snapshot). */
  private recomputeWorst(): void {
    const w = new Map<string, Worst>();
    this.alarmIds.clear();
    for (const a of this.alarms.values()) {
      const key = deviceKey(a);
      this.indexAlarm(key, a.id);
      const sev = worse(w.get(key), a.severity);
      if (sev) w.set(key, sev);
    }
    const before = this.worst;
    this.worst = w;
    const now = Date.now();
    for (const key of new Set([...before.keys(), ...w.keys()])) {
      if (before.get(key) === w.get(key)) continue;
      const d = this.devices.get(key);
      if (d) this.refreshState(d, now);
    }
  }

  tileState(d: Device, now = Date.now()): TileState {
    const w = this.worst.get(d.key);
    if (w) return w;
    if (d.state === 'offline') return 'offline';
    if (d.lastSeen !== null && now - d.lastSeen > 3 * d.reportIntervalSec * 1000) return 'offline';
    return 'normal';
  }

  /** Schedules one redraw: at most every REDRAW_MS, on an animation frame. */
  markDirty(): void {
    if (this.dirty) return;
    this.dirty = true;
    const wait = Math.max(0, this.lastFlush + REDRAW_MS - performance.now());
    this.timer = window.setTimeout(() => requestAnimationFrame(() => this.flush()), wait);
  }

  private flush(): void {
    this.dirty = false;
    this.lastFlush = performance.now();
    this.version++;
    for (const fn of this.subs) fn();
  }
}
