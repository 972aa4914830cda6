/**
 * The two things the overview reads from the state database that the job and task stores do not
 * hand out: when each job was made (no run is expected before), and the task log lines that name an
 * external disk (rotation.ts). Read-only queries.
 */
import type { StateDb } from '../state-db.js';
import type { LogLineRef } from './rotation.js';

/** job id -> when it was made */
export function jobCreatedTimes(db: StateDb): Map<string, Date> {
  const rows = db.prepare('SELECT id, created FROM jobs').all() as Array<{ id: string; created: string }>;
  return new Map(rows.map((r) => [r.id, new Date(r.created)]));
}

/** The log lines that may name an attached disk (`external device ...`, also as `node NAME: external device ...`), from lines since `since`. */
export function deviceLogLines(db: StateDb, since: Date): LogLineRef[] {
  const rows = db
    .prepare("SELECT task_id, time, message FROM task_lines WHERE time >= ? AND message LIKE '%external device %'")
    .all(since.toISOString()) as Array<{ task_id: string; time: string; message: string }>;
  return rows.map((r) => ({ taskId: r.task_id, time: r.time, message: r.message }));
}
