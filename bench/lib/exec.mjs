/**
 * Runs a measured command: wall time (hrtime, around the whole process), peak RSS (GNU time's %M,
 * the largest resident set of the process and its children), CPU time (user + sys), optionally inside a blkio cgroup
 * (the pid is written to the cgroup's cgroup.procs before exec, so every byte it reads or writes on
 * the throttled device counts against the limit).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

let seq = 0;

export class CommandError extends Error {}

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {{cwd?: string, env?: object, cgroup?: string, tmp: string, allowFail?: boolean}} opts
 * @returns {Promise<{seconds: number, rssKiB: number, cpuSeconds: number, sysSeconds: number, stdout: string, stderr: string, code: number, stderrLines: Array<{at: number, line: string}>}>}
 * `stderrLines`: each line of stderr with the seconds since the start at which it arrived (a phase of a
 * command is timed by the lines that open and close it).
 */
export function measure(cmd, args, opts) {
  const timeFile = join(opts.tmp, `time-${process.pid}-${seq++}.txt`);
  let argv = ['/usr/bin/time', '-f', '%M %U %S', '-o', timeFile, cmd, ...args];
  if (opts.cgroup) argv = ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', join(opts.cgroup, 'cgroup.procs'), ...argv];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: { ...process.env, ...(opts.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    const stderrLines = [];
    let partial = '';
    child.stderr.on('data', (d) => {
      err.push(d);
      const at = Number(process.hrtime.bigint() - t0) / 1e9;
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) stderrLines.push({ at, line });
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      let rssKiB = NaN;
      let cpuSeconds = NaN;
      let sysSeconds = NaN;
      try {
        const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
        const [rss, user, sys] = (lines[lines.length - 1] ?? '').split(' ').map(Number);
        rssKiB = rss;
        cpuSeconds = user + sys;
        sysSeconds = sys;
      } catch {
        /* no time file: the command did not start */
      }
      rmSync(timeFile, { force: true });
      if (partial) stderrLines.push({ at: seconds, line: partial });
      const res = {
        ...{ seconds, rssKiB, cpuSeconds, sysSeconds, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() },
        ...{ code: code ?? 128, stderrLines },
      };
      if ((code !== 0 || signal) && !opts.allowFail) {
        reject(
          new CommandError(`command failed (exit ${code}${signal ? `, ${signal}` : ''}): ${cmd} ${args.join(' ')}\n${tail(res.stderr)}${tail(res.stdout)}`),
        );
      } else {
        resolve(res);
      }
    });
  });
}

function tail(s, n = 2000) {
  return s.length > n ? `...${s.slice(-n)}` : s;
}

/** Runs an unmeasured helper command; throws with its output when it fails. */
export function sh(cmd, args = [], opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0 && !opts.allowFail) {
    throw new CommandError(`command failed (exit ${r.status}): ${cmd} ${args.join(' ')}\n${tail(r.stderr ?? '')}${tail(r.stdout ?? '')}`);
  }
  return (r.stdout ?? '').trim();
}

export function dropCaches() {
  sh('sync');
  sh('/bin/sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches']);
}
