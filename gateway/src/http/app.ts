import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { Logger } from '../core/log.js';
import type { ComponentHealth } from '../core/types.js';
import type { DeviceRegistry } from '../registry/registry.js';
import { requireRole, sendError, type TokenStore } from './auth.js';
import type { AlarmService } from '../alarms/index.js';
import type { LiveConfig } from '../config/schema.js';
import type { LiveHub } from '../live/hub.js';
import { registerAlarmRoutes, type RulesView } from './routes/alarms.js';
import { registerLiveRoutes } from './routes/live.js';
import { registerAdminRoutes, type AdminRouteDeps } from './routes/admin.js';
import { registerReadingRoutes } from './routes/readings.js';
import { registerTicketRoutes } from './routes/tickets.js';
import { registerReportRoutes, type ReportRouteDeps } from './routes/reports.js';
import { registerReportStatusRoutes, type ReportStatusDeps } from './routes/report-status.js';
import { registerTokenRoutes } from './routes/tokens.js';
import type { TokenDb } from './token-db.js';
import type { WorkOrderService } from '../workorders/index.js';
import { lookupDevice } from './routes/device-lookup.js';
import type { InfluxReader } from '../sinks/influx/query.js';
import { registerNotificationRoutes, type NotificationService } from '../notifications/index.js';
import type { DashboardConfig } from '../config/schema.js';
import { registerDashboard } from './dashboard.js';
import { registerDemoRoutes, type DemoRouteDeps } from './routes/demo.js';

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
  /** Ticket notifications: the inbound webhook and the admin queue view (absent: neither). */
  notifications?: NotificationService;
  /** The monthly report and maintenance calendar (absent: no `/api/reports/monthly`). */
  reports?: Omit<ReportRouteDeps, 'tokens'>;
  /** The generated monthly reports and their deliveries (absent: no `/api/reports/monthly/status`). */
  reportStatus?: Omit<ReportStatusDeps, 'tokens'>;
  /** Tokens managed over the API (absent: no `/api/admin/tokens`). */
  tokenDb?: TokenDb;
  /** The web dashboard at `/` (absent: none). */
  dashboard?: DashboardConfig;
  /** Demo mode: fault injection forwarded to the simulators (absent: `/api/demo/*` answers 404). */
  demo?: Pick<DemoRouteDeps, 'controlUrl'>;
}

export type OverallStatus = 'ok' | 'degraded' | 'down';

/** ok when every component is ok; down when the durable store is down; degraded otherwise. */
export function overallStatus(components: Record<string, ComponentHealth>): OverallStatus {
  if (components.outbox?.state === 'down') return 'down';
  for (const c of Object.values(components)) if (c.state !== 'ok') return 'degraded';
  return 'ok';
}

const deviceQuery = z.strictObject({
  site: z.string().optional(),
  kind: z.string().optional(),
  state: z.enum(['online', 'stale', 'offline']).optional(),
});

/** A route as registered: method and URL pattern. */
export interface RouteEntry {
  method: string;
  url: string;
}

const routeTables = new WeakMap<FastifyInstance, RouteEntry[]>();

/** Every route the app registered (for the role-matrix test: a new route cannot be forgotten). */
export function routesOf(app: FastifyInstance): readonly RouteEntry[] {
  return routeTables.get(app) ?? [];
}

/** The HTTP API: a factory, so tests build it with `app.inject()` and no port. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log.child({ module: 'http' }) as FastifyBaseLogger,
    // Per-request lines would flood the log of a control-room screen polling every second.
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  const viewer = requireRole(deps.tokens, 'viewer');
  const table: RouteEntry[] = [];
  routeTables.set(app, table);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) table.push({ method, url: r.url });
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) deps.log.error({ err }, 'request failed');
    return sendError(reply, status, err.code ?? (status >= 500 ? 'internal' : 'bad_request'), err.message);
  });
  const spa = deps.dashboard ? registerDashboard(app, deps.dashboard, deps.log) : undefined;
  app.setNotFoundHandler(
    (req, reply) =>
      spa?.(req, reply) ?? sendError(reply, 404, 'not_found', `no route ${req.method} ${req.url}`),
  );

  /** Who the token belongs to: the dashboard shows the actions the role allows. */
  app.get('/api/session', { preHandler: viewer }, async (req) => ({
    name: req.principal!.name,
    role: req.principal!.role,
  }));

  app.get('/api/health', async (_req, reply) => {
    const components = deps.health();
    const status = overallStatus(components);
    return reply.code(status === 'down' ? 503 : 200).send({ status, components });
  });

  app.get('/metrics', async (_req, reply) => {
    const body = await deps.metrics.metrics();
    return reply.header('content-type', deps.metrics.contentType).send(body);
  });

  app.get('/api/devices', { preHandler: viewer }, async (req, reply) => {
    const q = deviceQuery.safeParse(req.query);
    if (!q.success)
      return sendError(
        reply,
        400,
        'bad_request',
        q.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; '),
      );
    return { devices: deps.registry.list(q.data) };
  });

  app.get<{ Params: { id: string } }>('/api/devices/:id', { preHandler: viewer }, async (req, reply) => {
    const e = lookupDevice(deps.registry, req.params.id, reply);
    return e ? deps.registry.get(e.key) : reply;
  });

  if (deps.alarms) {
    registerAlarmRoutes(app, {
      alarms: deps.alarms.service,
      rules: deps.alarms.rules,
      tokens: deps.tokens,
      deviceFacts: (site, device) => deps.registry.lookup(site, device),
    });
  }
  if (deps.live) registerLiveRoutes(app, { hub: deps.live.hub, tokens: deps.tokens, cfg: deps.live.cfg });
  if (deps.admin) registerAdminRoutes(app, { tokens: deps.tokens, reload: deps.admin.reload });
  if (deps.tickets) registerTicketRoutes(app, { tickets: deps.tickets, tokens: deps.tokens });
  if (deps.tokenDb) registerTokenRoutes(app, { tokens: deps.tokens, db: deps.tokenDb });
  if (deps.reports) registerReportRoutes(app, { ...deps.reports, tokens: deps.tokens });
  if (deps.reportStatus) registerReportStatusRoutes(app, { ...deps.reportStatus, tokens: deps.tokens });
  registerReadingRoutes(app, { registry: deps.registry, tokens: deps.tokens, reader: deps.reader });
  if (deps.notifications && deps.tickets)
    registerNotificationRoutes(app, {
      notifications: deps.notifications,
      tickets: deps.tickets,
      tokens: deps.tokens,
    });
  registerDemoRoutes(app, { tokens: deps.tokens, controlUrl: deps.demo?.controlUrl ?? (() => undefined) });

  return app;
}
