/**
 * Running the hypervisor's command-line tools (`qm`, `virsh`): argv only (no shell), `LC_ALL=C` so
 * the output we parse is never translated, stdout/stderr captured, an optional timeout.
 * Drivers take a `CommandRunner` so tests can swap in a fake; `runCommand` is the real one (execa).
 * A runner resolves for any exit status (the driver decides what a non-zero exit means) and rejects
 * only when the program could not be run at all. `runChecked` turns a non-zero exit into
 * ColdvaultError('HYPERVISOR', "command 'qm start 101' failed: <first stderr line> (exit N)").
 */
import { ColdvaultError } from '../../core/index.js';

export interface RunOptions {
  /** kill the command (SIGTERM) after this long; the result then has `timedOut: true` */
  timeoutMs?: number;
  /** extra environment; `LC_ALL=C` is always set */
  env?: Record<string, string>;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** the exit status; -1 when the command was killed by a signal (see `timedOut`) */
  exitCode: number;
  timedOut?: boolean;
  /** the signal that ended it, if one did */
  signal?: string;
}

export type CommandRunner = (argv: string[], opts?: RunOptions) => Promise<CommandResult>;

/** `qm start 101 --skiplock`; arguments with spaces or quotes are single-quoted. */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a)).join(' ');
}

function firstLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.length > 0);
}

/** The HYPERVISOR error for a command that exited non-zero or timed out. */
export function commandError(argv: readonly string[], result: CommandResult): ColdvaultError {
  const detail = firstLine(result.stderr) ?? firstLine(result.stdout) ?? 'no output';
  const how = result.timedOut ? 'timed out' : result.signal !== undefined ? `killed by ${result.signal}` : `exit ${result.exitCode}`;
  return new ColdvaultError('HYPERVISOR', `command '${formatCommand(argv)}' failed: ${detail} (${how})`);
}

/** The real runner: execa, no shell, LC_ALL=C, never rejects on a non-zero exit. */
export const runCommand: CommandRunner = async (argv, opts = {}) => {
  const [file, ...args] = argv;
  if (file === undefined) throw new ColdvaultError('USAGE', 'running a command failed: empty argv');
  const result = await (await import('execa')).execa(file, args, {
    reject: false,
    shell: false,
    stdin: 'ignore',
    env: { ...opts.env, LC_ALL: 'C' },
    extendEnv: true,
    stripFinalNewline: false,
    ...(opts.timeoutMs !== undefined ? { timeout: opts.timeoutMs } : {}),
  });
  if (result.failed && result.exitCode === undefined && result.signal === undefined && !result.timedOut) {
    // could not be started at all (ENOENT, EACCES...)
    const cause = result.cause;
    const detail = cause instanceof Error ? cause.message : result.shortMessage;
    throw new ColdvaultError('HYPERVISOR', `command '${formatCommand(argv)}' failed: ${detail}`, { cause });
  }
  return {
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    exitCode: result.exitCode ?? -1,
    ...(result.timedOut ? { timedOut: true } : {}),
    ...(result.signal !== undefined ? { signal: result.signal } : {}),
  };
};

/** Runs and throws HYPERVISOR (naming the command) unless it exited 0 in time. */
export async function runChecked(run: CommandRunner, argv: string[], opts?: RunOptions): Promise<CommandResult> {
  const result = await run(argv, opts);
  if (result.exitCode !== 0 || result.timedOut) throw commandError(argv, result);
  return result;
}
