import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { createJsonSchemaTransform, createJsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { catalogueTable } from './errors.js';
import { docsCsp } from './security-headers.js';
import type { RouteRole } from './route-roles.js';
import { apiSchemas } from './schemas/registry.js';

/** Where the document and its reference page are served (no token: they describe, they do not show data). */
export const OPENAPI_URL = '/api/openapi.json';
export const DOCS_PREFIX = '/api/docs';

const WHO: Record<RouteRole, string> = {
  public: 'no credential',
  signed: 'no bearer token: the request must carry a valid `X-Gateway-Signature` (HMAC of the body)',
  viewer: 'a bearer token or a session of any role (viewer, engineer, admin)',
  engineer: 'a bearer token or a session of the engineer or admin role',
  admin: 'a bearer token or a session of the admin role',
};

/** Either credential: a bearer token or the session cookie. */
const AUTHENTICATED: Record<string, string[]>[] = [{ bearer: [] }, { session: [] }];

const DESCRIPTION = `The facility gateway's HTTP API, generated from the routes' own schemas.

Every route under \`/api\` needs \`Authorization: Bearer <token>\` or the session cookie \`fgw_session\`
(set by \`POST /api/session\`) of the role given in its description and its \`x-role\` field, except those
marked \`public\` (and the inbound webhook, \`signed\`). A change (POST, PUT, PATCH, DELETE) made with the
cookie must come from the gateway's own origin (\`Origin\` or \`Sec-Fetch-Site\`); bearer requests are exempt.
Failures answer \`{"error": {"code", "message", "retryable"}}\` (schema failures add \`issues\`, each failing
field with its path such as \`body.untilMs\`). The codes:

${catalogueTable()}`;

/** The tag of an operation: the first path segment after `/api` (`/api/tickets/:id` → tickets). */
const tagOf = (url: string) => (url === '/metrics' ? 'metrics' : (url.split('/')[2] ?? 'api'));

/**
 * Registers @fastify/swagger (OpenAPI 3.1 from the zod schemas, each operation with its role as
 * `x-role`, in its description and as its security requirement), the document at OPENAPI_URL and
 * @fastify/swagger-ui at DOCS_PREFIX. Call it before registering the routes it describes.
 */
export function registerOpenApi(app: FastifyInstance, version: string): void {
  const zodTransform = createJsonSchemaTransform({ schemaRegistry: apiSchemas, skipList: [] });
  // Not awaited: registration order (avvio) puts swagger's route collector before every route.
  void app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Facility gateway HTTP API', version, description: DESCRIPTION },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'A token of role viewer, engineer or admin (the admin API manages them)',
          },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: 'fgw_session',
            description: 'The HttpOnly session cookie set by `POST /api/session` (people, the dashboard)',
          },
        },
      },
    },
    transform: (doc) => {
      const { url, route } = doc;
      // Only the API: the dashboard's files and the reference page's own assets are not operations.
      if (!(url.startsWith('/api/') || url === '/metrics') || url.startsWith(`${DOCS_PREFIX}`))
        return { schema: { hide: true }, url };
      const out = zodTransform(doc);
      const role = route.config?.role;
      if (role === undefined) return out;
      const base = (out.schema ?? {}) as Record<string, unknown>;
      const bearer = role !== 'public' && role !== 'signed';
      const said = typeof base.description === 'string' ? `${base.description}\n\n` : '';
      return {
        url: out.url,
        schema: {
          ...base,
          tags: [tagOf(url)],
          description: `${said}Role: **${role}**: ${WHO[role]}.`,
          security: bearer ? AUTHENTICATED : [],
          'x-role': role,
        },
      };
    },
    transformObject: createJsonSchemaTransformObject({ schemaRegistry: apiSchemas }),
  });

  void app.register(async (scope) => {
    // The page and its assets are as open as the document they show.
    scope.addHook('onRoute', (r) => {
      r.config = { ...r.config, role: 'public' };
    });
    await scope.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX, transformStaticCSP: docsCsp });
  });

  app.get(OPENAPI_URL, { config: { role: 'public' }, schema: { hide: true } }, async () => app.swagger());
}
