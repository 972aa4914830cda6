/**
 * Cold snapshots without a hypervisor, on real XFS (reflink=1) and ext4 loop devices:
 * - leftovers: `run-<pid>-<boot>` snapshots of dead runs (pid gone, or another boot) are removed and
 *   logged, by every job run's first step (removeLeftoverSnapshots) and by `coldvault serve` at start;
 *   those of live runs and bases are kept;
 * - `coldvault backup --snapshot auto|off`: auto reads the disks' snapshots on XFS, keeps each as the
 *   datastore's base once the version is published, and the next backup reads only the chunks written
 *   since; a run that fails removes its snapshots and leaves the base as it was; auto falls back, with
 *   one line, on ext4; off reads the disks; anything else is refused; it removes dead runs' leftovers;
 *   a qcow2 file is snapshotted and compared as stored, like a raw one.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskLog, type ColdSnapshot, type SnapshotSource } from '../../src/core/index.js';
import { thisBoot } from '../../src/datastore/index.js';
import { ReflinkProvider } from '../../src/guests/snapshots/index.js';
import { removeLeftoverSnapshots, snapshotGuestDisks } from '../../src/jobs/index.js';
import { CLI } from '../helpers/fixtures.js';
import { mountFs, type MountedFs } from '../helpers/snapshot-fs.js';
import { cv, diskPath, makeJobLab, sleep, waitFor, writeGuestConf, type JobLab } from './helpers-jobs.js';

const MiB = 1024 * 1024;
let xfs: JobLab;
let ext4: JobLab;
const mounts: MountedFs[] = [];

async function labOn(kind: 'xfs' | 'ext4', prefix: string): Promise<JobLab> {
  const lab = await makeJobLab(prefix); // hypervisor 'none'
  mounts.push(mountFs(kind, lab.root, lab.storageDir));
  mkdirSync(join(lab.storageDir, 'images'));
  const init = await cv(lab, ['datastore', 'init', lab.storeDir]);
  if (init.code !== 0) throw new Error(init.stderr);
  return lab;
}

beforeAll(async () => {
  xfs = await labOn('xfs', 'cv-csx-');
  ext4 = await labOn('ext4', 'cv-cse-');
});

afterAll(async () => {
  for (const m of mounts.reverse()) m.cleanup();
  for (const lab of [xfs, ext4]) await lab?.cleanup();
});

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A guest `<vmid>.conf` whose scsi0 is a disk of random bytes in the lab's storage. */
function addGuest(lab: JobLab, vmid: string, bytes = 8 * MiB): SnapshotSource {
  mkdirSync(join(lab.storageDir, 'images', vmid), { recursive: true });
  writeFileSync(diskPath(lab, vmid), randomBytes(bytes));
  writeGuestConf(lab, vmid, `g${vmid}`);
  return { guestId: vmid, key: 'scsi0', path: diskPath(lab, vmid) };
}

/** A pid that certainly belonged to a process that is gone. */
function deadPid(): number {
  const r = spawnSync('/bin/true');
  return r.pid ?? 999_999;
}

