/**
 * Helpers for the external-device job tests on REAL loop devices (root): loop devices made and always
 * cleaned up, a disk mounted by hand, a loop device "unplugged" (its size limit cut, as on a live
 * device), a tiny guest's disk filled with incompressible data, a `job run` paused mid-backup to
 * inject a fault, and what a consistent datastore looks like.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { expect } from 'vitest';
import { readMounts } from '../../src/targets/index.js';
import { sha256File, spawnCli } from '../helpers/fixtures.js';
import { makeGuestDisk } from '../helpers/tiny-guest.js';
import { cv, sleep, waitFor, type JobLab } from './helpers-jobs.js';

export const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
export const MiB = 1024 * 1024;

export interface Loop {
  path: string;
  uuid: string;
  img: string;
}

export const mounted = async (dir: string): Promise<boolean> => (await readMounts()).some((m) => m.mountpoint === dir);

/** Sets a loop device's size limit in bytes (0: the whole backing file), as on a live device. */
const LOOP_SIZE_PY = `import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
buf = bytearray(232)  # struct loop_info64
fcntl.ioctl(fd, 0x4C05, buf)  # LOOP_GET_STATUS64
struct.pack_into('<Q', buf, 32, int(sys.argv[2]))  # lo_sizelimit
fcntl.ioctl(fd, 0x4C04, buf)  # LOOP_SET_STATUS64
os.close(fd)
`;

/** Loop devices on sparse files in `work`; cleanup() unmounts what is mounted under `work` or `extra` and detaches them. */
export class Loops {
  readonly all: Loop[] = [];
  private readonly sizePy: string;

  constructor(readonly work: string) {
    this.sizePy = join(work, 'loop-size.py');
    writeFileSync(this.sizePy, LOOP_SIZE_PY);
  }

  /** A loop device of `size` (truncate syntax) formatted by `mkfs` (none: left as it is). */
  make(name: string, size: string, mkfs?: (dev: string) => void): Loop {
    const img = join(this.work, `${name}.img`);
    sh('truncate', ['-s', size, img]);
    const loop: Loop = { path: sh('losetup', ['--find', '--show', img]), img, uuid: '' };
    this.all.push(loop); // at once: cleanup detaches it whatever fails next
    if (mkfs) {
      mkfs(loop.path);
      loop.uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', '-p', loop.path]);
    }
    return loop;
  }

  /** "Unplugs" (1 MiB: every I/O beyond fails) or "re-plugs" (0) a live loop device. */
  setLimit(loop: Loop, bytes: number): void {
    sh('python3', [this.sizePy, loop.path, String(bytes)]);
  }

