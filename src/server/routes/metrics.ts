/** GET /metrics: Prometheus text (metrics.ts); needs a token or session like every other route. */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.js';
import { collectMetrics } from '../metrics.js';
import { knownStores } from '../paths.js';
import { responses } from '../schemas.js';

export function metricsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    '/metrics',
    {
      config: { access: { action: 'read' } },
      schema: { summary: 'Prometheus metrics (text format 0.0.4)', tags: ['metrics'], produces: ['text/plain'], response: responses({ 200: Type.String() }) },
    },
    async (_request, reply) => {
      const text = await collectMetrics(knownStores(ctx.config, ctx.state.jobs), ctx.state.tasks.list(1000), ctx.config);
      return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
    },
  );
}
