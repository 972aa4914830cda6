/**
 * The guest always comes back: `coldvault job run` is killed (-9) while it holds a real QEMU guest
 * stopped (its hook sleeps in `pre-restart`, after the shutdown); the guest stays off until the next
 * `coldvault serve`, which starts it again in a `recovery` task naming the guest and the interrupted
 * task; the interrupted task is listed as failed.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/fixtures.js';
import { killGuest, readBootCount } from '../helpers/tiny-guest.js';
import { addTinyGuest, bootGuest, cv, hookCalls, makeJobLab, sleep, waitBooted, waitFor, writeHook, type JobLab } from './helpers-jobs.js';

interface TaskJson {
  id: string;
  type: string;
  jobId: string | null;
  status: string;
  summary: string | null;
}

let lab: JobLab;
const children: ChildProcess[] = [];
let sleeperPidFile = '';

/** Starts the CLI; collects its output. */
function start(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> } {
  const child = spawnCli([...args, '--config', lab.configPath]);
  children.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, out: () => out, exited };
}

function killSleeper(): void {
  const pid = Number.parseInt(
    (() => {
      try {
        return readFileSync(sleeperPidFile, 'utf8');
      } catch {
        return '';
      }
    })(),
    10,
  );
  if (!pid) return;
  const cmdline = (() => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  })();
  if (cmdline.includes('sleep')) process.kill(pid, 'SIGKILL');
}

beforeAll(async () => {
  lab = await makeJobLab('cv-jr-', { qemu: true });
});

afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  killSleeper();
  for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
});

afterAll(async () => {
  await lab?.cleanup();
});

