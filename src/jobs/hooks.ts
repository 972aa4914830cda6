/**
 * Hook scripts, as vzdump runs them (`--script`): `SCRIPT PHASE` for job-init, job-start, job-end,
 * job-abort; `SCRIPT PHASE MODE VMID` for backup-start, pre-stop, pre-restart, post-restart,
 * backup-end, backup-abort, log-end. The environment holds only what vzdump sets (no PATH):
 * DUMPDIR, VMTYPE, HOSTNAME (the guest's name), TARGET, LOGFILE, STOREID (when known), LC_ALL=C,
 * LVM_SUPPRESS_FD_WARNINGS=1, so existing vzdump hook scripts run unchanged. Output lines are
 * logged; a non-zero exit fails the phase, except for backup-abort, log-end and job-abort (warnings).
 * The seed's "script before / after" are run the same way with the phase `job-start` / `job-end`.
 */
import { ColdvaultError, type TaskLog } from '../core/index.js';

export type JobPhase = 'job-init' | 'job-start' | 'job-end' | 'job-abort';
export type GuestPhase = 'backup-start' | 'pre-stop' | 'pre-restart' | 'post-restart' | 'backup-end' | 'backup-abort' | 'log-end';

export interface HookEnv {
  DUMPDIR?: string;
  STOREID?: string;
  VMTYPE?: string;
  HOSTNAME?: string;
  TARGET?: string;
  LOGFILE?: string;
}

const WARN_ONLY = new Set(['backup-abort', 'log-end', 'job-abort']);

export async function runHook(script: string | undefined, args: string[], env: HookEnv, log: TaskLog): Promise<void> {
  if (!script) return;
  const phase = args[0] ?? '';
  const clean: Record<string, string> = { LC_ALL: 'C', LVM_SUPPRESS_FD_WARNINGS: '1' };
  for (const [k, v] of Object.entries(env) as Array<[string, string | undefined]>) if (v !== undefined) clean[k] = v;
  const { execa } = await import('execa');
  const result = await execa(script, args, { env: clean, extendEnv: false, reject: false, all: true, stdin: 'ignore', timeout: 3_600_000 });
  for (const line of (result.all ?? '').split('\n')) if (line.trim() !== '') log.info(line);
  if (result.exitCode === 0 && !result.failed) return;
  const why = result.exitCode !== undefined ? `exit code ${result.exitCode}` : describeFailure(result);
  const message = `command '${[script, ...args].join(' ')}' failed: ${why}`;
  if (WARN_ONLY.has(phase)) {
    log.warn(message);
    return;
  }
  throw new ColdvaultError('HOOK_FAILED', message);
}

function describeFailure(result: { shortMessage?: string; message?: string }): string {
  return (result.shortMessage ?? result.message ?? 'could not run').split('\n')[0] ?? 'could not run';
}
