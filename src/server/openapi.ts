/**
 * The OpenAPI 3.1 document, generated from the routes' own schemas (collected by an onRoute hook, so
 * a route cannot be added without showing up here): path and query parameters, the JSON body, the
 * responses (the error body for 4XX / 5XX), `produces` for non-JSON answers, `consumes` for byte bodies, and the security of each
 * route (bearer token or session cookie; none for public ones) with the roles that may use it
 * (`x-roles`; auth/roles.ts). Served at GET /api/v1/openapi.json.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';
import { type Action, RULES, SESSION_COOKIE } from './auth/index.js';
import { responses } from './schemas.js';
import { VERSION } from './version.js';

declare module 'fastify' {
  interface FastifySchema {
    summary?: string;
    tags?: string[];
    /** the content types of the success answer, when not only JSON */
    produces?: string[];
    /** the content types of a request body that is not JSON (then bytes, not a schema) */
    consumes?: string[];
    /** not an API route (the web UI's files): left out of the document */
    hide?: boolean;
  }
}

interface RouteSchema {
  summary?: string;
  tags?: string[];
  params?: unknown;
  querystring?: unknown;
  body?: unknown;
  response?: Record<string, unknown>;
  produces?: string[];
  consumes?: string[];
  hide?: boolean;
}

interface Collected {
  method: string;
  url: string;
  schema: RouteSchema;
  isPublic: boolean;
  action?: Action;
}

/** Starts collecting routes; call before any route is added. */
export function collectRoutes(app: FastifyInstance): Collected[] {
  const routes: Collected[] = [];
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as RouteSchema | undefined;
    if (!schema || schema.hide) return;
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD')
        routes.push({ method: method.toLowerCase(), url: route.url, schema, isPublic: Boolean(route.config?.public), action: route.config?.access?.action });
    }
  });
  return routes;
}

const plain = (schema: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(schema ?? {})) as Record<string, unknown>;

export function openApiDocument(routes: Collected[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) (paths[r.url.replace(/:([A-Za-z_]+)/g, '{$1}')] ??= {})[r.method] = operation(r);
  return {
    openapi: '3.1.0',
    info: {
      title: 'coldvault API',
      version: VERSION,
      description:
        'Backups of stopped VMs. Errors: {error: {code, message}}. State-changing requests with the session cookie need the header X-Requested-With: coldvault.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token from `coldvault token create <name>`' },
        session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'from POST /api/v1/login' },
      },
    },
    security: [{ bearer: [] }, { session: [] }],
    paths,
  };
}

function operation(r: Collected): Record<string, unknown> {
  const op: Record<string, unknown> = {
    operationId: `${r.method}${r.url.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c?: string) => (c ? c.toUpperCase() : ''))}`,
    summary: r.schema.summary,
    tags: r.schema.tags,
  };
  const parameters = [...params(r.schema.params, 'path'), ...params(r.schema.querystring, 'query')];
  if (parameters.length > 0) op.parameters = parameters;
  if (r.schema.body) op.requestBody = { required: true, content: { 'application/json': { schema: plain(r.schema.body) } } };
  const bytes = { type: 'string', format: 'binary' };
  if (r.schema.consumes) op.requestBody = { required: true, content: Object.fromEntries(r.schema.consumes.map((t) => [t, { schema: bytes }])) };
  op.responses = Object.fromEntries(
    Object.entries(r.schema.response ?? responses({})).map(([code, schema]) => [code.toUpperCase(), response(code, schema, r.schema.produces)]),
  );
  if (r.isPublic) op.security = [];
  if (r.action) op['x-roles'] = [...RULES[r.action].roles];
  return op;
}

function params(schema: unknown, where: 'path' | 'query'): unknown[] {
  const s = plain(schema) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, p]) => ({
    name,
    in: where,
    required: where === 'path' || (s.required ?? []).includes(name),
    schema: p,
  }));
}

function response(code: string, schema: unknown, produces: string[] = ['application/json']): Record<string, unknown> {
  if (code === '204') return { description: 'no content' };
  const types = code.startsWith('2') ? produces : ['application/json'];
  const content = Object.fromEntries(types.map((t) => [t, { schema: t.includes('json') ? plain(schema) : { type: 'string' } }]));
  return { description: code.startsWith('2') ? 'success' : 'error: {error: {code, message}}', content };
}
