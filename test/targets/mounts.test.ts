/**
 * How coldvault mounts an external disk, on REAL loop devices (root, as CI runs): ext4 and exFAT /
 * NTFS images of 64 MiB, xfs of 320 MiB (sparse files).
 * - every mount, read-write or read-only, is nosuid,nodev,noexec (in mountinfo, and a script on the
 *   disk cannot be run); exFAT and NTFS files are root's, 0600 / 0700;
 * - a read-only mount changes no byte of the disk, also when its journal has something to replay and
 *   an orphan inode to clean up (ext4) or its log is dirty (xfs), and the block device is read-only
 *   while it is mounted, its flag put back after;
 * - the mountpoint rule: no mount over a folder that is a datastore in use (a live lock under it) or
 *   that holds another datastore than the disk's; a stale lock does not count;
 * - discovery without probing mounts nothing (the kernel logs no mount of the filesystems).
 * Loop devices are made here and detached in afterAll; no other loop device is touched.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { LockDir } from '../../src/datastore/index.js';
import {
  journalNeedsReplay,
  listCandidates,
  mountDevice,
  mountsOfDevice,
  readMounts,
  resolveDevice,
  unmountDevice,
  type MountEntry,
} from '../../src/targets/index.js';
import { CLI } from '../helpers/fixtures.js';
import { imageHash, kernelMountsOf, leaveDirty, Loops, replayWouldWrite, sh, type Loop } from '../jobs/helpers-devices.js';

type Fs = 'ext4' | 'xfs' | 'exfat' | 'ntfs';
const FILESYSTEMS: Fs[] = ['ext4', 'xfs', 'exfat', 'ntfs'];
const MKFS: Record<Fs, (dev: string) => void> = {
  ext4: (dev) => void sh('mkfs.ext4', ['-q', '-F', dev]),
  xfs: (dev) => void sh('mkfs.xfs', ['-q', '-f', dev]),
  exfat: (dev) => void sh('mkfs.exfat', [dev]),
  ntfs: (dev) => void sh('mkfs.ntfs', ['-Q', '-F', dev]),
};
const SIZE: Record<Fs, string> = { ext4: '64M', xfs: '320M', exfat: '64M', ntfs: '64M' };

/** The options of the mount at `dir` from mountinfo (the mount's own, or its filesystem's), read here, not through src. */
function optionsAt(dir: string, which: 'mount' | 'super' = 'mount'): string[] {
  const line =
    readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4] === dir)
      .at(-1) ?? '';
  const [left = '', right = ''] = line.split(' - ');
  return (which === 'mount' ? (left.split(' ')[5] ?? '') : (right.split(' ')[2] ?? '')).split(',');
}

/** The kernel's read-only flag of a block device (sysfs). */
const bdevReadOnly = (path: string): boolean => readFileSync(`/sys/class/block/${basename(path)}/ro`, 'utf8').trim() === '1';

async function refused(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isColdvaultError(err, 'DEVICE_MOUNT_FAILED'), String(err)).toBe(true);
  return (err as Error).message;
}

