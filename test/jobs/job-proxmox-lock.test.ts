/**
 * Jobs with the Proxmox driver hold vzdump's `lock: backup` on the guest for its whole backup, driven
 * through the built CLI (`hypervisor.driver: proxmox`, `qm` from PATH). There is no Proxmox host here:
 * `qm` is the FAKE of test/guests/fake-qm.ts, which keeps the lock in the guest's config file (the
 * guests dir coldvault reads) and refuses to start, shut down or stop a locked guest without
 * `--skiplock`, as qemu-server does (read from its source). The disks are real files, the datastore,
 * the state database and the CLI processes are real; what no fake can show is a real guest.
 * Asserted: the lock is set before the shutdown and nobody else can start the guest meanwhile; it is
 * removed after a success, after a failure, and after a kill -9 of the job (by the recovery at the
 * next `serve` start or job run); a guest locked by someone else is refused and never shut down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
// the job engine from dist/ (its chunk workers run compiled code), as the CLI runs it
import { ProxmoxDriver } from '../../dist/guests/hypervisor/index.js';
import { openStateDb, runJob, StopJournal, TaskStore, validateJob } from '../../dist/jobs/index.js';
import { CLI, cli, type CliResult } from '../helpers/fixtures.js';
import { makeGuestDisk } from '../helpers/tiny-guest.js';
import { makeFakeQm, type FakeQm } from '../guests/fake-qm.js';
import { diskPath, hookCalls, lineIndex, makeJobLab, NODE, taskIdOf, waitFor, writeGuestConf, writeHook, type JobLab } from './helpers-jobs.js';

let lab: JobLab;
let fake: FakeQm;
const children: ChildProcess[] = [];

/** The CLI with the lab's config and the fake qm first on PATH. */
function pcv(args: string[]): Promise<CliResult> {
  return cli([...args, '--config', lab.configPath], { env: { PATH: `${fake.dir}:${process.env.PATH ?? ''}` } });
}

