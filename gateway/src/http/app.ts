import type { SecureContextOptions } from 'node:tls';
import fastifyCookie from '@fastify/cookie';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import type { Logger } from '../core/log.js';
import type { ComponentHealth } from '../core/types.js';
import type { DeviceRegistry } from '../registry/registry.js';
import type { TokenStore } from './auth.js';
import type { AlarmService } from '../alarms/index.js';
import type { LiveConfig } from '../config/schema.js';
import type { LiveHub } from '../live/hub.js';
import type { NotificationService } from '../notifications/index.js';
import type { DashboardConfig } from '../config/schema.js';
import type { InfluxReader } from '../sinks/influx/query.js';
import type { WorkOrderService } from '../workorders/index.js';
import type { TokenAdmin } from './token-db.js';
import type { InboundKeys } from './inbound-keys.js';
import type { SharedView } from '../view/types.js';
import type { SharedQuiet } from '../quiet/types.js';
import type { AccountService } from '../accounts/service.js';
import type { SecureCookie } from './session-cookie.js';
import { registerDashboard } from './dashboard.js';
import { installErrorHandler } from './error-handler.js';
import { errorBody } from './errors.js';
import { registerOpenApi } from './openapi.js';
import { registerSecurityHeaders } from './security-headers.js';
import { packageVersion } from './package-version.js';
import { enforceRouteRoles, type RouteRole } from './route-roles.js';
import { adminRoutes, type AdminRouteDeps } from './routes/admin.js';
import { alarmRoutes, type RulesView } from './routes/alarms.js';
import { demoRoutes, type DemoRouteDeps } from './routes/demo.js';
import { deviceRoutes } from './routes/devices.js';
import { fleetRoutes, type FleetRouteDeps } from './routes/fleet.js';
import { fleetDeviceRoutes } from './routes/fleet-devices.js';
import { fleetContactRoutes } from './routes/fleet-contacts.js';
import { fleetScheduleRoutes } from './routes/fleet-schedules.js';
import { fleetChannelRoutes } from './routes/fleet-channels.js';
import { liveRoutes } from './routes/live.js';
import { notificationRoutes } from './routes/notifications.js';
import { reportRoutes, type ReportRouteDeps } from './routes/reports.js';
import { sessionRoutes } from './routes/session.js';
import { userRoutes } from './routes/users.js';
import { oidcRoutes } from './routes/oidc.js';
import type { OidcSignIn } from '../accounts/oidc.js';
import { reportStatusRoutes, type ReportStatusDeps } from './routes/report-status.js';
import { systemRoutes } from './routes/system.js';
import { ticketRoutes } from './routes/tickets.js';
import { tokenRoutes } from './routes/tokens.js';
import { windowRoutes } from './routes/windows.js';

export { overallStatus, type OverallStatus } from './routes/system.js';

export interface AppDeps {
  log: Logger;
  metrics: Registry;
  tokens: TokenStore;
  registry: DeviceRegistry;
  health: () => Record<string, ComponentHealth>;
  /** Alarm routes, with the rules they come from (absent: no alarm routes). */
  alarms?: { service: AlarmService; rules: RulesView };
  /** The live stream (absent: no `/api/live`). */
  live?: { hub: LiveHub; cfg: LiveConfig };
  /** Admin actions (absent: no `/api/admin/*`). */
  admin?: Pick<AdminRouteDeps, 'reload'>;
  /** History of a metric from InfluxDB (absent: the readings route answers 503). */
  reader?: InfluxReader;
  /** Work orders (absent: no `/api/tickets`). */
  tickets?: WorkOrderService;
  /** Cluster mode: alarm and ticket routes read every instance's records here (absent: local only). */
  view?: SharedView;
  /** Cluster mode: the inbound webhook's idempotency keys shared by every instance (ADR 0166). */
  inboundKeys?: InboundKeys;
  /** Cluster mode: shelves and maintenance windows written to PostgreSQL and applied on every instance (absent: local only). */
  quiet?: SharedQuiet;
  /** Ticket notifications: the inbound webhook and the admin queue view (absent: neither). */
  notifications?: NotificationService;
  /** The monthly report and maintenance calendar (absent: no `/api/reports/monthly`). */
  reports?: Omit<ReportRouteDeps, 'tokens'>;
  /** The generated monthly reports and their deliveries (absent: no `/api/reports/monthly/status`). */
  reportStatus?: ReportStatusDeps;
  /** Tokens managed over the API (absent: no `/api/admin/tokens`). */
  tokenDb?: TokenAdmin;
  /** Personal accounts and cookie sessions (absent: bearer tokens only, no `/api/session` sign-in). */
  accounts?: { service: AccountService; secureCookie: SecureCookie; oidc?: OidcSignIn };
  /** The web dashboard at `/` (absent: none). */
  dashboard?: DashboardConfig;
  /** Demo mode: fault injection forwarded to the simulators (absent: `/api/demo/*` answers 404). */
  demo?: Pick<DemoRouteDeps, 'controlUrl'>;
  /** Runtime configuration: rule overrides, history, export (absent: no `/api/fleet/*`, `/api/config/export`). */
  fleet?: Omit<FleetRouteDeps, 'registry'>;
  /** The API's version in the OpenAPI document (default: package.json's `version`). */
  version?: string;
  /** Serve HTTPS with this certificate and key (tls.ts), HSTS with this max-age (absent: plain HTTP). */
  https?: { options: SecureContextOptions; hstsMaxAgeSec: number };
  /** Proxies whose X-Forwarded-For sets `req.ip` (config `http.trustProxy`; empty: none). */
  trustProxy?: readonly string[];
}

