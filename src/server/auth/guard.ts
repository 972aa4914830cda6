/**
 * The gate in front of every route (a Fastify onRequest hook). Routes marked `config: {public: true}`
 * (health, login, the static web UI) pass; every other request needs a live API token
 * (`Authorization: Bearer ...`) or a live session cookie, else 401 UNAUTHORIZED. A bearer header that
 * is present but wrong is refused even when a cookie is valid too.
 *
 * CSRF: the session cookie is SameSite=Strict, and on top of that every state-changing request
 * (POST, PUT, PATCH, DELETE) that is not authenticated by a bearer token, login included, must carry
 * `X-Requested-With: coldvault`: a header another site's page cannot send without a CORS preflight,
 * which this server never grants. Otherwise 403 CSRF_CHECK_FAILED. Bearer requests are exempt: a
 * browser never adds that header on its own.
 *
 * The principal carries its grant (roles.ts): a token its own role, the web login `admin`. What a
 * grant may do is decided after this gate, per route (access.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { readCookie, SESSION_COOKIE } from './cookies.js';
import type { Grant } from './roles.js';
import type { SessionStore } from './sessions.js';
import type { TokenStore } from './tokens.js';

export type Principal = { kind: 'token'; name: string; grant: Grant } | { kind: 'session'; session: string; grant: Grant };

/** Who started a task, as the task list shows it: `token:<name>`, or `admin@web` for the web login. */
export const WEB_LOGIN = 'admin@web';
export function principalLabel(principal: Principal): string {
  return principal.kind === 'token' ? `token:${principal.name}` : WEB_LOGIN;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
export const CSRF_HEADER = 'x-requested-with';
export const CSRF_VALUE = 'coldvault';

export function installGuard(app: FastifyInstance, tokens: TokenStore, sessions: SessionStore): void {
  app.addHook('onRequest', async (request) => {
    const bearer = bearerOf(request);
    if (request.routeOptions.config?.public) {
      if (bearer === undefined) checkCsrf(request);
      return;
    }
    request.principal = authenticate(request, bearer, tokens, sessions);
    if (request.principal.kind === 'session') checkCsrf(request);
  });
}

function authenticate(request: FastifyRequest, bearer: string | undefined, tokens: TokenStore, sessions: SessionStore): Principal {
  if (bearer !== undefined) {
    const found = bearer ? tokens.authenticate(bearer) : undefined;
    if (found) return { kind: 'token', ...found };
    throw new ApiError('UNAUTHORIZED', 'the API token is unknown or expired');
  }
  const session = readCookie(request.headers.cookie, SESSION_COOKIE);
  if (session && sessions.touch(session)) return { kind: 'session', session, grant: { role: 'admin' } };
  throw new ApiError(
    'UNAUTHORIZED',
    session ? 'the session has expired; log in again' : 'log in (POST /api/v1/login) or send an API token (Authorization: Bearer ...)',
  );
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? '';
}

function checkCsrf(request: FastifyRequest): void {
  if (!UNSAFE.has(request.method) || request.headers[CSRF_HEADER] === CSRF_VALUE) return;
  throw new ApiError('CSRF_CHECK_FAILED', `${request.method} with a session needs the header 'X-Requested-With: ${CSRF_VALUE}'`);
}