  /** Mounts the disk by hand in `work`, runs `fn` on the mountpoint, unmounts. */
  async byHand<T>(loop: Loop, fn: (dir: string) => Promise<T> | T, readOnly = false): Promise<T> {
    const dir = join(this.work, `hand-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(dir);
    sh('mount', [...(readOnly ? ['-o', 'ro'] : []), loop.path, dir]);
    try {
      return await fn(dir);
    } finally {
      sh('umount', [dir]);
    }
  }

  async cleanup(extraMountpoints: string[] = []): Promise<void> {
    for (const l of this.all) spawnSync('python3', [this.sizePy, l.path, '0']);
    const ours = (await readMounts()).filter((m) => m.mountpoint.startsWith(this.work) || extraMountpoints.includes(m.mountpoint));
    for (const m of ours.reverse()) spawnSync('umount', ['-l', m.mountpoint]);
    for (const l of this.all) spawnSync('losetup', ['-d', l.path]);
    rmSync(this.work, { recursive: true, force: true });
  }
}

/** The disk image's bytes, as hashed: to show a refused disk was not written to (not even a mount count). */
export const imageHash = (loop: Loop): string => sha256File(loop.img);

/** Remakes a tiny guest's disk (ext4) at `sizeMiB` holding a file of `randomMiB` incompressible bytes. */
export async function fillGuestDisk(disk: string, sizeMiB: number, randomMiB: number, work: string): Promise<void> {
  await makeGuestDisk(disk, sizeMiB);
  const tmp = join(work, `random-${basename(disk)}`);
  const fd = openSync(tmp, 'w');
  try {
    for (let off = 0; off < randomMiB * MiB; off += 4 * MiB) writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, off);
  } finally {
    closeSync(fd);
  }
  sh('debugfs', ['-w', '-R', `write ${tmp} filler.bin`, disk]);
  rmSync(tmp);
}

export interface FaultRun {
  code: number | null;
  out: string;
  /** the fault was injected while the version was staged (the disk being written), not before or after */
  midBackup: boolean;
}

const stagedOn = (store: string, vmid: string): boolean =>
  existsSync(join(store, 'guests', vmid)) && readdirSync(join(store, 'guests', vmid)).some((n) => n.startsWith('.staging-'));

/** True once a task log written since `before` shows the guest's disk image being saved. */
function savingDisk(tasksDir: string, before: Set<string>): boolean {
  if (!existsSync(tasksDir)) return false;
  return readdirSync(tasksDir)
    .filter((n) => !before.has(n))
    .some((f) => /now save file '[^']*\.raw'/.test(readFileSync(join(tasksDir, f), 'utf8')));
}

/**
 * Spawns `job run <id>`; once its task log shows the guest's disk being saved, pauses the process
 * (SIGSTOP), notes whether the version is staged on `store`, runs `fault`, resumes it (SIGCONT).
 */
export async function runWithFault(lab: JobLab, job: { id: string; store: string; vmid: string }, fault: () => void, children: number[]): Promise<FaultRun> {
  const tasksDir = join(lab.stateDir, 'tasks');
  const before = new Set(existsSync(tasksDir) ? readdirSync(tasksDir) : []);
  const child = spawnCli(['job', 'run', job.id, '--config', lab.configPath]);
  children.push(child.pid!);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let done = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  void exited.then(() => (done = true));
  let midBackup = false;
  if ((await waitFor(() => done || savingDisk(tasksDir, before), 90_000, 5)) && !done) {
    process.kill(child.pid!, 'SIGSTOP');
    try {
      midBackup = stagedOn(job.store, job.vmid);
      fault();
    } finally {
      process.kill(child.pid!, 'SIGCONT');
    }
  }
  const code = await Promise.race([exited, sleep(120_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    throw new Error(`job run ${job.id} did not end within 120 s:\n${out}`);
  }
  return { code, out, midBackup };
}

/** A consistent store: verify clean, exactly `expected` versions of the guest, no staging folder left (unless allowed). */
export async function checkStore(lab: JobLab, dir: string, vmid: string, expected: number[], stagingMayRemain = false): Promise<void> {
  const verify = await cv(lab, ['verify', '--store', dir]);
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  const list = await cv(lab, ['list', vmid, '--store', dir, '--json']);
  expect(list.code, list.stderr).toBe(0);
  expect((JSON.parse(list.stdout) as Array<{ version: number }>).map((v) => v.version).sort((a, b) => a - b)).toEqual(expected);
  const names = existsSync(join(dir, 'guests', vmid)) ? readdirSync(join(dir, 'guests', vmid)) : [];
  // a staging folder is never a version; after an unplug the engine could not remove it (the disk
  // was gone): the next run on the disk cleans it up (a dead writer's staging)
  if (!stagingMayRemain) expect(names.filter((n) => n.startsWith('.staging-'))).toEqual([]);
  expect(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b),
  ).toEqual(expected);
}

/**
 * Leaves an ext4 or xfs disk as a power cut does: mounted read-write by hand, `fill(dir)` runs, all is
 * checkpointed (freeze, thaw: what `fill` wrote is in place without the journal), then a file is
 * written and one kept open is unlinked (an orphan inode), synced into the journal, and the
 * filesystem is shut down without flushing its log (`xfs_io -x -c shutdown`). A mount that replays
 * the journal (or, on ext4, cleans up orphans) then writes to the disk.
 */
export async function leaveDirty(loop: Loop, work: string, fill: (dir: string) => Promise<void> | void = () => undefined): Promise<void> {
  const dir = join(work, `dirty-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  sh('mount', [loop.path, dir]);
  let fd: number | undefined;
  try {
    await fill(dir);
    sh('fsfreeze', ['-f', dir]);
    sh('fsfreeze', ['-u', dir]);
    writeFileSync(join(dir, 'after-checkpoint.txt'), 'only in the journal\n');
    fd = openSync(join(dir, 'orphan.txt'), 'w');
    writeSync(fd, 'open while unlinked\n');
    rmSync(join(dir, 'orphan.txt'));
    sh('sync', ['-f', dir]);
    sh('xfs_io', ['-x', '-c', 'shutdown', dir]); // no log flush: as a power cut
  } finally {
    if (fd !== undefined) closeSync(fd);
    sh('umount', [dir]);
  }
}

/** Whether a mount that replays the journal would change the disk: mounts a copy of its image so (read-only, as `mount -o ro` does). */
export function replayWouldWrite(loop: Loop, work: string): boolean {
  const copy = join(work, `replay-${basename(loop.img)}`);
  sh('cp', ['--sparse=always', loop.img, copy]);
  const before = sha256File(copy);
  const dev = sh('losetup', ['--find', '--show', copy]);
  const dir = join(work, `replay-${Math.random().toString(36).slice(2, 8)}`);
  try {
    mkdirSync(dir);
    sh('mount', ['-o', 'ro', dev, dir]);
    sh('umount', [dir]);
  } finally {
    sh('losetup', ['-d', dev]);
  }
  const after = sha256File(copy);
  rmSync(copy);
  return after !== before;
}

/** How often the kernel logged a mount of the filesystem with this UUID (ext4: "mounted filesystem", xfs: "Mounting V5 Filesystem"). */
export function kernelMountsOf(uuid: string): number {
  const pattern = new RegExp(`(mounted filesystem|Mounting V5 filesystem) ${uuid}`, 'i');
  return sh('dmesg', [])
    .split('\n')
    .filter((l) => pattern.test(l)).length;
}