/** A route as registered: method, URL pattern, the role it declares and its schema parts. */
export interface RouteEntry {
  method: string;
  url: string;
  role: RouteRole | undefined;
  /** Which schema parts the route declares (body, querystring, params, headers, response). */
  schema: readonly string[];
}

const routeTables = new WeakMap<FastifyInstance, RouteEntry[]>();

/** Every route the app registered, with its role (the role-matrix and OpenAPI tests read it). */
export function routesOf(app: FastifyInstance): readonly RouteEntry[] {
  return routeTables.get(app) ?? [];
}

/**
 * The HTTP API: a factory, so tests build it with `app.inject()` and no port. Each group of routes
 * is an encapsulated plugin with zod schemas and a declared role; one hook enforces the roles, one
 * handler answers every error from the catalogue (errors.ts), and the OpenAPI document is generated
 * from the same schemas.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    ...(deps.https ? { https: deps.https.options } : {}),
    // Only the listed proxies' X-Forwarded-For is believed: any client could send the header.
    trustProxy: deps.trustProxy && deps.trustProxy.length > 0 ? [...deps.trustProxy] : false,
    loggerInstance: deps.log.child({ module: 'http' }) as FastifyBaseLogger,
    // Per-request lines would flood the log of a control-room screen polling every second.
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (r) => {
    const schema = Object.keys(r.schema ?? {}).filter((k) => k !== 'hide' && k !== 'summary');
    for (const method of [r.method].flat())
      table.push({
        method,
        url: r.url,
        // Read when asked: a scope's own onRoute hook (the reference page's) may set the role after this one.
        get role() {
          return r.config?.role;
        },
        schema,
      });
  });

  installErrorHandler(app, deps.log);
  registerSecurityHeaders(app, {
    https: deps.https !== undefined,
    hstsMaxAgeSec: deps.https?.hstsMaxAgeSec ?? 0,
  });
  // Cookies parsed for every route (the role hook reads the session cookie); none is signed: the
  // session id is random and looked up by its hash, a signature would add nothing.
  void app.register(fastifyCookie);
  enforceRouteRoles(app, deps.tokens, deps.accounts?.service.sessions);
  const spa = deps.dashboard ? registerDashboard(app, deps.dashboard, deps.log) : undefined;
  app.setNotFoundHandler(
    (req, reply) =>
      spa?.(req, reply) ??
      reply.code(404).send(errorBody('GW_ERR_NOT_FOUND', `no route ${req.method} ${req.url}`)),
  );
  registerOpenApi(app, deps.version ?? packageVersion());

  void app.register(systemRoutes, { metrics: deps.metrics, health: deps.health });
  if (deps.accounts) {
    void app.register(sessionRoutes, {
      accounts: deps.accounts.service,
      tokens: deps.tokens,
      secureCookie: deps.accounts.secureCookie,
      ssoLabel: deps.accounts.oidc?.settings.label,
    });
    void app.register(userRoutes, { accounts: deps.accounts.service });
    if (deps.accounts.oidc)
      void app.register(oidcRoutes, { oidc: deps.accounts.oidc, secureCookie: deps.accounts.secureCookie });
  }
  void app.register(deviceRoutes, { registry: deps.registry, reader: deps.reader });
  if (deps.alarms) {
    void app.register(alarmRoutes, {
      alarms: deps.alarms.service,
      rules: deps.alarms.rules,
      deviceFacts: (site, device) => deps.registry.lookup(site, device),
      view: deps.view,
      quiet: deps.quiet,
    });
    void app.register(windowRoutes, { alarms: deps.alarms.service, quiet: deps.quiet });
  }
  if (deps.fleet) {
    void app.register(fleetRoutes, { ...deps.fleet, registry: deps.registry });
    void app.register(fleetDeviceRoutes, { fleet: deps.fleet.fleet, registry: deps.registry });
    void app.register(fleetContactRoutes, deps.fleet);
    void app.register(fleetScheduleRoutes, { fleet: deps.fleet.fleet });
    void app.register(fleetChannelRoutes, { fleet: deps.fleet.fleet });
  }
  if (deps.live) void app.register(liveRoutes, { hub: deps.live.hub, cfg: deps.live.cfg });
  if (deps.admin) void app.register(adminRoutes, { reload: deps.admin.reload });
  if (deps.tickets) void app.register(ticketRoutes, { tickets: deps.tickets, view: deps.view });
  if (deps.tokenDb) void app.register(tokenRoutes, { db: deps.tokenDb });
  if (deps.reports) void app.register(reportRoutes, deps.reports);
  if (deps.reportStatus) void app.register(reportStatusRoutes, deps.reportStatus);
  if (deps.notifications && deps.tickets)
    void app.register(notificationRoutes, {
      notifications: deps.notifications,
      tickets: deps.tickets,
      cluster: deps.view && deps.inboundKeys ? { view: deps.view, keys: deps.inboundKeys } : undefined,
    });
  void app.register(demoRoutes, { controlUrl: deps.demo?.controlUrl ?? (() => undefined) });

  return app;
}
