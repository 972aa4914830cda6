/**
 * Cold snapshots in `coldvault job run`, with the tiny real QEMU guest (TCG) and real filesystems:
 * - XFS (reflink=1): the guest runs again (QMP) before its disk is read, writes its boot marker to
 *   the disk while the backup reads the snapshot, and the version restores byte-identical to the
 *   disk as it was at shutdown; vzdump's hook order; the snapshot is removed afterwards.
 * - ext4: no snapshot (one log line says why): the guest is off for the read and started before the
 *   publish, with the same hook order; a disk that grew between planning and shutdown is read whole.
 * - kill -9 after the snapshot: the guest runs; the next run removes the leftover and succeeds.
 * - `--snapshot off` on XFS: the guest is off for the read, no snapshot is made.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli } from '../helpers/fixtures.js';
import { mountFs, type MountedFs } from '../helpers/snapshot-fs.js';
import { guestFiles, killGuest, markerOnConsole, readBootCount, readMarker } from '../helpers/tiny-guest.js';
import {
  addTinyGuest,
  bootGuest,
  cv,
  diskPath,
  hookCalls,
  lineIndex,
  makeJobLab,
  sleep,
  taskIdOf,
  versions,
  waitBooted,
  waitFor,
  writeHook,
  type JobLab,
} from './helpers-jobs.js';

let xfs: JobLab;
let ext4: JobLab;
const mounts: MountedFs[] = [];

/** A job lab whose storage `local` is a fresh filesystem of `kind`. */
async function labOn(kind: 'xfs' | 'ext4', prefix: string): Promise<JobLab> {
  const lab = await makeJobLab(prefix, { qemu: true });
  mounts.push(mountFs(kind, lab.root, lab.storageDir, 400));
  mkdirSync(join(lab.storageDir, 'images'));
  return lab;
}

beforeAll(async () => {
  xfs = await labOn('xfs', 'cv-jsx-');
  ext4 = await labOn('ext4', 'cv-jse-');
});

