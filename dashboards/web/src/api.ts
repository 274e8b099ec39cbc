// The gateway's HTTP API as the dashboard uses it (docs/api.md). The types come from the zod schemas
// the gateway validates and documents its routes with (gateway/src/http/schemas): a change of contract
// that breaks the dashboard fails `tsc -p dashboards/web`. `import type` only: no server code is bundled.
import type * as S from '../../../gateway/src/http/schemas/index.js';

export type Role = S.Session['role'];
export type Severity = S.Severity;
/** A device's value (CONTRACT.md: numbers or booleans). */
export type MetricValue = S.LatestValue['value'];
export type TicketActionBody = S.TicketActionBody;
export type TicketAction = TicketActionBody['action'];
export type Session = S.Session;
export type Device = S.Device;
export type LatestValue = S.LatestValue;
/** As the source reported it (OPC UA status); absent from older gateways: good. */
export type Quality = NonNullable<LatestValue['quality']>;
export type Alarm = S.Alarm;
export type HistoryEntry = S.TicketHistoryEntry;
export type Ticket = S.Ticket;
export type Threshold = S.Threshold;
/** `GET /api/rules?device=`: what applies to one device. */
export type DeviceRules = S.DeviceRules;
export type Shelf = S.Shelf;
/** `GET /api/reports/monthly/status`: a month's generated reports and their deliveries. */
export type ReportStatus = S.ReportStatus;
/** A maintenance window (`GET /api/windows`) and what `POST /api/windows` takes. */
export type MaintenanceWindow = S.WindowJson;
export type NewWindow = S.WindowBody;
export type WindowSchedule = NewWindow['schedule'];
/** One bucket of a downsampled history (`?points=`): mean, min and max over [ts, ts + interval). */
export type Point = S.Point;
export type History = S.History;
export type NewTicket = S.NewTicket;
export type CalendarEntry = S.CalendarEntry;
export type MonthlyReport = S.MonthlyReport;
export type DemoDevice = S.DemoDevice;
/** `GET /api/fleet/rules?device=`: a device's rules with each value's source. */
export type EffectiveRules = S.EffectiveRules;
export type ConfigChange = S.ConfigChange;
export type OverrideBody = S.OverrideBody;

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

/**
 * The typed client, JSON in and out. It holds no credential: the browser sends the HttpOnly session
 * cookie with every same-origin request (and the live stream), so no script can read or leak it.
 */
