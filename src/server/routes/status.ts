/** GET /api/v1/status: node, version, uptime, running tasks with live progress, datastores with space. */
import type { FastifyInstance } from 'fastify';
import type { RouteContext } from '../context.js';
import { knownStores } from '../paths.js';
import { responses, Status } from '../schemas.js';
import { storeStatus } from '../stores.js';
import { VERSION } from '../version.js';

export function statusRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get(
    '/api/v1/status',
    {
      config: { access: { action: 'read' } },
      schema: {
        summary: "node, version, uptime, running tasks (live progress of this server's), datastores",
        tags: ['status'],
        response: responses({ 200: Status }),
      },
    },
    async () => ({
      node: ctx.config.node,
      version: VERSION,
      uptime: Math.round((ctx.clock() - ctx.startedAt) / 1000),
      running: runningTasks(ctx),
      datastores: await Promise.all(knownStores(ctx.config, ctx.state.jobs).map((s) => storeStatus(s, ctx.config))),
    }),
  );
}

/** Every running task in the state database (CLI runs too); progress for those of this process. */
function runningTasks(ctx: RouteContext): Array<{ taskId: string; type: string; jobId: string | null; progress: unknown }> {
  const live = new Map(ctx.runner.list().map((r) => [r.taskId, r]));
  const rows = ctx.state.tasks.list(500).filter((t) => t.status === 'running');
  return rows.map((t) => ({ taskId: t.id, type: t.type, jobId: t.jobId, progress: live.get(t.id)?.progress ?? null }));
}
