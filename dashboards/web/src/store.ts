// Everything live in one place: the devices with their latest values, active alarms and open
// tickets, fed by one EventSource. Views re-render at most every REDRAW_MS (one requestAnimationFrame
// after a batch), however many events arrive: 10,000 devices reporting must not mean 10,000 renders.
import { Ring } from './ring';
import { Api, type Alarm, type Device, type MetricValue, type Quality, type Ticket } from './api';

export type Conn = 'connecting' | 'live' | 'reconnecting' | 'stale';
export { Ring };
export type TileState = 'critical' | 'warning' | 'offline' | 'normal';

const REDRAW_MS = 250;
/** No reading for this long while connected: the data is shown as stale. */
export const STALE_AFTER_MS = 30_000;

/** The metric a tile's sparkline follows, per kind. */
export const PRIMARY: Record<string, string> = {
  chlorination: 'free_chlorine_mgl',
  'env-probe': 'temperature_c',
  'gas-meter': 'flow_m3h',
  'water-meter': 'flow_lph',
};

export interface ReadingEvent {
  site: string;
  device: string;
  kind: string;
  ts: string;
  values: Record<string, MetricValue>;
  /** Absent: good. */
  quality?: Quality;
}

type ReadingListener = (r: ReadingEvent) => void;

const isActive = (a: Alarm) => a.state === 'active-unacknowledged' || a.state === 'active-acknowledged';
const OPEN_TICKET = new Set(['open', 'acknowledged', 'assigned', 'in_progress', 'resolved', 'reopened']);

export class Store {
  readonly devices = new Map<string, Device>();
  readonly sparks = new Map<string, Ring>();
  readonly alarms = new Map<string, Alarm>();
  readonly tickets = new Map<string, Ticket>();
  conn: Conn = 'connecting';
  lastEventAt = 0;
  /** Bumped on every redraw that has changes; views compare it to skip work. */
  version = 0;
  error: string | null = null;
  private es: EventSource | null = null;
  private dirty = false;
  private timer: number | undefined;
  private staleTimer: number | undefined;
  private retryTimer: number | undefined;
  private readonly subs = new Set<() => void>();
  private readonly readingSubs = new Map<string, Set<ReadingListener>>();
  private lastFlush = 0;
  private hadError = false;
  /** Per device key: the worst active alarm severity (recomputed on alarm changes). */
  private worst = new Map<string, 'critical' | 'warning'>();

  constructor(readonly api: Api) {}

  async start(): Promise<void> {
    await this.loadSnapshot();
    this.connect();
    this.staleTimer = window.setInterval(() => this.checkStale(), 1000);
  }

  stop(): void {
    this.es?.close();
    this.es = null;
    window.clearInterval(this.staleTimer);
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

  async loadSnapshot(): Promise<void> {
    const [devices, alarms, tickets] = await Promise.all([
      this.api.devices(),
      this.api.alarms('active', 5000),
      this.api.tickets().catch(() => [] as Ticket[]),
    ]);
    for (const d of devices) {
      this.devices.set(d.key, d);
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
    this.recomputeWorst();
    this.markDirty();
  }

  private connect(): void {
    this.es?.close();
    const es = new EventSource(`/api/live?token=${encodeURIComponent(this.api.token)}`);
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
    es.addEventListener('reading', (e) => this.onReadingEvent(JSON.parse((e as MessageEvent<string>).data)));
    es.addEventListener('alarm', (e) => this.onAlarmEvent(JSON.parse((e as MessageEvent<string>).data)));
    es.addEventListener('ticket', (e) => this.onTicketEvent(JSON.parse((e as MessageEvent<string>).data)));
  }

  private setConn(c: Conn): void {
    if (this.conn === c) return;
    this.conn = c;
    this.markDirty();
  }

  private checkStale(): void {
    if (this.conn === 'live' && this.devices.size > 0 && Date.now() - this.lastEventAt > STALE_AFTER_MS)
      this.setConn('stale');
  }

  private touch(): void {
    this.lastEventAt = Date.now();
    if (this.conn === 'stale') this.setConn('live');
  }

  private onReadingEvent(r: ReadingEvent): void {
    this.touch();
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
        reportIntervalSec: 60,
        state: 'online',
        lastSeen: ts,
        latest: {},
      };
      this.devices.set(key, d);
    }
    const quality = r.quality ?? 'good';
    for (const [m, v] of Object.entries(r.values)) d.latest[m] = { value: v, ts, quality };
    d.lastSeen = ts;
    d.state = 'online';
    const p = PRIMARY[d.kind];
    const v = p ? r.values[p] : undefined;
    // A value its source does not vouch for (a restarted PLC's 0) is shown, marked, but not drawn.
    if (typeof v === 'number' && quality === 'good') {
      let ring = this.sparks.get(key);
      if (!ring) this.sparks.set(key, (ring = new Ring()));
      ring.push(v);
    }
    const subs = this.readingSubs.get(key);
    if (subs) for (const fn of subs) fn(r);
    this.markDirty();
  }

  private onAlarmEvent(e: { event: string; alarm: Alarm }): void {
    this.touch();
    if (isActive(e.alarm)) this.alarms.set(e.alarm.id, e.alarm);
    else this.alarms.delete(e.alarm.id);
    this.recomputeWorst();
    this.markDirty();
  }

  private onTicketEvent(e: { event: string; ticket: Ticket }): void {
    this.touch();
    const prev = this.tickets.get(e.ticket.id);
    const t = { ...prev, ...e.ticket };
    if (OPEN_TICKET.has(t.status)) this.tickets.set(t.id, t);
    else this.tickets.delete(t.id);
    this.markDirty();
  }

  /** After an action the answer is the newest state; the stream's event may come a moment later. */
  putTicket(t: Ticket): void {
    if (OPEN_TICKET.has(t.status)) this.tickets.set(t.id, t);
    else this.tickets.delete(t.id);
    this.markDirty();
  }

  putAlarm(a: Alarm): void {
    if (isActive(a)) this.alarms.set(a.id, a);
    else this.alarms.delete(a.id);
    this.recomputeWorst();
    this.markDirty();
  }

  private recomputeWorst(): void {
    const w = new Map<string, 'critical' | 'warning'>();
    for (const a of this.alarms.values()) {
      const key = `${a.site}/${a.device}`;
      if (a.severity === 'critical') w.set(key, 'critical');
      else if (a.severity === 'warning' && w.get(key) !== 'critical') w.set(key, 'warning');
    }
    this.worst = w;
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
