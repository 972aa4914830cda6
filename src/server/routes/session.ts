/**
 * GET /api/v1/health (public), POST /api/v1/login (public, rate-limited: auth/rate-limit.ts),
 * POST /api/v1/logout, GET /api/v1/whoami (the principal's name, role and store, for any role).
 */
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { checkAdminPassword, clearedSessionCookie, describePrincipal, sessionCookie } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { Health, LoginBody, OkBody, responses, WhoAmI } from '../schemas.js';
import { VERSION } from '../version.js';

export function sessionRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const tags = ['session'];
  app.get(
    '/api/v1/health',
    {
      config: { public: true },
      schema: { summary: 'liveness; no authentication', tags, response: responses({ 200: Health }) },
    },
    async () => ({ ok: true, version: VERSION }),
  );

  app.post<{ Body: Static<typeof LoginBody> }>(
    '/api/v1/login',
    {
      config: { public: true },
      schema: {
        summary: 'admin password -> session cookie (limited per client address and in total; then 429)',
        tags,
        body: LoginBody,
        response: responses({ 200: OkBody }),
      },
    },
    async (request, reply) => {
      const attempt = ctx.limiter.begin(request.ip); // counted before the (slow) hash: parallel attempts cannot pass together
      if (!(await checkAdminPassword(ctx.state.db, request.body.password))) throw new ApiError('LOGIN_FAILED', 'wrong password');
      attempt.succeeded();
      void reply.header('set-cookie', sessionCookie(ctx.sessions.create(), ctx.secure));
      return { ok: true };
    },
  );

  app.post(
    '/api/v1/logout',
    {
      config: { access: { action: 'session' } },
      schema: { summary: 'ends the session of the cookie', tags, response: responses({ 200: OkBody }) },
    },
    async (request, reply) => {
      if (request.principal?.kind === 'session') ctx.sessions.remove(request.principal.session);
      void reply.header('set-cookie', clearedSessionCookie(ctx.secure));
      return { ok: true };
    },
  );

  app.get(
    '/api/v1/whoami',
    {
      config: { access: { action: 'session' } },
      schema: {
        summary: 'who this request is: `token:<name>` or `admin@web`, its role and (role backup) its store',
        tags,
        response: responses({ 200: WhoAmI }),
      },
    },
    async (request) => describePrincipal(request),
  );
}
