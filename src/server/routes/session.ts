/** GET /api/v1/health (public), POST /api/v1/login (public, rate-limited), POST /api/v1/logout. */
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { checkAdminPassword } from '../auth/admin.js';
import { clearedSessionCookie, sessionCookie } from '../auth/cookies.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { Health, LoginBody, OkBody, responses } from '../schemas.js';
import { VERSION } from '../version.js';

export function sessionRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/api/v1/health', {
    config: { public: true },
    schema: { summary: 'liveness; no authentication', tags: ['session'], response: responses({ 200: Health }) },
  }, async () => ({ ok: true, version: VERSION }));

  app.post<{ Body: Static<typeof LoginBody> }>('/api/v1/login', {
    config: { public: true },
    schema: { summary: 'admin password -> session cookie (5 failures a minute per address, then 429)', tags: ['session'], body: LoginBody, response: responses({ 200: OkBody }) },
  }, async (request, reply) => {
    const wait = ctx.limiter.retryAfter(request.ip);
    if (wait > 0) throw new ApiError('RATE_LIMITED', `too many failed logins from ${request.ip}; try again in ${wait} s`, { retryAfterSeconds: wait });
    if (!(await checkAdminPassword(ctx.state.db, request.body.password))) {
      ctx.limiter.fail(request.ip);
      throw new ApiError('LOGIN_FAILED', 'wrong password');
    }
    ctx.limiter.succeed(request.ip);
    void reply.header('set-cookie', sessionCookie(ctx.sessions.create(), ctx.secure));
    return { ok: true };
  });

  app.post('/api/v1/logout', {
    schema: { summary: 'ends the session of the cookie', tags: ['session'], response: responses({ 200: OkBody }) },
  }, async (request, reply) => {
    if (request.principal?.kind === 'session') ctx.sessions.remove(request.principal.session);
    void reply.header('set-cookie', clearedSessionCookie(ctx.secure));
    return { ok: true };
  });
}