function spawnPcv(args: string[]): { child: ChildProcess; out: () => string; exited: Promise<unknown> } {
  const child = spawn(process.execPath, [CLI, ...args, '--config', lab.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${fake.dir}:${process.env.PATH ?? ''}` },
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  return { child, out: () => out, exited: new Promise((resolve) => child.once('exit', resolve)) };
}

async function addGuest(vmid: string, state: 'running' | 'stopped'): Promise<void> {
  mkdirSync(join(lab.storageDir, 'images', vmid), { recursive: true });
  await makeGuestDisk(diskPath(lab, vmid), 8);
  writeGuestConf(lab, vmid, `guest${vmid}`);
  await fake.setState(vmid, state);
}

async function versionCount(vmid: string): Promise<number> {
  const r = await pcv(['list', vmid, '--store', lab.storeDir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

function journalEntries(): ReturnType<StopJournal['entries']> {
  const db = openStateDb(lab.stateDir);
  try {
    return new StopJournal(db).entries();
  } finally {
    db.close();
  }
}

/** The index of the first call matching `re` in the fake's call log (-1 if none). */
const callAt = (calls: string[], re: RegExp): number => calls.findIndex((c) => re.test(c));

beforeAll(async () => {
  lab = await makeJobLab('cv-jpl-');
  fake = await makeFakeQm(lab.guestsDir);
  const config = JSON.parse(readFileSync(lab.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(lab.configPath, JSON.stringify({ ...config, hypervisor: { driver: 'proxmox' } }, null, 2));
});

afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

afterAll(async () => {
  await lab?.cleanup();
  await fake?.cleanup();
});

describe('a job with the Proxmox driver locks the guest for its backup (fake qm)', () => {
  it('sets lock: backup before the shutdown; nobody else can start the guest meanwhile; restarts it with --skiplock and unlocks it after', async () => {
    await addGuest('101', 'running');
    await fake.clearCalls();
    // backup-end: the version is published and the lock still held; "someone else" looks and tries to start it
    const seen = join(lab.root, 'seen-101');
    const hook = writeHook(
      lab,
      'hook-101.sh',
      `if [ "$1" = backup-end ]; then '${fake.qm}' config 101 > '${seen}'; '${fake.qm}' start 101 2>> '${seen}'; echo "exit $?" >> '${seen}'; fi\n`,
    );
    expect((await pcv(['job', 'add', 'j1', '--store', lab.storeDir, '--vmid', '101', '--hook', hook.script])).code).toBe(0);

    const run = await pcv(['job', 'run', 'j1']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('stopping virtual guest');
    expect(run.stdout).toContain('guest is online again');
    expect(run.stdout).toContain('status after reading the disks = stopped');

    const seenText = readFileSync(seen, 'utf8');
    expect(seenText).toMatch(/^lock: backup$/m);
    expect(seenText).toContain('VM is locked (backup)');
    expect(seenText).toContain('exit 255');

    const calls = await fake.calls();
    const lockAt = callAt(calls, /^set 101 --lock backup$/);
    const shutdownAt = callAt(calls, /^shutdown 101 --skiplock --keepActive --timeout \d+$/);
    const startAt = callAt(calls, /^start 101 --skiplock$/);
    const unlockAt = callAt(calls, /^unlock 101$/);
    expect(lockAt, calls.join('\n')).toBeGreaterThanOrEqual(0);
    expect([lockAt < shutdownAt, shutdownAt < startAt, startAt < unlockAt], calls.join('\n')).toEqual([true, true, true]);
    expect(await fake.lock('101')).toBeUndefined();
    expect(await fake.state('101')).toBe('running');
    expect(journalEntries()).toEqual([]);
    expect(await versionCount('101')).toBe(1);
    // the archived config is the guest's, without the lock line that was in it while it was read
    const archived = readFileSync(join(lab.storeDir, 'guests', '101', '1', 'qemu-server.conf'), 'utf8');
    expect(archived).toContain('name: guest101');
    expect(archived).not.toContain('lock:');
  });

  it('removes the lock after a failure too (the disk vanished after the shutdown); the guest is started again', async () => {
    await addGuest('102', 'running');
    await fake.clearCalls();
    const hook = writeHook(lab, 'hook-102.sh', `if [ "$1" = pre-stop ]; then /bin/rm -f '${diskPath(lab, '102')}'; fi\n`);
    expect((await pcv(['job', 'add', 'j2', '--store', lab.storeDir, '--vmid', '102', '--hook', hook.script])).code).toBe(0);

    const run = await pcv(['job', 'run', 'j2']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(1);
    expect(run.stdout).toMatch(/ERROR: Backup of VM 102 failed - /);
    const calls = await fake.calls();
    expect(callAt(calls, /^set 102 --lock backup$/)).toBeLessThan(callAt(calls, /^shutdown 102 --skiplock/));
    expect(callAt(calls, /^start 102 --skiplock$/)).toBeLessThan(callAt(calls, /^unlock 102$/));
    expect(await fake.lock('102')).toBeUndefined();
    expect(await fake.state('102')).toBe('running');
    expect(journalEntries()).toEqual([]);
    expect(hookCalls(hook.log).map((c) => c.args)).toContain('backup-abort stop 102');
  });

  for (const lock of ['migrate', 'snapshot', 'backup']) {
    it(`a guest that holds 'lock: ${lock}' (someone else's) fails with an error naming it and is never shut down`, async () => {
      const vmid = { migrate: '103', snapshot: '104', backup: '105' }[lock]!;
      await addGuest(vmid, 'running');
      writeFileSync(join(lab.guestsDir, `${vmid}.conf`), readFileSync(join(lab.guestsDir, `${vmid}.conf`), 'utf8') + `lock: ${lock}\n`);
      await fake.clearCalls();
      const hook = writeHook(lab, `hook-${vmid}.sh`);
      expect((await pcv(['job', 'add', `j${vmid}`, '--store', lab.storeDir, '--vmid', vmid, '--hook', hook.script])).code).toBe(0);

      const run = await pcv(['job', 'run', `j${vmid}`]);
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(1);
      expect(run.stdout).toContain(`ERROR: Backup of VM ${vmid} failed - guest ${vmid} is locked by another Proxmox operation ('lock: ${lock}' in its config)`);
      expect(run.stdout).toContain('Backup job finished with errors');
      expect(run.stdout).not.toContain('stopping virtual guest');
      const calls = await fake.calls();
      expect(
        calls.filter((c) => /^(shutdown|stop|start|unlock) /.test(c)),
        calls.join('\n'),
      ).toEqual([]);
      expect(await fake.lock(vmid)).toBe(lock);
      expect(await fake.state(vmid)).toBe('running');
      expect(await versionCount(vmid)).toBe(0);
      expect(journalEntries()).toEqual([]);
      expect(hookCalls(hook.log).map((c) => c.args)).not.toContain(`pre-stop stop ${vmid}`);
    });
  }

  it('after a kill -9 while the guest is off and locked, the next `coldvault serve` removes the lock and starts it', async () => {
    await addGuest('106', 'running');
    const { taskId, pid } = await killInHook('j6', '106', 'pre-restart');
    expect(await fake.lock('106')).toBe('backup');
    expect(await fake.state('106')).toBe('stopped');
    expect((await fake.runAsOther(['start', '106'])).stderr).toContain('VM is locked (backup)'); // still held
    await fake.clearCalls();

    const serve = spawnPcv(['serve', '--listen', '127.0.0.1:0']);
    const back = await waitFor(async () => (await fake.state('106')) === 'running', 60_000, 250);
    expect(back, serve.out()).toBe(true);
    expect(await fake.lock('106')).toBeUndefined();
    const calls = await fake.calls();
    // unlocked first, then started as anyone would (coldvault holds no lock any more: no --skiplock)
    expect(callAt(calls, /^unlock 106$/)).toBeGreaterThanOrEqual(0);
    expect(callAt(calls, /^unlock 106$/)).toBeLessThan(callAt(calls, /^start 106$/));
    expect(await waitFor(() => journalEntries().length === 0, 20_000, 250)).toBe(true);
    expect(serve.out()).toMatch(new RegExp(`guest 106 was locked for backup by task ${taskId} \\(pid ${pid}\\)`));
    expect(serve.out()).toContain('guest 106 is unlocked');
    // the line is logged right after the journal entry goes: it may still be on its way through the pipe
    expect(await waitFor(() => serve.out().includes('guest 106 is running again'), 20_000, 100), serve.out()).toBe(true);
    serve.child.kill('SIGTERM');
    await serve.exited;
  });

  it('after a kill -9 while a guest that was off is locked, the next job run removes the lock and leaves the guest off', async () => {
    await addGuest('107', 'stopped');
    await addGuest('108', 'stopped');
    const { taskId } = await killInHook('j7', '107', 'backup-end'); // a guest that was off: no pre-restart
    expect(await fake.lock('107')).toBe('backup');
    expect(journalEntries()).toMatchObject([{ vmid: '107', taskId, stopped: false, locked: true }]);
    await fake.clearCalls();

    expect((await pcv(['job', 'add', 'j8', '--store', lab.storeDir, '--vmid', '108'])).code).toBe(0);
    const other = await pcv(['job', 'run', 'j8']);
    expect(other.code, `${other.stdout}\n${other.stderr}`).toBe(0);
    expect(other.stdout).toMatch(new RegExp(`WARN: guest 107 was locked for backup by task ${taskId} .*did not finish; removing the lock`));
    expect(await fake.lock('107')).toBeUndefined();
    expect(await fake.state('107')).toBe('stopped'); // it was off before the killed run: not started
    expect((await fake.calls()).filter((c) => c.startsWith('start 107'))).toEqual([]);
    expect(journalEntries()).toEqual([]);
  });

  it('after a kill -9, the next run of the same job takes the guest over: unlocks, locks again, backs it up as it is, starts it', async () => {
    await addGuest('110', 'running');
    const { taskId } = await killInHook('j10', '110', 'pre-restart');
    expect(await fake.lock('110')).toBe('backup');
    expect(await fake.state('110')).toBe('stopped');
    await fake.clearCalls();
    // j10's hook sleeps in pre-restart: this run gets a plain one
    expect((await pcv(['job', 'edit', 'j10', '--hook', writeHook(lab, 'hook-j10-again.sh').script])).code).toBe(0);

    const again = await pcv(['job', 'run', 'j10']);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`WARN: guest 110 was locked for backup by task ${taskId} .*removing the lock`));
    expect(again.stdout).toMatch(new RegExp(`WARN: guest 110 was left stopped by the interrupted task ${taskId}; backing it up as it is`));
    expect(again.stdout).not.toContain('stopping virtual guest');
    const calls = await fake.calls();
    const at = (re: RegExp): number => callAt(calls, re);
    expect([at(/^unlock 110$/) < at(/^set 110 --lock backup$/), at(/^set 110 --lock backup$/) < at(/^start 110 --skiplock$/)], calls.join('\n')).toEqual([
      true,
      true,
    ]);
    expect(calls.filter((c) => c.startsWith('unlock 110'))).toHaveLength(2); // the dead run's lock, then this run's
    expect(await fake.lock('110')).toBeUndefined();
    expect(await fake.state('110')).toBe('running');
    expect(await versionCount('110')).toBe(1); // the killed run died before its publish (the guest is started first)
    expect(journalEntries()).toEqual([]);
  });
});