export class Api {
  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        credentials: 'same-origin',
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
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
  /** Signs in; the answer sets the session cookie. */
  signIn = (username: string, password: string) =>
    this.call<Session>('POST', '/api/session', { username, password });
  /** An API token exchanged for a session cookie: the token itself is kept nowhere in the browser. */
  signInWithToken = (token: string) => this.call<Session>('POST', '/api/session', { token });
  signOut = () => this.call<null>('DELETE', '/api/session');
  /** Whether single sign-on is offered (public). */
  providers = () =>
    this.call<{ password: boolean; sso: { label: string; start: string } | null }>(
      'GET',
      '/api/session/providers',
    );
  changePassword = (currentPassword: string, newPassword: string) =>
    this.call<null>('POST', '/api/session/password', { currentPassword, newPassword });
  reportStatus = (month: string) =>
    this.call<ReportStatus>('GET', `/api/reports/monthly/status?month=${encodeURIComponent(month)}`);
  devices = async () => (await this.call<{ devices: Device[] }>('GET', '/api/devices')).devices;
  alarms = async (q: { state: 'active' | 'all'; site?: string; device?: string; limit?: number }) =>
    (await this.call<{ alarms: Alarm[] }>('GET', `/api/alarms?${query(q)}`)).alarms;
  ackAlarm = (id: string, note?: string) =>
    this.call<Alarm>('POST', `/api/alarms/${encodeURIComponent(id)}/ack`, note ? { note } : {});
  shelve = (body: S.ShelveBody) => this.call<Shelf>('POST', '/api/alarms/shelve', body);
  shelves = async () => (await this.call<{ shelves: Shelf[] }>('GET', '/api/alarms/shelves')).shelves;
  windows = async (all = false) =>
    (await this.call<{ windows: MaintenanceWindow[] }>('GET', `/api/windows${all ? '?all=true' : ''}`))
      .windows;
  createWindow = (body: NewWindow) => this.call<MaintenanceWindow>('POST', '/api/windows', body);
  endWindow = (id: string) =>
    this.call<MaintenanceWindow>('POST', `/api/windows/${encodeURIComponent(id)}/end`);
  unshelve = (id: string) => this.call<Shelf>('DELETE', `/api/alarms/shelves/${encodeURIComponent(id)}`);
  tickets = async (q: { status?: string; site?: string; device?: string; offset?: number } = {}) =>
    (await this.call<{ tickets: Ticket[] }>('GET', `/api/tickets?${query(q)}`)).tickets;
  /** Every ticket of these statuses, page after page (a list answers at most its page size). */
  ticketsIn = async (statuses: string[]): Promise<Ticket[]> => {
    const out: Ticket[] = [];
    for (const status of statuses) {
      let offset: number | null = 0;
      while (offset !== null) {
        const page: S.TicketPage = await this.call('GET', `/api/tickets?${query({ status, offset })}`);
        out.push(...page.tickets);
        offset = page.nextOffset;
      }
    }
    return out;
  };
  ticket = (id: string) => this.call<Ticket>('GET', `/api/tickets/${encodeURIComponent(id)}`);
  createTicket = (body: NewTicket) => this.call<Ticket>('POST', '/api/tickets', body);
  act = (id: string, body: S.TicketActionBody) =>
    this.call<Ticket>('POST', `/api/tickets/${encodeURIComponent(id)}/actions`, body);
  rules = (deviceKey: string) =>
    this.call<DeviceRules>('GET', `/api/rules?device=${encodeURIComponent(deviceKey)}`);
  /** History downsampled on the gateway to about `points` buckets over [from, to]. */
  readings = (deviceKey: string, metric: string, from: number, to: number, points: number) =>
    this.call<History>(
      'GET',
      `/api/devices/${encodeURIComponent(deviceKey)}/readings?${query({ metric, from, to, points })}`,
    );
  calendar = (from: string, to: string) =>
    this.call<S.Calendar>(
      'GET',
      `/api/maintenance/calendar?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
    );
  monthly = (month: string) => this.call<MonthlyReport>('GET', `/api/reports/monthly?month=${month}`);
  fleetRules = (deviceKey: string) =>
    this.call<EffectiveRules>('GET', `/api/fleet/rules?device=${encodeURIComponent(deviceKey)}`);
  putOverride = (body: OverrideBody) =>
    this.call<{ change: ConfigChange | null }>('PUT', '/api/fleet/overrides', body);
  configHistory = async (q: { entity?: string; key?: string; limit?: number }) =>
    (await this.call<{ changes: ConfigChange[] }>('GET', `/api/fleet/history?${query(q)}`)).changes;
  restoreChange = (id: number) =>
    this.call<{ change: ConfigChange | null }>('POST', `/api/fleet/history/${id}/restore`);
  contacts = () => this.call<S.Contacts>('GET', '/api/fleet/contacts');
  setOnCall = (contact: S.OnCallBody['contact'], note?: string) =>
    this.call<{ change: ConfigChange | null }>('PUT', '/api/fleet/on-call', {
      contact,
      ...(note ? { note } : {}),
    });
  /** Replaces the escalation chain, level 1 first. */
  setChain = (contacts: S.Contacts['chain'], note?: string) =>
    this.call<{ change: ConfigChange | null }>('PUT', '/api/fleet/contacts', {
      contacts,
      ...(note ? { note } : {}),
    });
  /** A discovered device becomes declared with the kind it reports as. */
  adoptDevice = (site: string, id: string) =>
    this.call<{ change: ConfigChange | null }>(
      'POST',
      `/api/fleet/devices/${encodeURIComponent(site)}/${encodeURIComponent(id)}/adopt`,
    );
  fleetDevices = async () =>
    (await this.call<{ devices: S.FleetDevice[] }>('GET', '/api/fleet/devices')).devices;
  retireDevice = (site: string, id: string) =>
    this.call<{ change: ConfigChange | null }>(
      'POST',
      `/api/fleet/devices/${encodeURIComponent(site)}/${encodeURIComponent(id)}/retire`,
      {},
    );
  putDevice = (body: S.DeviceBody) =>
    this.call<{ change: ConfigChange | null }>('PUT', '/api/fleet/devices', body);
  moveDevice = (site: string, id: string, to: string) =>
    this.call<{ change: ConfigChange | null }>(
      'POST',
      `/api/fleet/devices/${encodeURIComponent(site)}/${encodeURIComponent(id)}/move`,
      { site: to },
    );
  importDevices = (csv: string, dryRun: boolean) =>
    this.call<S.ImportResult>('POST', '/api/fleet/devices/import', { csv, dryRun });
  // Maintenance schedules (views/fleet-schedules.tsx).
  fleetSchedules = () => this.call<S.FleetSchedules>('GET', '/api/fleet/schedules?count=6');
  putSchedule = (body: S.ScheduleBody) =>
    this.call<{ change: ConfigChange | null }>('PUT', '/api/fleet/schedules', body);
  retireSchedule = (id: string) =>
    this.call<{ change: ConfigChange | null }>(
      'POST',
      `/api/fleet/schedules/${encodeURIComponent(id)}/retire`,
      {},
    );
  moveOccurrence = (id: string, body: S.MoveOccurrenceBody) =>
    this.call<{ change: ConfigChange | null }>(
      'POST',
      `/api/fleet/schedules/${encodeURIComponent(id)}/move`,
      body,
    );
  skipOccurrence = (id: string, body: S.SkipOccurrenceBody) =>
    this.call<{ change: ConfigChange | null }>(
      'POST',
      `/api/fleet/schedules/${encodeURIComponent(id)}/skip`,
      body,
    );
  undoOccurrence = (id: string, o: { dueAt: string; site?: string; device?: string }) =>
    this.call<{ change: ConfigChange | null }>(
      'DELETE',
      `/api/fleet/schedules/${encodeURIComponent(id)}/occurrences?${query(o)}`,
    );
  channels = () => this.call<S.ChannelsJson>('GET', '/api/fleet/channels');
  putWebhook = (body: S.WebhookBody) =>
    this.call<{ change: ConfigChange | null }>('PUT', '/api/fleet/channels/webhooks', body);
  removeWebhook = (name: string) =>
    this.call<{ change: ConfigChange | null }>(
      'DELETE',
      `/api/fleet/channels/webhooks/${encodeURIComponent(name)}`,
    );
  putEmail = (body: S.EmailBody) =>
    this.call<{ change: ConfigChange | null }>('PUT', '/api/fleet/channels/email', body);
  testChannel = (channel: string) =>
    this.call<{ verdict: string; status: number | null; error: string | null }>(
      'POST',
      '/api/fleet/channels/test',
      { channel },
    );
  demoDevices = () => this.call<{ devices: DemoDevice[] }>('GET', '/api/demo/devices');
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
