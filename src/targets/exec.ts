/** Runs a system tool (lsblk, blkid, mount, umount, sync) and returns stdout; failure keeps stderr. */
import { execFile } from 'node:child_process';

export interface ExecFailure extends Error {
  stderr: string;
  exitCode: number | null;
}

export function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const failure = err as Error & Partial<ExecFailure> & { code?: unknown };
      failure.stderr = stderr.trim() || err.message;
      failure.exitCode = typeof failure.code === 'number' ? failure.code : null;
      reject(failure);
    });
  });
}

/** The stderr (or message) of a failed `run`, for error messages. */
export function stderrOf(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'stderr' in err && typeof err.stderr === 'string') return err.stderr;
  return err instanceof Error ? err.message : String(err);
}
