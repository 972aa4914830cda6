/**
 * Tasks: GET /api/v1/tasks (newest first, ?limit), GET /api/v1/tasks/{id}, GET /api/v1/tasks/{id}/log
 * (?from=n). The log is a JSON array of lines, or, when the request accepts `text/event-stream`, a
 * stream of server-sent events (sse.ts).
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { isColdvaultError } from '../../core/index.js';
import type { TaskInfo, TaskStore } from '../../jobs/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { LogLine, LogQuery, responses, Task, TaskListQuery, TaskParams } from '../schemas.js';
import { streamTaskLog, type SseStreams } from '../sse.js';
import { logLines } from '../task-log.js';

export function taskRoutes(app: FastifyInstance, ctx: RouteContext, streams: SseStreams): void {
  const { tasks } = ctx.state;
  const tags = ['tasks'];
  const config = { access: { action: 'read' } } as const;
  app.get<{ Querystring: Static<typeof TaskListQuery> }>(
    '/api/v1/tasks',
    {
      config,
      schema: { summary: 'tasks, newest first', tags, querystring: TaskListQuery, response: responses({ 200: Type.Array(Task) }) },
    },
    async (request) => tasks.list(request.query.limit ?? 50),
  );

  app.get<{ Params: Static<typeof TaskParams> }>(
    '/api/v1/tasks/:id',
    {
      config,
      schema: { summary: 'one task', tags, params: TaskParams, response: responses({ 200: Task }) },
    },
    async (request) => getTask(tasks, request.params.id),
  );

  app.get<{ Params: Static<typeof TaskParams>; Querystring: Static<typeof LogQuery> }>(
    '/api/v1/tasks/:id/log',
    {
      config,
      schema: {
        summary: 'log lines from ?from=n; with Accept: text/event-stream: every line, new lines as they come, then an `end` event with the status',
        tags,
        params: TaskParams,
        querystring: LogQuery,
        response: responses({ 200: Type.Array(LogLine) }),
        produces: ['application/json', 'text/event-stream'],
      },
    },
    async (request, reply) => {
      getTask(tasks, request.params.id);
      const from = request.query.from ?? 0;
      if ((request.headers.accept ?? '').includes('text/event-stream')) return streamTaskLog(request, reply, { tasks, streams, id: request.params.id, from });
      return logLines(tasks, request.params.id, from);
    },
  );
}

export function getTask(tasks: TaskStore, id: string): TaskInfo {
  try {
    return tasks.get(id);
  } catch (err) {
    if (isColdvaultError(err, 'USAGE')) throw new ApiError('TASK_NOT_FOUND', `task '${id}' does not exist`);
    throw err;
  }
}
