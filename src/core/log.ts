/**
 * The logger port: vzdump-style task logs. Each line is `YYYY-MM-DD HH:MM:SS LEVEL: message` in the
 * file; sinks decide where lines go (a version's backup.log, the CLI's stderr, a task log).
 */
export type LogLevel = 'INFO' | 'WARN' | 'ERROR';

export interface LogLine {
  time: Date;
  level: LogLevel;
  message: string;
}

export type LogSink = (line: LogLine) => void;

export interface TaskLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Local time as `YYYY-MM-DD HH:MM:SS`, as vzdump writes it. */
export function formatLogTime(time: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0');
  return (
    `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())} ` + `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}`
  );
}

export function formatLogLine(line: LogLine): string {
  return `${formatLogTime(line.time)} ${line.level}: ${line.message}`;
}

/** Logs `message` at `level`. */
export function logAt(log: TaskLog, level: LogLevel, message: string): void {
  if (level === 'ERROR') log.error(message);
  else if (level === 'WARN') log.warn(message);
  else log.info(message);
}

/** A TaskLog that fans every line out to the given sinks. */
export function createTaskLog(...sinks: LogSink[]): TaskLog & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const emit = (level: LogLevel, message: string): void => {
    const line = { time: new Date(), level, message };
    lines.push(line);
    for (const sink of sinks) sink(line);
  };
  return {
    lines,
    info: (m) => emit('INFO', m),
    warn: (m) => emit('WARN', m),
    error: (m) => emit('ERROR', m),
  };
}

/** A logger that drops everything (for library callers that do not want a log). */
export const silentLog: TaskLog = { info: () => {}, warn: () => {}, error: () => {} };
