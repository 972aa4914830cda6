/**
 * Tasks: every run (a job, a restore, a recovery) is a task with an id, start, end, status and a
 * timestamped vzdump-style log, kept in the state database and as a file `<stateDir>/tasks/<id>.log`.
 * The newest `keep` tasks are kept; older ones (rows and files) are rotated away. A task whose
 * process died is marked failed ("interrupted") when next seen.
 *
 * Every task records who started it (`startedBy`): the server passes `token:<name>`, `admin@web` or
 * `scheduler`; a task made without it was started on the command line, `<user>@cli` (`root@cli` as
 * root). Tasks from before this was recorded have none (null).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { ColdvaultError, formatLogLine, type LogLevel, type LogLine, type TaskLog } from '../core/index.js';
import { holderAlive, PRIVATE_DIR, PRIVATE_FILE, thisBoot, thisHost } from '../datastore/index.js';
import type { StateDb } from './state-db.js';

export type TaskStatus = 'running' | 'ok' | 'failed';

export interface TaskInfo {
  id: string;
  type: string;
  jobId: string | null;
  node: string;
  status: TaskStatus;
  start: string;
  end: string | null;
  pid: number;
  host: string;
  summary: string | null;
  result: unknown;
  /** who started it: `token:<name>`, `admin@web`, `scheduler`, `serve` (a live restore it resumes), `<user>@cli`; null for tasks older than this field */
  startedBy: string | null;
}

interface TaskRow {
  id: string;
  type: string;
  job_id: string | null;
  node: string;
  status: TaskStatus;
  start: string;
  end: string | null;
  pid: number;
  host: string;
  summary: string | null;
  result: string | null;
  started_by: string | null;
  boot: string | null;
}

const toInfo = (r: TaskRow): TaskInfo => ({
  id: r.id,
  type: r.type,
  jobId: r.job_id,
  node: r.node,
  status: r.status,
  start: r.start,
  end: r.end,
  pid: r.pid,
  host: r.host,
  summary: r.summary,
  result: r.result ? (JSON.parse(r.result) as unknown) : null,
  startedBy: r.started_by,
});

/** The command line's user: `root@cli` as root. */
export function cliUser(): string {
  try {
    return `${userInfo().username}@cli`;
  } catch {
    return `uid${process.getuid?.() ?? '?'}@cli`;
  }
}

function newTaskId(type: string, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${type}-${randomBytes(3).toString('hex')}`;
}

export class TaskStore {
  readonly dir: string;

  constructor(
    private readonly db: StateDb,
    stateDir: string,
    private readonly keep = 500,
  ) {
    this.dir = join(stateDir, 'tasks');
    mkdirSync(this.dir, { recursive: true, mode: PRIVATE_DIR });
  }

  create(type: string, opts: { jobId?: string; node: string; summary?: string; startedBy?: string }): TaskHandle {
    this.markInterrupted();
    this.rotate();
    const start = new Date();
    const id = newTaskId(type, start);
    this.db
      .prepare('INSERT INTO tasks (id, type, job_id, node, status, start, pid, host, boot, summary, started_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(
        id,
        type,
        opts.jobId ?? null,
        opts.node,
        'running',
        start.toISOString(),
        process.pid,
        thisHost,
        thisBoot ?? null,
        opts.summary ?? null,
        opts.startedBy ?? cliUser(),
      );
    return new TaskHandle(this.db, id, join(this.dir, `${id}.log`));
  }

  list(limit = 100): TaskInfo[] {
    this.markInterrupted();
    return (this.db.prepare('SELECT * FROM tasks ORDER BY start DESC, id DESC LIMIT ?').all(limit) as TaskRow[]).map(toInfo);
  }

  get(id: string): TaskInfo {
    const row = this.db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as TaskRow | undefined;
    if (!row) throw new ColdvaultError('USAGE', `task '${id}' does not exist`);
    return toInfo(row);
  }

  /** Log lines of a task from line `from` on (0-based). */
  lines(id: string, from = 0): Array<LogLine & { n: number }> {
    const rows = this.db.prepare('SELECT n, time, level, message FROM task_lines WHERE task_id = ? AND n >= ? ORDER BY n').all(id, from) as Array<{
      n: number;
      time: string;
      level: LogLevel;
      message: string;
    }>;
    return rows.map((r) => ({ n: r.n, time: new Date(r.time), level: r.level, message: r.message }));
  }

  /** Running tasks whose process is gone are marked failed. */
  markInterrupted(): void {
    const running = this.db.prepare("SELECT * FROM tasks WHERE status = 'running'").all() as TaskRow[];
    for (const r of running) {
      if (holderAlive({ pid: r.pid, host: r.host, boot: r.boot ?? undefined })) continue;
      this.db
        .prepare(
          "UPDATE tasks SET status = 'failed', end = ?, summary = coalesce(summary, '') || ' (interrupted: process ' || pid || ' died)' WHERE id = ? AND status = 'running'",
        )
        .run(new Date().toISOString(), r.id);
    }
  }

  /** Running tasks of a job whose process is alive. */
  runningForJob(jobId: string): TaskInfo[] {
    this.markInterrupted();
    return (this.db.prepare("SELECT * FROM tasks WHERE job_id = ? AND status = 'running'").all(jobId) as TaskRow[]).map(toInfo);
  }

  private rotate(): void {
    const old = this.db.prepare("SELECT id FROM tasks WHERE status != 'running' ORDER BY start DESC, id DESC LIMIT -1 OFFSET ?").all(this.keep) as Array<{
      id: string;
    }>;
    for (const { id } of old) {
      this.db.prepare('DELETE FROM task_lines WHERE task_id = ?').run(id);
      this.db.prepare('DELETE FROM tasks WHERE id = ?').run(id);
      rmSync(join(this.dir, `${id}.log`), { force: true });
    }
  }
}

/** The log of one running task: lines go to the database and the task's file. */
export class TaskHandle implements TaskLog {
  private n = 0;
  private readonly listeners = new Set<(line: LogLine) => void>();

  constructor(
    private readonly db: StateDb,
    readonly id: string,
    readonly file: string,
  ) {}

  onLine(listener: (line: LogLine) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(level: LogLevel, message: string): void {
    const line: LogLine = { time: new Date(), level, message };
    this.db
      .prepare('INSERT INTO task_lines (task_id, n, time, level, message) VALUES (?, ?, ?, ?, ?)')
      .run(this.id, this.n++, line.time.toISOString(), level, message);
    appendFileSync(this.file, `${formatLogLine(line)}\n`, { mode: PRIVATE_FILE });
    for (const l of this.listeners) l(line);
  }

  info(message: string): void {
    this.emit('INFO', message);
  }
  warn(message: string): void {
    this.emit('WARN', message);
  }
  error(message: string): void {
    this.emit('ERROR', message);
  }

  finish(ok: boolean, result?: unknown): void {
    this.db
      .prepare('UPDATE tasks SET status = ?, end = ?, result = ? WHERE id = ?')
      .run(ok ? 'ok' : 'failed', new Date().toISOString(), result === undefined ? null : JSON.stringify(result), this.id);
  }
}
