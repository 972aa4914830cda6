/**
 * Job runs as the task store recorded them: a backup job's task has a start, an end and a result
 * `{guests: [GuestReport]}` (runner.ts). From it come each guest's attempts (for the guest table) and
 * each job's runs (for the run history charts). A task's result is JSON from the database: read
 * defensively, a report that does not have the expected shape is skipped.
 *
 * A run's figures: durationMs = end - start of the task; bytesPerSecond = the logical bytes (disk
 * sizes) of its guests' versions over that duration; downtimeMs = the longest any guest of the run
 * was held off (null when none was stopped); result = the task's status.
 */
import type { TaskInfo } from '../task-store.js';

/** One guest's backup in one job run. */
export interface GuestAttempt {
  vmid: string;
  jobId: string;
  taskId: string;
  /** the task's start (ISO 8601) */
  start: string;
  ok: boolean;
  durationMs: number | null;
  downtimeMs: number | null;
  logicalBytes: number | null;
  /** bytes the version newly stored (after compression) */
  storedBytes: number | null;
  version: number | null;
  error: string | null;
}

export interface JobRun {
  taskId: string;
  start: string;
  durationMs: number | null;
  bytesPerSecond: number | null;
  downtimeMs: number | null;
  result: 'ok' | 'failed';
  guests: number;
}

interface ReportLike {
  vmid: string;
  status: 'ok' | 'failed';
  seconds?: number;
  downtimeMs?: number;
  logicalBytes?: number;
  bytes?: number;
  version?: number;
  error?: string;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function reportsOf(task: TaskInfo): ReportLike[] {
  const guests = (task.result as { guests?: unknown } | null)?.guests;
  if (!Array.isArray(guests)) return [];
  return guests.filter(
    (g): g is ReportLike =>
      typeof g === 'object' && g !== null && typeof (g as ReportLike).vmid === 'string' && ['ok', 'failed'].includes((g as ReportLike).status),
  );
}

/** Finished tasks of jobs of these types (backup: this node's guests; sync: versions pulled from another node). */
function finishedJobTasks(tasks: readonly TaskInfo[], types: readonly string[]): Array<TaskInfo & { jobId: string }> {
  return tasks.filter((t): t is TaskInfo & { jobId: string } => types.includes(t.type) && t.jobId !== null && t.status !== 'running');
}

export function guestAttempts(tasks: readonly TaskInfo[]): GuestAttempt[] {
  return finishedJobTasks(tasks, ['backup']).flatMap((task) =>
    reportsOf(task).map((r) => ({
      vmid: r.vmid,
      jobId: task.jobId,
      taskId: task.id,
      start: task.start,
      ok: r.status === 'ok',
      durationMs: num(r.seconds) === null ? null : Math.round((r.seconds as number) * 1000),
      downtimeMs: num(r.downtimeMs),
      logicalBytes: num(r.logicalBytes),
      storedBytes: r.status === 'ok' ? num(r.bytes) : null,
      version: num(r.version),
      error: typeof r.error === 'string' ? r.error : null,
    })),
  );
}

function runOf(task: TaskInfo): JobRun {
  const reports = reportsOf(task);
  const end = task.end ? Date.parse(task.end) : Number.NaN;
  const durationMs = Number.isFinite(end) ? Math.max(0, end - Date.parse(task.start)) : null;
  const logical = reports.reduce((sum, r) => sum + (num(r.logicalBytes) ?? 0), 0);
  const downtimes = reports.map((r) => num(r.downtimeMs)).filter((d): d is number => d !== null);
  return {
    taskId: task.id,
    start: task.start,
    durationMs,
    bytesPerSecond: durationMs && logical > 0 ? Math.round(logical / (durationMs / 1000)) : null,
    downtimeMs: downtimes.length > 0 ? Math.max(...downtimes) : null,
    result: task.status === 'ok' ? 'ok' : 'failed',
    guests: reports.length,
  };
}

/** Each job's runs (backup and sync jobs) that started at or after `since`, oldest first. */
export function jobRuns(tasks: readonly TaskInfo[], since: Date): Map<string, JobRun[]> {
  const byJob = new Map<string, JobRun[]>();
  for (const task of finishedJobTasks(tasks, ['backup', 'sync'])) {
    if (Date.parse(task.start) < since.getTime()) continue;
    byJob.set(task.jobId, [...(byJob.get(task.jobId) ?? []), runOf(task)]);
  }
  for (const runs of byJob.values()) runs.sort((a, b) => a.start.localeCompare(b.start));
  return byJob;
}