afterAll(async () => {
  for (const lab of [xfs, ext4]) if (lab) for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
  for (const m of mounts.reverse()) m.cleanup();
  for (const lab of [xfs, ext4]) await lab?.cleanup();
});

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const snapshotDir = (lab: JobLab, vmid: string): string => join(lab.storageDir, '.coldvault-snapshots', vmid);
const storeId = (lab: JobLab): string => (JSON.parse(readFileSync(join(lab.storeDir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id;
const serial = (lab: JobLab, vmid: string): string => readFileSync(guestFiles(lab.qemuDir, vmid).log, 'utf8');

interface PausedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  /** what `inPause` returned, or undefined when the run never got to read the disk */
  seen?: string;
}

/**
 * Runs `job run <id>`; the moment its task log shows the disk image being read (`now save file
 * '...raw'`), the process is paused (SIGSTOP) and `inPause` looks (QMP status), then it goes on.
 */
async function runPausedAtRead(lab: JobLab, jobId: string, inPause: () => Promise<string>): Promise<PausedRun> {
  const tasksDir = join(lab.stateDir, 'tasks');
  const before = new Set(existsSync(tasksDir) ? readdirSync(tasksDir) : []);
  const child = spawnCli(['job', 'run', jobId, '--config', lab.configPath]);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => (done = true));
  const reading = (): boolean =>
    existsSync(tasksDir) &&
    readdirSync(tasksDir)
      .filter((n) => !before.has(n))
      .some((f) => /now save file '[^']*\.raw'/.test(readFileSync(join(tasksDir, f), 'utf8')));
  let seen: string | undefined;
  if ((await waitFor(() => done || reading(), 180_000, 5)) && !done) {
    process.kill(child.pid!, 'SIGSTOP');
    try {
      seen = await inPause();
    } finally {
      process.kill(child.pid!, 'SIGCONT');
    }
  }
  const end = await Promise.race([exited, sleep(300_000).then(() => undefined)]);
  if (!end) {
    child.kill('SIGKILL');
    throw new Error(`job run ${jobId} did not end within 300 s:\n${out}`);
  }
  return { ...end, out, seen };
}

/** The time of the first log line containing `text` (`YYYY-MM-DD HH:MM:SS LEVEL: ...`). */
function timeOf(log: string, text: string): number {
  const line = log.split('\n').find((l) => l.includes(text)) ?? '';
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) /.exec(line);
  if (!m) throw new Error(`no timed line with '${text}' in:\n${log}`);
  return new Date(`${m[1]}T${m[2]}`).getTime();
}

function expectInOrder(log: string, texts: string[]): void {
  const at = texts.map((t) => [t, lineIndex(log, t)] as const);
  for (const [text, i] of at) expect(i, `'${text}' in the log:\n${log}`).toBeGreaterThanOrEqual(0);
  const positions = at.map(([, i]) => i);
  expect(positions, log).toEqual([...positions].sort((a, b) => a - b));
}

const FLOW_HOOKS = (vmid: string): string[] => [
  'job-init',
  'job-start',
  `backup-start stop ${vmid}`,
  `pre-stop stop ${vmid}`,
  `pre-restart stop ${vmid}`,
  `post-restart stop ${vmid}`,
  `backup-end stop ${vmid}`,
  `log-end stop ${vmid}`,
  'job-end',
];

describe('job run with cold snapshots (tiny real guest)', () => {
  it('XFS: the guest runs again before its disk is read, writes to it meanwhile, and the version is the disk at shutdown', async () => {
    const disk = await addTinyGuest(xfs, '101', 'web01');
    // 16 MiB of data behind the guest's file system, which the guest never writes: chunks the next
    // nightly must take from the base (the guest's own writes may touch every chunk of its small file
    // system: journal, superblock, lazily initialised inode tables)
    const fd = openSync(disk, 'r+');
    writeSync(fd, randomBytes(16 * 1024 * 1024), 0, 16 * 1024 * 1024, 16 * 1024 * 1024);
    closeSync(fd);
    await bootGuest(xfs, '101');
    const token1 = markerOnConsole(serial(xfs, '101'), 1);
    expect(token1).toBeDefined();
    expect(await readMarker(disk)).toEqual({ boot: 1, token: token1 });
    const atPreRestart = join(xfs.root, 'pre-restart.txt');
    // pre-restart: the snapshot is made and the guest still off: the disk as it was at shutdown
    const hook = writeHook(
      xfs,
      'hook-snap.sh',
      `if [ "$1" = pre-restart ]; then /usr/bin/sha256sum '${disk}' > '${atPreRestart}'; /bin/ls -A '${snapshotDir(xfs, '101')}' >> '${atPreRestart}' 2>&1; fi\nexit 0\n`,
    );
    const add = await cv(xfs, ['job', 'add', 'j1', '--store', xfs.storeDir, '--vmid', '101', '--hook', hook.script]);
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse((await cv(xfs, ['job', 'list', '--json'])).stdout)).toMatchObject([{ id: 'j1', snapshot: 'auto' }]); // the default

    const run = await runPausedAtRead(xfs, 'j1', () => xfs.driver!.status('101'));
    expect(run.code, run.out).toBe(0);
    expect(run.seen, 'QMP status when the disk read began').toBe('running');

    const log = (await cv(xfs, ['task', 'log', taskIdOf(run.out)])).stdout;
    expectInOrder(log, [
      'status = running',
      'stopping virtual guest',
      "cold snapshot of disk 'scsi0' (reflink): ",
      'status after snapshotting the disks = stopped',
      'restarting vm',
      'guest is online again',
      `now save file '${disk}' from its cold snapshot '${snapshotDir(xfs, '101')}/scsi0.run-`,
      'Finished Backup of VM 101',
      'Backup job finished successfully',
    ]);
    expect(timeOf(log, 'guest is online again')).toBeLessThanOrEqual(timeOf(log, `now save file '${disk}'`));
    expect(log).not.toMatch(/no cold snapshot|status after reading the disks|ERROR:/);
    expect(hookCalls(hook.log).map((c) => c.args)).toEqual(FLOW_HOOKS('101'));
    // the downtime: shutdown + snapshot + start, known when the manifest was written (after the read)
    expect(log).toMatch(/INFO: guest 101 was off for \d\d:\d\d:\d\d \(shutdown \d+\.\d+ s, snapshot \d\.\d\d s, start \d+\.\d+ s\)\n/);
    expect(lineIndex(log, 'guest 101 was off for')).toBeGreaterThan(lineIndex(log, `now save file '${disk}'`));
    const [v1] = (await versions(xfs, '101')) as Array<{ downtimeMs?: number | null }>;
    expect(v1?.downtimeMs).toBeGreaterThan(0);
    expect(v1?.downtimeMs).toBeLessThanOrEqual(timeOf(log, 'guest is online again') - timeOf(log, 'stopping virtual guest') + 1000);

    // at pre-restart the snapshot existed (run-<pid>-<boot>); now that the version is published it is
    // this datastore's base for the next backup, with its record
    const [hashLine = '', snapName = ''] = readFileSync(atPreRestart, 'utf8').trim().split('\n');
    const atShutdown = hashLine.split(' ')[0];
    expect(snapName).toMatch(/^scsi0\.run-\d+-[0-9a-f-]+$/);
    const base = `scsi0.base-${storeId(xfs)}`;
    expect(readdirSync(snapshotDir(xfs, '101')).sort()).toEqual([base, `${base}.base.json`]);
    expect(log).toContain(`disk 'scsi0': its cold snapshot is kept as the base of the next backup to this datastore ('${snapshotDir(xfs, '101')}/${base}')`);
    expect(statSync(snapshotDir(xfs, '101')).mode & 0o777).toBe(0o700);
    expect(statSync(join(snapshotDir(xfs, '101'), `${base}.base.json`)).mode & 0o777).toBe(0o600);

    // the guest booted again and wrote its marker to the disk after the restart
    await waitBooted(xfs, '101', 2);
    const token2 = markerOnConsole(serial(xfs, '101'), 2);
    expect(token2).toBeDefined();
    expect(token2).not.toBe(token1);
    expect(await readMarker(disk)).toEqual({ boot: 2, token: token2 });
    expect(sha256(disk)).not.toBe(atShutdown);

    // the version is the disk at shutdown, byte for byte: boot 1's marker, not boot 2's
    expect((await versions(xfs, '101')).map((v) => v.version)).toEqual([1]);
    const restore = await cv(xfs, ['restore', '101', '--version', '1', '--new-id', '901', '--store', xfs.storeDir]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(sha256(diskPath(xfs, '901'))).toBe(atShutdown);
    expect(await readMarker(diskPath(xfs, '901'))).toEqual({ boot: 1, token: token1 });

    // the next run compares the new snapshot with the base: only the chunks the guest wrote are read
    const baseInode = statSync(join(snapshotDir(xfs, '101'), base)).ino;
    const second = await cv(xfs, ['job', 'run', 'j1']);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const atSecondShutdown = readFileSync(atPreRestart, 'utf8').split(' ')[0];
    const changed = /disk 'scsi0': changed since the base \(version 1\): read (\S+ \S+), taken from the base (\S+ \S+) \((\d+) chunks?\)/.exec(second.stdout);
    expect(changed, second.stdout).not.toBeNull();
    expect(Number(changed?.[3])).toBeGreaterThanOrEqual(4); // at least the 4 chunks behind the file system were not read
    expect(second.stdout).not.toContain('reading every chunk');
    expect(readdirSync(snapshotDir(xfs, '101')).sort()).toEqual([base, `${base}.base.json`]);
    expect(statSync(join(snapshotDir(xfs, '101'), base)).ino).not.toBe(baseInode); // the new snapshot replaced the base
    const restore2 = await cv(xfs, ['restore', '101', '--version', '2', '--new-id', '902', '--store', xfs.storeDir]);
    expect(restore2.code, restore2.stderr).toBe(0);
    expect(sha256(diskPath(xfs, '902'))).toBe(atSecondShutdown);
    expect(await readMarker(diskPath(xfs, '902'))).toEqual({ boot: 2, token: token2 });
    expect((await cv(xfs, ['verify', '101', '--store', xfs.storeDir])).code).toBe(0);
  });

  it('ext4: no snapshot (one line says why); the guest is off for the read and started before the publish, hooks in the same order', async () => {
    const disk = await addTinyGuest(ext4, '201', 'db01');
    await bootGuest(ext4, '201');
    const atPostRestart = join(ext4.root, 'post-restart.txt');
    const hook = writeHook(ext4, 'hook-fallback.sh', `if [ "$1" = post-restart ]; then /bin/ls -A "$DUMPDIR/guests/201" > '${atPostRestart}'; fi\n`);
    expect((await cv(ext4, ['job', 'add', 'j2', '--store', ext4.storeDir, '--vmid', '201', '--hook', hook.script])).code).toBe(0);

    const run = await runPausedAtRead(ext4, 'j2', () => ext4.driver!.status('201'));
    expect(run.code, run.out).toBe(0);
    expect(run.seen, 'QMP status when the disk read began').toBe('stopped');
    const log = (await cv(ext4, ['task', 'log', taskIdOf(run.out)])).stdout;
    expectInOrder(log, [
      'stopping virtual guest',
      `no cold snapshot of guest 201: disk 'scsi0' ('${disk}'): its filesystem (ext4) refuses reflink clones`,
      `now save file '${disk}'`,
      'status after reading the disks = stopped',
      'restarting vm',
      'guest is online again',
      'Finished Backup of VM 201',
    ]);
    expect(log.split('\n').filter((l) => l.includes('cold snapshot'))).toHaveLength(1);
    expect(log).not.toContain('from its cold snapshot');
    expect(hookCalls(hook.log).map((c) => c.args)).toEqual(FLOW_HOOKS('201'));
    // the guest ran again before the version was published: only the staging folder existed then
    // (beside last-version, which records the number the run took)
    expect(
      readFileSync(atPostRestart, 'utf8')
        .trim()
        .split('\n')
        .filter((n) => n !== 'last-version'),
    ).toEqual([expect.stringMatching(/^\.staging-\S+$/)]);
    expect(existsSync(join(ext4.storageDir, '.coldvault-snapshots'))).toBe(false);
    expect(await ext4.driver!.status('201')).toBe('running');
    await waitBooted(ext4, '201', 2);
    const restore = await cv(ext4, ['restore', '201', '--version', '1', '--new-id', '921', '--store', ext4.storeDir]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(await readBootCount(diskPath(ext4, '921'))).toBe(1);
  });

  it('a disk that grew while the guest still ran (between planning and shutdown) is read whole', async () => {
    const disk = await addTinyGuest(ext4, '202', 'grow02');
    await bootGuest(ext4, '202');
    const atPreRestart = join(ext4.root, 'grown.sha256');
    // pre-stop runs after the backup was planned: the disk grows by 4 MiB (a resize while it runs)
    const hook = writeHook(
      ext4,
      'hook-grow.sh',
      `if [ "$1" = pre-stop ]; then /usr/bin/truncate -s +4M '${disk}'; fi\nif [ "$1" = pre-restart ]; then /usr/bin/sha256sum '${disk}' > '${atPreRestart}'; fi\n`,
    );
    expect((await cv(ext4, ['job', 'add', 'j3', '--store', ext4.storeDir, '--vmid', '202', '--hook', hook.script])).code).toBe(0);
    const run = await cv(ext4, ['job', 'run', 'j3']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(statSync(disk).size).toBe(20 * 1024 * 1024);
    const restore = await cv(ext4, ['restore', '202', '--version', '1', '--new-id', '922', '--store', ext4.storeDir]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(sha256(diskPath(ext4, '922'))).toBe(readFileSync(atPreRestart, 'utf8').split(' ')[0]);
  });

  it('kill -9 after the snapshot: the guest runs; the next run removes the leftover snapshot and succeeds', async () => {
    const disk = await addTinyGuest(xfs, '102', 'app02');
    await bootGuest(xfs, '102');
    const armed = join(xfs.root, 'kill-armed');
    writeFileSync(armed, '');
    // post-restart: snapshot made, guest started, nothing read yet; the hook's parent is coldvault
    const hook = writeHook(xfs, 'hook-kill.sh', `if [ "$1" = post-restart ] && [ -e '${armed}' ]; then kill -9 $PPID; fi\n`);
    expect((await cv(xfs, ['job', 'add', 'j4', '--store', xfs.storeDir, '--vmid', '102', '--hook', hook.script])).code).toBe(0);
    const killed = await runPausedAtRead(xfs, 'j4', () => Promise.resolve('read'));
    expect(killed.signal, killed.out).toBe('SIGKILL');
    expect(killed.seen).toBeUndefined(); // died before reading
    expect(await xfs.driver!.status('102')).toBe('running');
    const leftovers = readdirSync(snapshotDir(xfs, '102'));
    expect(leftovers).toHaveLength(1);
    expect(leftovers[0]).toMatch(/^scsi0\.run-\d+-[0-9a-f-]+$/);
    await waitBooted(xfs, '102', 2);

    rmSync(armed); // disarmed: the next run goes through
    const next = await cv(xfs, ['job', 'run', 'j4']);
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expectInOrder(next.stdout, [
      `WARN: removing the cold snapshot '${snapshotDir(xfs, '102')}/${leftovers[0]}' of guest 102: the run that made it (pid `,
      'Starting Backup of VM 102',
      "cold snapshot of disk 'scsi0' (reflink)",
      'Backup job finished successfully',
    ]);
    expect(next.stdout).not.toContain('did not finish; starting it again'); // the guest was running: nothing to recover
    expect(readdirSync(snapshotDir(xfs, '102')).sort()).toEqual([`scsi0.base-${storeId(xfs)}`, `scsi0.base-${storeId(xfs)}.base.json`]);
    expect((await versions(xfs, '102')).map((v) => v.version)).toEqual([1]);
    await waitBooted(xfs, '102', 3);
    expect(await readBootCount(disk)).toBe(3);
  });

  it('--snapshot off on XFS: the guest is off for the read and no snapshot is made', async () => {
    await addTinyGuest(xfs, '103', 'off03');
    await bootGuest(xfs, '103');
    const hook = writeHook(xfs, 'hook-off.sh');
    const add = await cv(xfs, ['job', 'add', 'j5', '--store', xfs.storeDir, '--vmid', '103', '--hook', hook.script, '--snapshot', 'off']);
    expect(add.code, add.stderr).toBe(0);
    expect(
      (JSON.parse((await cv(xfs, ['job', 'list', '--json'])).stdout) as Array<{ id: string; snapshot: string }>).find((j) => j.id === 'j5')?.snapshot,
    ).toBe('off');
    const run = await runPausedAtRead(xfs, 'j5', () => xfs.driver!.status('103'));
    expect(run.code, run.out).toBe(0);
    expect(run.seen).toBe('stopped');
    expect(run.out).not.toContain('cold snapshot');
    expectInOrder(run.out, [
      'stopping virtual guest',
      'now save file',
      'status after reading the disks = stopped',
      'restarting vm',
      'Finished Backup of VM 103',
    ]);
    expect(hookCalls(hook.log).map((c) => c.args)).toEqual(FLOW_HOOKS('103'));
    expect(existsSync(snapshotDir(xfs, '103'))).toBe(false);
    expect(await xfs.driver!.status('103')).toBe('running');
    const bad = await cv(xfs, ['job', 'edit', 'j5', '--snapshot', 'sometimes']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("snapshot: 'sometimes' must be auto or off");
  });
});