const storeId = (lab: JobLab): string => (JSON.parse(readFileSync(join(lab.storeDir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id;
const names = (lab: JobLab, vmid: string): string[] => readdirSync(join(lab.storageDir, '.coldvault-snapshots', vmid)).sort();

describe('leftover cold snapshots', () => {
  it('removes run- snapshots of dead processes and of other boots; keeps those of live runs and bases', async () => {
    const provider = new ReflinkProvider({ storageDirs: [xfs.storageDir] });
    const disk = addGuest(xfs, '101');
    const dead = deadPid();
    const made: ColdSnapshot[] = [];
    for (const tag of [`run-${dead}-${thisBoot}`, `run-${process.pid}-${thisBoot}`, `run-${process.pid}-${randomUUID()}`, 'base-store1']) {
      made.push(await provider.create(disk, tag));
    }
    const log = createTaskLog();
    expect(await removeLeftoverSnapshots({ guestsDir: xfs.guestsDir, storages: { local: xfs.storageDir } }, log)).toBe(2);
    expect(names(xfs, '101')).toEqual([`scsi0.base-store1`, `scsi0.run-${process.pid}-${thisBoot}`].sort());
    const warned = log.lines.filter((l) => l.level === 'WARN').map((l) => l.message);
    expect(warned).toHaveLength(2);
    expect(warned.find((m) => m.includes(made[0]!.snapshotPath))).toMatch(
      new RegExp(`of guest 101: the run that made it \\(pid ${dead}, boot .*\\) did not finish`),
    );
    expect(warned.some((m) => m.includes(made[2]!.snapshotPath))).toBe(true);
    expect(log.lines.filter((l) => l.level === 'ERROR')).toEqual([]);
    // a second pass finds nothing
    expect(await removeLeftoverSnapshots({ guestsDir: xfs.guestsDir, storages: { local: xfs.storageDir } }, createTaskLog())).toBe(0);
    for (const s of made) await provider.remove(s);
  });

  it('`coldvault serve` removes them at start and logs it in a recovery task', async () => {
    const provider = new ReflinkProvider({ storageDirs: [xfs.storageDir] });
    const disk = addGuest(xfs, '102');
    const leftover = await provider.create(disk, `run-${deadPid()}-${thisBoot}`);
    const serve = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', '--config', xfs.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    serve.stdout.on('data', (d: Buffer) => (out += d.toString()));
    serve.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => serve.on('exit', (code) => resolve(code)));
    try {
      expect(await waitFor(() => out.includes('web UI and API on'), 60_000), out).toBe(true);
      expect(out).toContain(`WARN: removing the cold snapshot '${leftover.snapshotPath}' of guest 102: the run that made it`);
      expect(existsSync(leftover.snapshotPath)).toBe(false);
    } finally {
      serve.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
    }
    const tasks = JSON.parse((await cv(xfs, ['task', 'list', '--json'])).stdout) as Array<{ type: string; status: string; summary: string }>;
    expect(tasks.filter((t) => t.type === 'recovery')).toEqual([
      expect.objectContaining({ status: 'ok', summary: 'remove cold snapshots left by an interrupted run' }),
    ]);
  });
});

describe('coldvault backup --snapshot', () => {
  it('auto on XFS reads the snapshot and keeps it as the base; the next backup reads what changed; off reads the disk; a bad value is refused', async () => {
    const disk = addGuest(xfs, '111');
    const auto = await cv(xfs, ['backup', '111', '--store', xfs.storeDir]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).toContain(`cold snapshot of disk 'scsi0' (reflink): '${join(xfs.storageDir, '.coldvault-snapshots', '111')}/scsi0.run-`);
    expect(auto.stderr).toContain(`now save file '${disk.path}' from its cold snapshot`);
    const base = `scsi0.base-${storeId(xfs)}`;
    expect(names(xfs, '111')).toEqual([base, `${base}.base.json`]);
    const restored = await cv(xfs, ['restore', '111', '--version', '1', '--new-id', '811', '--store', xfs.storeDir]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(sha256(diskPath(xfs, '811'))).toBe(sha256(disk.path));

    // 4 KiB rewritten in the second 4 MiB chunk: that chunk is read, the first is taken from the base
    const fd = openSync(disk.path, 'r+');
    writeSync(fd, randomBytes(4096), 0, 4096, 5 * MiB);
    closeSync(fd);
    const nightly = await cv(xfs, ['backup', '111', '--store', xfs.storeDir, '--json']);
    expect(nightly.code, nightly.stderr).toBe(0);
    expect(JSON.parse(nightly.stdout)).toMatchObject([{ version: 2, reads: [{ key: 'scsi0', fileReadBytes: 4 * MiB, baseBytes: 4 * MiB, baseVersion: 1 }] }]);
    expect(nightly.stderr).toContain("disk 'scsi0': changed since the base (version 1): read 4.00 MiB, taken from the base 4.00 MiB (1 chunk)");
    const restored2 = await cv(xfs, ['restore', '111', '--version', '2', '--new-id', '812', '--store', xfs.storeDir]);
    expect(restored2.code, restored2.stderr).toBe(0);
    expect(sha256(diskPath(xfs, '812'))).toBe(sha256(disk.path));

    const off = await cv(xfs, ['backup', '111', '--store', xfs.storeDir, '--snapshot', 'off']);
    expect(off.code, off.stderr).toBe(0);
    expect(off.stderr).not.toContain('cold snapshot');
    expect(off.stderr).toContain(`now save file '${disk.path}'`);

    const bad = await cv(xfs, ['backup', '111', '--store', xfs.storeDir, '--snapshot', 'always']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("--snapshot 'always': expected auto or off");
  });

  it('auto on ext4 falls back with one line saying why, and backs the disk up', async () => {
    const disk = addGuest(ext4, '121');
    const run = await cv(ext4, ['backup', '121', '--store', ext4.storeDir]);
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stderr.split('\n').filter((l) => l.includes('cold snapshot'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`no cold snapshot of guest 121: disk 'scsi0' ('${disk.path}'): its filesystem (ext4) refuses reflink clones`);
    expect(existsSync(join(ext4.storageDir, '.coldvault-snapshots'))).toBe(false);
    const restored = await cv(ext4, ['restore', '121', '--version', '1', '--new-id', '821', '--store', ext4.storeDir]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(sha256(diskPath(ext4, '821'))).toBe(sha256(disk.path));
  });

  it('a qcow2 disk: its snapshot is read as stored, the nightly reads only the chunks of the file the guest wrote, and restores give the file back', async () => {
    const dir = join(xfs.storageDir, 'images', '151');
    const qcow2 = join(dir, 'vm-151-disk-0.qcow2');
    mkdirSync(dir, { recursive: true });
    const qemu = (cmd: string, args: string[]): void => {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
    };
    qemu('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '64M']);
    qemu('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 0 24M', qcow2]); // clusters allocated in order: about 24 MiB of file
    writeGuestConf(xfs, '151', 'g151');
    const conf = join(xfs.guestsDir, '151.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('vm-151-disk-0.raw,size=16M', 'vm-151-disk-0.qcow2,size=64M'));
    const first = await cv(xfs, ['backup', '151', '--store', xfs.storeDir, '--json']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`now save file '${qcow2}' from its cold snapshot`);
    const fileSize = statSync(qcow2).size;
    expect(JSON.parse(first.stdout)).toMatchObject([{ version: 1, reads: [{ key: 'scsi0', baseBytes: 0 }] }]);

    // the guest's write of 64 KiB at 10 MiB lands in an allocated cluster: rewritten in place in the file
    qemu('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x33 10M 64k', qcow2]);
    expect(statSync(qcow2).size).toBe(fileSize);
    const nightly = await cv(xfs, ['backup', '151', '--store', xfs.storeDir, '--json']);
    expect(nightly.code, nightly.stderr).toBe(0);
    const reads = (JSON.parse(nightly.stdout) as Array<{ reads: Array<{ fileReadBytes: number; baseBytes: number; baseVersion: number }> }>)[0]?.reads ?? [];
    expect(reads[0]?.baseVersion).toBe(1);
    expect(reads[0]?.fileReadBytes).toBe(4 * MiB); // the one 4 MiB chunk of the file holding that cluster
    expect((reads[0]?.fileReadBytes ?? 0) + (reads[0]?.baseBytes ?? 0)).toBeLessThanOrEqual(fileSize);
    const restored = await cv(xfs, ['restore', '151', '--version', '2', '--new-id', '851', '--store', xfs.storeDir]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(sha256(join(xfs.storageDir, 'images', '851', 'vm-851-disk-0.qcow2'))).toBe(sha256(qcow2));
    qemu('qemu-img', ['compare', '-q', qcow2, join(xfs.storageDir, 'images', '851', 'vm-851-disk-0.qcow2')]);
  });

  it('coldvault backup removes the snapshots a dead run left before it makes its own', async () => {
    const disk = addGuest(xfs, '141');
    const leftover = await new ReflinkProvider({ storageDirs: [xfs.storageDir] }).create(disk, `run-${deadPid()}-${thisBoot}`);
    const run = await cv(xfs, ['backup', '141', '--store', xfs.storeDir]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`WARN: removing the cold snapshot '${leftover.snapshotPath}' of guest 141: the run that made it (pid `);
    expect(names(xfs, '141')).toEqual([`scsi0.base-${storeId(xfs)}`, `scsi0.base-${storeId(xfs)}.base.json`]);
  });

  it('a run that fails before its publish removes its snapshots and leaves the base and its record as they were', async () => {
    const disk = addGuest(xfs, '131');
    expect((await cv(xfs, ['backup', '131', '--store', xfs.storeDir])).code).toBe(0);
    const base = join(xfs.storageDir, '.coldvault-snapshots', '131', `scsi0.base-${storeId(xfs)}`);
    const [inode, record] = [statSync(base).ino, readFileSync(`${base}.base.json`, 'utf8')];
    const lines: string[] = [];
    const log = createTaskLog((l) => lines.push(l.message));
    const run = await snapshotGuestDisks('131', [{ key: 'scsi0', path: disk.path }], { local: xfs.storageDir }, log);
    expect(run?.snapshots).toHaveLength(1);
    const plans = await run?.readPlans(storeId(xfs));
    expect(plans?.get('scsi0')).toEqual({ readPath: run?.snapshots[0]?.snapshotPath, base: { snapshotPath: base } });
    await run?.settleAfterRun(false, log, { datastoreId: storeId(xfs), reads: [] });
    expect(names(xfs, '131')).toEqual([`scsi0.base-${storeId(xfs)}`, `scsi0.base-${storeId(xfs)}.base.json`]);
    expect(statSync(base).ino).toBe(inode);
    expect(readFileSync(`${base}.base.json`, 'utf8')).toBe(record);
    expect(lines.filter((l) => l.includes('kept as the base'))).toEqual([]);
  });
});