describe('a guest started by hand with --skiplock while its disks are read (fake qm, in-process job)', () => {
  it('fails that version with GUEST_STARTED, is not started twice, and its lock is removed', async () => {
    // in-process, so the start can happen deterministically while the disk is read: from the job's
    // progress callback (the one the CLI's progress bar uses), synchronously
    await addGuest('109', 'running');
    await fake.clearCalls();
    const db = openStateDb(lab.stateDir);
    try {
      const tasks = new TaskStore(db, lab.stateDir);
      const job = validateJob({ id: 'j9', store: lab.storeDir, vmid: ['109'] });
      let startedByHand = false;
      const result = await runJob(job, {
        node: NODE,
        stateDir: lab.stateDir,
        guestsDir: lab.guestsDir,
        storages: { local: lab.storageDir },
        zstdLevel: 1,
        tasks,
        journal: new StopJournal(db),
        driver: new ProxmoxDriver({ qm: fake.qm, pollMs: 50 }),
        onProgress: (p) => {
          if (startedByHand || p.phase !== 'backup') return;
          startedByHand = true;
          execFileSync(fake.qm, ['start', '109', '--skiplock']); // an admin passing over the lock
        },
      });
      expect(startedByHand).toBe(true);
      expect(result.ok).toBe(false);
      expect(result.guests[0]?.error).toBe('guest 109 was started while its disks were being read (status: running); this version is discarded');
      const log = tasks
        .lines(result.taskId)
        .map((l) => `${l.level}: ${l.message}`)
        .join('\n');
      expect(log).toContain('WARN: guest 109 was started by someone else while coldvault held it stopped; it is left as it is and not started again');
      expect(lineIndex(log, 'restarting vm')).toBe(-1);
      const calls = await fake.calls();
      expect(calls.filter((c) => c.startsWith('start 109'))).toEqual(['start 109 --skiplock']); // the hand's, no second one
      expect(callAt(calls, /^unlock 109$/)).toBeGreaterThan(callAt(calls, /^start 109/));
      expect(await fake.lock('109')).toBeUndefined();
      expect(await fake.state('109')).toBe('running');
      expect(new StopJournal(db).entries()).toEqual([]);
    } finally {
      db.close();
    }
    expect(await versionCount('109')).toBe(0);
  });
});

