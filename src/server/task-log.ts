/** A task's log lines as the API answers them: {n, time (ISO), level, message, text (the vzdump-style line)}. */
import { formatLogLine } from '../core/index.js';
import type { TaskStore } from '../jobs/index.js';

export interface LogLineJson {
  n: number;
  time: string;
  level: 'INFO' | 'WARN' | 'ERROR';
  message: string;
  text: string;
}

export function logLines(tasks: TaskStore, id: string, from: number): LogLineJson[] {
  return tasks.lines(id, from).map((l) => ({ n: l.n, time: l.time.toISOString(), level: l.level, message: l.message, text: formatLogLine(l) }));
}
