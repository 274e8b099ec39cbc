// The gateway's HTTP API as the dashboard uses it (CONTRACT.md, README "HTTP API").

export type Role = 'viewer' | 'engineer' | 'admin';
export type Severity = 'info' | 'warning' | 'critical';
export type MetricValue = number | boolean | string;

export interface Session {
  name: string;
  role: Role;
}

export interface Device {
  key: string;
  id: string;
  site: string;
  kind: string;
  name: string | null;
  location: string | null;
  critical: boolean;
  reportIntervalSec: number;
  state: 'online' | 'stale' | 'offline';
  lastSeen: number | null;
  latest: Record<string, LatestValue>;
}

/** As the source reported it (OPC UA status); absent from older gateways: good. */
export type Quality = 'good' | 'uncertain' | 'bad';

export interface LatestValue {
  value: MetricValue;
  ts: number;
  quality?: Quality;
}

export interface Alarm {
  id: string;
  device: string;
  site: string;
  kind: string;
  rule: string;
  severity: Severity;
  state: 'active-unacknowledged' | 'active-acknowledged' | 'cleared-unacknowledged' | 'cleared';
  value: MetricValue | null;
  message: string;
  raisedAt: string;
  clearedAt: string | null;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  shelved: boolean;
  critical: boolean;
}

export interface HistoryEntry {
  ts: string;
  actor: string;
  action: string;
  from: string | null;
  to: string | null;
  note: string | null;
}

export interface Ticket {
  id: string;
  title: string;
  status: string;
  priority: 'critical' | 'high' | 'medium' | 'low';
  site: string;
  device: string | null;
  rule: string | null;
  alarmId: string | null;
  createdAt: string;
  responseDueAt: string | null;
  resolveDueAt: string | null;
  respondedAt: string | null;
  assignee: string | null;
  escalationLevel: number;
  repeatOf: string | null;
  resolvedBy?: string | null;
  verifiedBy?: string | null;
  maintenance?: {
    schedule: string;
    dueAt: string;
    /** The completion form resolve needs (FORMS in views/completion-form.tsx). */
    form: string;
    record: Record<string, unknown> | null;
  } | null;
  /** On hold since heldSince; the resolution clock stands still unless clockPaused is false. */
  onHold?: boolean;
  heldSince?: string | null;
  holdReason?: string | null;
  clockPaused?: boolean;
  heldMs?: number;
  history?: HistoryEntry[];
  allowedActions?: string[];
}

export interface Threshold {
  rule: string;
  metric: string;
  level: 'lowLow' | 'low' | 'high' | 'highHigh';
  value: number;
  severity: Severity;
}

/** `GET /api/rules?device=`: what applies to one device. */
export interface DeviceRules {
  kind: string;
  critical: boolean;
  rules: Array<{ id: string; kind: string; metric?: string; description?: string }>;
  thresholds: Threshold[];
}

export interface Shelf {
  id: string;
  site: string | null;
  device: string | null;
  rule: string | null;
  until: string;
  user: string;
  reason: string;
}

/** One bucket of a downsampled history (`?points=`): mean, min and max over [ts, ts + interval). */
export interface Point {
  ts: number;
  value: MetricValue | null;
  min?: MetricValue | null;
  max?: MetricValue | null;
}

export interface History {
  /** Bucket length in ms. */
  interval: number | null;
  /** Good values only. */
  points: Point[];
  /** Where the metric had values that are not good (left out of `points`); absent from older gateways. */
  notGood?: Array<{ ts: number; count?: number; quality?: Quality }>;
}

export interface NewTicket {
  title: string;
  site: string;
  device?: string;
  priority?: Ticket['priority'];
  note?: string;
}

export interface CalendarEntry {
  schedule: string;
  title: string;
  site: string;
  device: string | null;
  dueAt: string;
  ticketId: string | null;
  status: string | null;
  form?: string;
}

export interface Stat {
  count: number;
  meanMin: number | null;
  p90Min: number | null;
}
export interface Rate {
  met: number;
  total: number;
  rate: number | null;
}
export interface MonthlyReport {
  month: string;
  from: string;
  to: string;
  tickets: {
    opened: { total: number; byPriority: Record<string, number>; bySite: Record<string, number> };
    closed: { total: number; byPriority: Record<string, number>; bySite: Record<string, number> };
  };
  response: Stat;
  resolution: Stat;
  sla: { response: Rate; resolution: Rate };
  escalations: { total: number; byLevel: Record<string, number> };
  repeats: { count: number; rate: number | null };
  preventive: { due: number; doneOnTime: number; late: number; open: number; onTimeRate: number | null };
  alarms: {
    total: number;
    bySeverity: Record<string, number>;
    byRule: Record<string, number>;
    bySite: Record<string, number>;
  };
  readRates: Array<{
    site: string;
    meterClass: string;
    period: string;
    expected: number;
    reported: number;
    rate: number | null;
    target: number;
    met: boolean;
  }>;
}