const initDatastore = (dir: string): string => {
  sh('node', [CLI, 'datastore', 'init', dir]);
  return (JSON.parse(readFileSync(join(dir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id;
};

describe('mounts of external disks (loop devices, root)', () => {
  let loops: Loops;
  let work = '';
  const disk = {} as Record<Fs, Loop>;
  const dir = (name: string): string => join(work, name);

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'cv-mounts-'));
    loops = new Loops(work);
    for (const fs of FILESYSTEMS) disk[fs] = loops.make(fs, SIZE[fs], MKFS[fs]);
  });

  afterAll(async () => {
    for (const fs of FILESYSTEMS) if (disk[fs]) spawnSync('blockdev', ['--setrw', disk[fs].path]);
    await loops?.cleanup();
  });

  it.each(FILESYSTEMS)('%s: read-write and read-only mounts are nosuid,nodev,noexec; a script on the disk cannot be run', async (fs) => {
    const mnt = dir(`flags-${fs}`);
    await mountDevice(disk[fs].path, mnt);
    try {
      writeFileSync(join(mnt, 'run-me.sh'), '#!/bin/sh\necho ran\n');
      chmodSync(join(mnt, 'run-me.sh'), 0o755);
      expect(() => execFileSync(join(mnt, 'run-me.sh'))).toThrow(/EACCES/);
      expect(optionsAt(mnt)).toEqual(expect.arrayContaining(['rw', 'nosuid', 'nodev', 'noexec']));
    } finally {
      await unmountDevice(mnt);
    }
    await mountDevice(disk[fs].path, mnt, { readOnly: true });
    try {
      expect(() => execFileSync(join(mnt, 'run-me.sh'))).toThrow(/EACCES/);
      expect(optionsAt(mnt)).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev', 'noexec']));
    } finally {
      await unmountDevice(mnt);
    }
  });

  it.each(['exfat', 'ntfs'] as const)("%s: files and folders on the disk are root's and private (0600 / 0700), not 0777", async (fs) => {
    const mnt = dir(`modes-${fs}`);
    await mountDevice(disk[fs].path, mnt);
    try {
      mkdirSync(join(mnt, 'chunks'));
      writeFileSync(join(mnt, 'chunks', 'a'), 'x');
      for (const [path, mode] of [
        [mnt, 0o700],
        [join(mnt, 'chunks'), 0o700],
        [join(mnt, 'chunks', 'a'), 0o600],
      ] as const) {
        const st = statSync(path);
        expect({ path, mode: st.mode & 0o777, uid: st.uid, gid: st.gid }).toEqual({ path, mode, uid: 0, gid: 0 });
      }
    } finally {
      await unmountDevice(mnt);
    }
  });

  it('a read-only mount is without journal replay: ext4 noload (shown as norecovery), xfs norecovery', async () => {
    for (const fs of ['ext4', 'xfs'] as const) {
      const mnt = dir(`noreplay-${fs}`);
      await mountDevice(disk[fs].path, mnt, { readOnly: true });
      try {
        expect(optionsAt(mnt, 'super'), fs).toContain('norecovery');
      } finally {
        await unmountDevice(mnt);
      }
    }
  });

  it.each(['ext4', 'xfs'] as const)('%s with a journal to replay (power cut): a read-only mount reads it and changes no byte of the disk', async (fs) => {
    const loop = loops.make(`dirty-${fs}`, SIZE[fs], MKFS[fs]);
    await leaveDirty(loop, work, (d) => writeFileSync(join(d, 'data.txt'), `data on ${fs}\n`));
    expect(replayWouldWrite(loop, work), 'the fixture: a mount with replay writes to this disk').toBe(true);
    const before = imageHash(loop);
    const mnt = dir(`dirty-mnt-${fs}`);
    await mountDevice(loop.path, mnt, { readOnly: true });
    try {
      expect(readFileSync(join(mnt, 'data.txt'), 'utf8')).toBe(`data on ${fs}\n`);
    } finally {
      await unmountDevice(mnt);
    }
    expect(imageHash(loop), 'the disk image after the read-only mount').toBe(before);
    expect(await journalNeedsReplay(await resolveDevice(loop.path))).toBe(fs === 'ext4' ? true : undefined); // restores warn
  });

  it.each(['exfat', 'ntfs'] as const)('%s: a read-only mount changes no byte of the disk', async (fs) => {
    const mnt = dir(`ro-${fs}`);
    await mountDevice(disk[fs].path, mnt);
    writeFileSync(join(mnt, 'data.txt'), 'x');
    await unmountDevice(mnt);
    const before = imageHash(disk[fs]);
    await mountDevice(disk[fs].path, mnt, { readOnly: true });
    try {
      expect(readFileSync(join(mnt, 'data.txt'), 'utf8')).toBe('x');
    } finally {
      await unmountDevice(mnt);
    }
    expect(imageHash(disk[fs])).toBe(before);
  });

  it('the block device is read-only while mounted read-only, writable again after; one read-only before stays so, and is not mounted read-write', async () => {
    const { path } = disk.ext4;
    const mnt = dir('bdev-ro');
    expect(bdevReadOnly(path)).toBe(false);
    await mountDevice(path, mnt, { readOnly: true });
    try {
      expect(bdevReadOnly(path)).toBe(true);
    } finally {
      await unmountDevice(mnt);
    }
    expect(bdevReadOnly(path)).toBe(false);
    sh('blockdev', ['--setro', path]);
    try {
      await mountDevice(path, mnt, { readOnly: true });
      await unmountDevice(mnt);
      expect(bdevReadOnly(path)).toBe(true);
      const why = await refused(mountDevice(path, mnt));
      expect(why).toContain(`mounting ${path} read-write failed: the device is read-only`);
      expect(why).toContain(`blockdev --setrw ${path}`);
      expect(await mountsOfDevice(path)).toEqual([]);
    } finally {
      sh('blockdev', ['--setrw', path]);
    }
  });

  describe('the mountpoint rule', () => {
    let diskId = ''; // the datastore on the ext4 disk
    let diskIdentity = '';
    let ruleDisk: Loop;

    beforeAll(async () => {
      ruleDisk = loops.make('rule', SIZE.ext4, MKFS.ext4);
      await loops.byHand(ruleDisk, (d) => {
        diskId = initDatastore(d);
        diskIdentity = readFileSync(join(d, 'coldvault-datastore.json'), 'utf8');
      });
    });

    it('a folder holding another datastore is refused, naming the folder and both datastores; nothing is mounted', async () => {
      const folder = dir('other-store');
      const otherId = initDatastore(folder);
      const before = imageHash(ruleDisk);
      const why = await refused(mountDevice(ruleDisk.path, folder));
      expect(why).toContain(
        `mounting device ${ruleDisk.path} on '${folder}' failed: '${folder}' holds datastore ${otherId}, not the disk's (it holds ${diskId})`,
      );
      expect(await mountsOfDevice(ruleDisk.path)).toEqual([]);
      expect(imageHash(ruleDisk), 'the disk was looked at read-only').toBe(before);
      expect(await refused(mountDevice(disk.xfs.path, folder, { readOnly: true }))).toContain(
        `holds datastore ${otherId}, not the disk's (the disk holds none)`,
      );
    });

    it('a folder that is a datastore in use (a live lock, a running writer) is refused, naming the lock and its holder', async () => {
      const folder = dir('busy-store');
      mkdirSync(folder);
      writeFileSync(join(folder, 'coldvault-datastore.json'), diskIdentity); // a copy of the disk's own datastore
      const locks = new LockDir(join(folder, 'locks'));
      const lock = await locks.acquire('guest-101', 'a backup of guest 101');
      try {
        const why = await refused(mountDevice(ruleDisk.path, folder));
        expect(why).toContain(
          `'${folder}' is a datastore in use: its lock guest-101.lock is held by a backup of guest 101 (pid ${process.pid} on ${hostname()})`,
        );
      } finally {
        await lock.release();
      }
      const writer = await locks.registerWriter('a backup');
      try {
        expect(await refused(mountDevice(ruleDisk.path, folder, { readOnly: true }))).toMatch(
          /is a datastore in use: its lock writer-.*\.json is held by a backup/,
        );
      } finally {
        await writer.release();
      }
      expect(await mountsOfDevice(ruleDisk.path)).toEqual([]);
    });

    it("a stale lock (its process is gone) does not count, and a folder holding the disk's own datastore id may be mounted on", async () => {
      const folder = dir('busy-store'); // holds the disk's datastore id (previous test)
      const dead = spawnSync('true').pid;
      writeFileSync(join(folder, 'locks', 'guest-102.lock'), JSON.stringify({ pid: dead, host: hostname(), start: Date.now(), purpose: 'a crashed backup' }));
      await mountDevice(ruleDisk.path, folder, { readOnly: true });
      try {
        await expect(mountsOfDevice(ruleDisk.path)).resolves.toEqual([folder]);
        expect(await refused(mountDevice(disk.exfat.path, folder))).toContain(`'${folder}' is already a mountpoint (of ${ruleDisk.path})`);
      } finally {
        await unmountDevice(folder);
      }
    });

    it('an empty folder (or a missing one) is fine', async () => {
      for (const folder of [dir('fresh-missing'), mkdtempSync(join(work, 'fresh-'))]) {
        await mountDevice(ruleDisk.path, folder, { readOnly: true });
        await unmountDevice(folder);
      }
    });
  });

  it('listing the candidate devices mounts nothing (mountinfo unchanged, and the kernel logged no mount of them)', async () => {
    const ours = FILESYSTEMS.map((fs) => disk[fs].path);
    const mountinfo = async (): Promise<MountEntry[]> =>
      (await readMounts()).filter((m) => ours.includes(m.source) || m.mountpoint.includes('coldvault-probe-'));
    const before = await mountinfo();
    const logged = { ext4: kernelMountsOf(disk.ext4.uuid), xfs: kernelMountsOf(disk.xfs.uuid) };
    const listed = await listCandidates({ all: true });
    expect(listed.map((d) => d.path)).toEqual(expect.arrayContaining(FILESYSTEMS.map((fs) => disk[fs].path)));
    expect(listed.find((d) => d.path === disk.ext4.path)).not.toHaveProperty('datastore');
    expect(await mountinfo()).toEqual(before); // other tests mount and unmount meanwhile: only ours are compared
    expect({ ext4: kernelMountsOf(disk.ext4.uuid), xfs: kernelMountsOf(disk.xfs.uuid) }).toEqual(logged);
  });
});