describe('a run killed while it holds a guest stopped', () => {
  it('leaves the guest off; the next `coldvault serve` starts it in a recovery task', async () => {
    const disk = await addTinyGuest(lab, '101', 'web01');
    await bootGuest(lab, '101');
    expect(await readBootCount(disk)).toBe(1);
    sleeperPidFile = `${lab.root}/sleeper.pid`;
    // pre-restart comes after the shutdown and the read, before the start: the guest is certainly off then
    const hook = writeHook(lab, 'hook-slow.sh', `if [ "$1" = pre-restart ]; then echo $$ > '${sleeperPidFile}'; exec /bin/sleep 30; fi\n`);
    const add = await cv(lab, ['job', 'add', 'j1', '--store', lab.storeDir, '--vmid', '101', '--hook', hook.script]);
    expect(add.code, add.stderr).toBe(0);

    const run = start(['job', 'run', 'j1']);
    const inHook = await waitFor(() => hookCalls(hook.log).some((c) => c.args === 'pre-restart stop 101'), 60_000);
    expect(inHook, run.out()).toBe(true);
    expect(run.out()).toContain('stopping virtual guest');
    expect(await lab.driver!.status('101')).toBe('stopped');
    const taskId = /^task (\S+)$/m.exec(run.out())?.[1];
    expect(taskId, run.out()).toBeDefined();

    run.child.kill('SIGKILL');
    expect(await run.exited).toEqual({ code: null, signal: 'SIGKILL' });
    killSleeper();
    await sleep(1_000);
    expect(await lab.driver!.status('101')).toBe('stopped'); // nobody brought it back yet
    expect(await readBootCount(disk)).toBe(1);

    // the interrupted task is failed (interrupted), not "running" forever
    const listed = await cv(lab, ['task', 'list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const interrupted = (JSON.parse(listed.stdout) as TaskJson[]).find((t) => t.id === taskId);
    expect(interrupted).toMatchObject({ type: 'backup', jobId: 'j1', status: 'failed' });
    expect(interrupted?.summary).toMatch(/interrupted/);

    const serve = start(['serve', '--listen', '127.0.0.1:0']);
    const back = await waitFor(async () => (await lab.driver!.status('101')) === 'running', 20_000, 250);
    expect(back, serve.out()).toBe(true);
    await waitBooted(lab, '101', 2);
    expect(await readBootCount(disk)).toBe(2);

    const tasks = JSON.parse((await cv(lab, ['task', 'list', '--json'])).stdout) as TaskJson[];
    const recovery = tasks.filter((t) => t.type === 'recovery');
    expect(recovery).toHaveLength(1);
    expect(recovery[0]!.status).toBe('ok');
    const log = await cv(lab, ['task', 'log', recovery[0]!.id]);
    expect(log.code).toBe(0);
    expect(log.stdout).toMatch(new RegExp(`WARN: guest 101 was stopped by task ${taskId} \\(pid ${run.child.pid}\\)`));
    expect(log.stdout).toContain('INFO: guest 101 is running again');
    expect(serve.out()).toContain('guest 101 is running again');
    expect(tasks.find((t) => t.id === taskId)?.status).toBe('failed');

    serve.child.kill('SIGTERM');
    const exit = await Promise.race([serve.exited, sleep(15_000).then(() => 'still running' as const)]);
    expect(exit, serve.out()).toEqual({ code: 0, signal: null });
    expect(await lab.driver!.status('101')).toBe('running'); // serve leaves it running
  });

  it('the next `coldvault job run` (any job) brings the guest back; the locks of the dead run do not block its job', async () => {
    const disk = await addTinyGuest(lab, '102', 'db02');
    await addTinyGuest(lab, '103', 'off03');
    await bootGuest(lab, '102');
    const { killedTask, hook } = await killRunInPreRestart('j2', '102');

    // another job (a guest that is off): it starts with the recovery of 102
    expect((await cv(lab, ['job', 'add', 'other', '--store', lab.storeDir, '--vmid', '103'])).code).toBe(0);
    const other = await cv(lab, ['job', 'run', 'other']);
    expect(other.code, `${other.stdout}\n${other.stderr}`).toBe(0);
    expect(other.stdout).toMatch(new RegExp(`WARN: guest 102 was stopped by task ${killedTask} .*did not finish; starting it again`));
    expect(other.stdout).toContain('INFO: guest 102 is running again');
    expect(await lab.driver!.status('102')).toBe('running');
    await waitBooted(lab, '102', 2);
    expect(await readBootCount(disk)).toBe(2);

    // the killed job again: its job lock and the guest lock of the dead run are taken over; a normal run
    const again = await cv(lab, ['job', 'run', 'j2']);
    const out = again.stdout;
    expect(again.code, `${out}\n${again.stderr}`).toBe(0);
    expect(out).not.toContain('did not finish; starting it again'); // recovered once, not twice
    expect(out).toContain('status = running');
    expect(out).toContain('stopping virtual guest');
    expect(out).toContain('Backup job finished successfully');
    expect(hookCalls(hook.log).filter((c) => c.args === 'post-restart stop 102')).toHaveLength(1);
    expect(await lab.driver!.status('102')).toBe('running');
    await waitBooted(lab, '102', 3);
    expect(await readBootCount(disk)).toBe(3);
  });

  it('the next run of the same job recovers the guest and still backs it up', async () => {
    // The run must not start the guest and shut it down again right away, while it boots (a guest
    // that does not listen to the power button yet ignores the request): it backs the guest up as it
    // is, stopped, and starts it afterwards.
    const disk = await addTinyGuest(lab, '104', 'app04');
    await bootGuest(lab, '104');
    const { killedTask } = await killRunInPreRestart('j4', '104');
    expect((await cv(lab, ['job', 'edit', 'j4', '--stop-timeout', '10'])).code).toBe(0);

    const again = await cv(lab, ['job', 'run', 'j4']);
    const out = again.stdout;
    expect(out).toMatch(
      new RegExp(`WARN: guest 104 was left stopped by the interrupted task ${killedTask}; backing it up as it is and starting it afterwards`),
    );
    expect(out).not.toContain('stopping virtual guest');
    expect(out).toContain('guest is online again');
    expect(again.code, `${out}\n${again.stderr}`).toBe(0);
    expect(out).toContain('Finished Backup of VM 104');
    expect(await lab.driver!.status('104')).toBe('running');
    // the killed run died before its publish (the guest is started first), after it took version 1:
    // this run makes version 2 (numbers are never handed out twice), and 1 never appears
    const listed = JSON.parse((await cv(lab, ['list', '104', '--store', lab.storeDir, '--json'])).stdout) as Array<{ version: number }>;
    expect(listed.map((v) => v.version)).toEqual([2]);
    // started once more: its init counts the boot when it has mounted its disk, shortly after QEMU runs
    expect(await waitFor(async () => (await readBootCount(disk)) >= 2, 20_000, 250)).toBe(true);
  });
});

/**
 * Adds job `jobId` for `vmid` (running) with a hook that sleeps in pre-restart while a marker file
 * exists, runs it, kills -9 the CLI while the guest is off, and removes the marker.
 */
async function killRunInPreRestart(jobId: string, vmid: string): Promise<{ killedTask: string; hook: { script: string; log: string } }> {
  sleeperPidFile = `${lab.root}/sleeper-${jobId}.pid`;
  const slow = `${lab.root}/slow-${jobId}`;
  writeFileSync(slow, '');
  const hook = writeHook(
    lab,
    `hook-${jobId}.sh`,
    `if [ "$1" = pre-restart ] && [ -e '${slow}' ]; then echo $$ > '${sleeperPidFile}'; exec /bin/sleep 30; fi\n`,
  );
  const add = await cv(lab, ['job', 'add', jobId, '--store', lab.storeDir, '--vmid', vmid, '--hook', hook.script]);
  expect(add.code, add.stderr).toBe(0);
  const run = start(['job', 'run', jobId]);
  expect(await waitFor(() => hookCalls(hook.log).some((c) => c.args === `pre-restart stop ${vmid}`), 60_000), run.out()).toBe(true);
  expect(await lab.driver!.status(vmid)).toBe('stopped');
  const killedTask = /^task (\S+)$/m.exec(run.out())?.[1] ?? '';
  expect(killedTask).not.toBe('');
  run.child.kill('SIGKILL');
  await run.exited;
  killSleeper();
  rmSync(slow);
  expect(await lab.driver!.status(vmid)).toBe('stopped');
  return { killedTask, hook };
}