export interface DemoDevice {
  id: string;
  site: string;
  kind: string;
  /** Faults active now. */
  faults: string[];
  /** Faults this device can be given. */
  available: string[];
}

/** An answer that is not 2xx, with the gateway's `{"error": {code, message}}` when it sent one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The typed client: one token, JSON in and out. */
export class Api {
  constructor(readonly token: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, 'network', (err as Error).message);
    }
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (a proxy's error page): the status says enough.
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? res.statusText);
    }
    return json as T;
  }

  session = () => this.call<Session>('GET', '/api/session');
  devices = async () => (await this.call<{ devices: Device[] }>('GET', '/api/devices')).devices;
  alarms = async (q: { state: 'active' | 'all'; site?: string; device?: string; limit?: number }) =>
    (await this.call<{ alarms: Alarm[] }>('GET', `/api/alarms?${query(q)}`)).alarms;
  ackAlarm = (id: string, note?: string) =>
    this.call<Alarm>('POST', `/api/alarms/${encodeURIComponent(id)}/ack`, note ? { note } : {});
  shelve = (body: { site?: string; device?: string; rule?: string; durationMin: number; reason: string }) =>
    this.call<Shelf>('POST', '/api/alarms/shelve', body);
  shelves = async () => (await this.call<{ shelves: Shelf[] }>('GET', '/api/alarms/shelves')).shelves;
  unshelve = (id: string) => this.call<Shelf>('DELETE', `/api/alarms/shelves/${encodeURIComponent(id)}`);
  tickets = async (q: { status?: string; site?: string; device?: string; offset?: number } = {}) =>
    (await this.call<{ tickets: Ticket[] }>('GET', `/api/tickets?${query(q)}`)).tickets;
  /** Every ticket of these statuses, page after page (a list answers at most its page size). */
  ticketsIn = async (statuses: string[]): Promise<Ticket[]> => {
    const out: Ticket[] = [];
    for (const status of statuses) {
      let offset: number | null = 0;
      while (offset !== null) {
        const page: { tickets: Ticket[]; nextOffset?: number | null } = await this.call(
          'GET',
          `/api/tickets?${query({ status, offset })}`,
        );
        out.push(...page.tickets);
        // An older gateway answers everything at once, without nextOffset.
        offset = page.nextOffset ?? null;
      }
    }
    return out;
  };
  ticket = (id: string) => this.call<Ticket>('GET', `/api/tickets/${encodeURIComponent(id)}`);
  createTicket = (body: NewTicket) => this.call<Ticket>('POST', '/api/tickets', body);
  act = (
    id: string,
    body: { action: string; assignee?: string; note?: string; form?: Record<string, unknown> },
  ) => this.call<Ticket>('POST', `/api/tickets/${encodeURIComponent(id)}/actions`, body);
  rules = (deviceKey: string) =>
    this.call<DeviceRules>('GET', `/api/rules?device=${encodeURIComponent(deviceKey)}`);
  /** History downsampled on the gateway to about `points` buckets over [from, to]. */
  readings = (deviceKey: string, metric: string, from: number, to: number, points: number) =>
    this.call<History>(
      'GET',
      `/api/devices/${encodeURIComponent(deviceKey)}/readings?${query({ metric, from, to, points })}`,
    );
  calendar = (from: string, to: string) =>
    this.call<CalendarEntry[] | { entries: CalendarEntry[] }>(
      'GET',
      `/api/maintenance/calendar?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
    );
  monthly = (month: string) => this.call<MonthlyReport>('GET', `/api/reports/monthly?month=${month}`);
  demoDevices = () => this.call<DemoDevice[] | { devices: DemoDevice[] }>('GET', '/api/demo/devices');
  demoFault = (id: string, fault: string) =>
    this.call<unknown>('POST', `/api/demo/devices/${encodeURIComponent(id)}/faults`, { fault });
  demoClear = (id: string) =>
    this.call<unknown>('DELETE', `/api/demo/devices/${encodeURIComponent(id)}/faults`);
}

/** A query string of the defined values. */
function query(q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  return p.toString();
}

/** Lists may come bare or wrapped in an object (`{devices: [...]}`); the dashboard takes both. */
export function listOf<T>(v: T[] | Record<string, unknown>): T[] {
  if (Array.isArray(v)) return v;
  const first = Object.values(v).find(Array.isArray);
  return (first as T[] | undefined) ?? [];
}
