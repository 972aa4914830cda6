/**
 * A task's log as server-sent events: every line from `from` on (`id: n`, data = the line's JSON),
 * then new lines as they come (the state database is polled every 300 ms, so lines written by other
 * processes arrive too), then `event: end` with `{status}` once the task is no longer running. A
 * reconnecting EventSource resumes after its Last-Event-ID; a comment line every 15 s keeps proxies
 * from timing out. The stream stops when the client goes away or the server closes (`closeAll`); the
 * connection is closed with it (`Connection: close`), so no stream holds the server open.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TaskStore } from '../jobs/index.js';
import { logLines } from './task-log.js';

export const SSE_POLL_MS = 300;
const KEEPALIVE_POLLS = 50;

export class SseStreams {
  private readonly open = new Set<AbortController>();

  add(): AbortController {
    const c = new AbortController();
    this.open.add(c);
    c.signal.addEventListener('abort', () => this.open.delete(c));
    return c;
  }

  closeAll(): void {
    for (const c of this.open) c.abort();
  }
}

export async function streamTaskLog(
  request: FastifyRequest,
  reply: FastifyReply,
  opts: { tasks: TaskStore; streams: SseStreams; id: string; from: number },
): Promise<void> {
  const lastId = Number(request.headers['last-event-id'] ?? NaN);
  let next = Number.isInteger(lastId) && lastId >= 0 ? lastId + 1 : opts.from;
  const control = opts.streams.add();
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', connection: 'close' });
  res.flushHeaders();
  let clientGone = false;
  res.on('close', () => {
    clientGone = !res.writableFinished;
    control.abort();
  });
  try {
    for (let idle = 0; !control.signal.aborted; idle++) {
      const status = opts.tasks.get(opts.id).status;
      for (const line of logLines(opts.tasks, opts.id, next)) {
        res.write(`id: ${line.n}\ndata: ${JSON.stringify(line)}\n\n`);
        next = line.n + 1;
        idle = 0;
      }
      if (status !== 'running') {
        res.write(`event: end\ndata: ${JSON.stringify({ status })}\n\n`);
        break;
      }
      if (idle >= KEEPALIVE_POLLS) {
        res.write(': keep-alive\n\n');
        idle = 0;
      }
      await delay(SSE_POLL_MS, undefined, { signal: control.signal }).catch(() => undefined);
    }
  } finally {
    control.abort();
    if (clientGone) res.destroy();
    else res.end();
  }
}
