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
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import { readCookie, SESSION_COOKIE } from './cookies.js';
import type { SessionStore } from './sessions.js';
import type { TokenStore } from './tokens.js';

export type Principal = { kind: 'token'; name: string } | { kind: 'session'; session: string };

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
    const name = bearer ? tokens.authenticate(bearer) : undefined;
    if (name) return { kind: 'token', name };
    throw new ApiError('UNAUTHORIZED', 'the API token is unknown or expired');
  }
  const session = readCookie(request.headers.cookie, SESSION_COOKIE);
  if (session && sessions.touch(session)) return { kind: 'session', session };
  throw new ApiError('UNAUTHORIZED', session ? 'the session has expired; log in again' : 'log in (POST /api/v1/login) or send an API token (Authorization: Bearer ...)');
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