/** Runs job `jobId` for `vmid` with a hook that sleeps in `phase`, kills -9 the CLI there. */
async function killInHook(jobId: string, vmid: string, phase: 'pre-restart' | 'backup-end'): Promise<{ taskId: string; pid: number }> {
  const pidFile = join(lab.root, `sleeper-${jobId}.pid`);
  const hook = writeHook(lab, `hook-${jobId}.sh`, `if [ "$1" = ${phase} ]; then echo $$ > '${pidFile}'; exec /bin/sleep 60; fi\n`);
  expect((await pcv(['job', 'add', jobId, '--store', lab.storeDir, '--vmid', vmid, '--hook', hook.script])).code).toBe(0);
  const run = spawnPcv(['job', 'run', jobId]);
  expect(await waitFor(() => hookCalls(hook.log).some((c) => c.args === `${phase} stop ${vmid}`), 60_000), run.out()).toBe(true);
  const taskId = taskIdOf(run.out());
  run.child.kill('SIGKILL');
  await run.exited;
  const sleeper = Number.parseInt(readFileSync(pidFile, 'utf8'), 10);
  if (readFileSync(`/proc/${sleeper}/cmdline`, 'utf8').includes('sleep')) process.kill(sleeper, 'SIGKILL');
  rmSync(pidFile);
  return { taskId, pid: run.child.pid ?? 0 };
}
