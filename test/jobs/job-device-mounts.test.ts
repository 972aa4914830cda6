/**
 * What coldvault's mounts of an external disk guarantee to a job and a restore, on REAL loop devices
 * (root, as CI runs), through the real CLI:
 * - `restore --device` from an ext4 disk left with a journal to replay and an orphan inode, and from an
 *   xfs disk with a dirty log (both after `xfs_io -x -c shutdown`, as a power cut leaves them):
 *   restored byte-identical, and the disk image is byte-identical after (a mount that replayed the
 *   journal would have changed it: checked on a copy);
 * - a job whose target folder is a datastore in use is refused before any guest is touched, naming the
 *   folder and why: a folder holding another datastore, and one whose datastore lock is held by a live
 *   process; the disk and the folder are left as they were. A folder holding a copy of the disk's own
 *   datastore id, with no live lock, is mounted on.
 * Guests: driver 'none', generated disk images. Loop devices are made here and detached in afterAll.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockDir } from '../../src/datastore/index.js';
import { sha256File, writeImage } from '../helpers/fixtures.js';
import { imageHash, leaveDirty, Loops, mounted, replayWouldWrite, sh } from './helpers-devices.js';
import { cv, diskPath, makeJobLab, writeGuestConf, type JobLab } from './helpers-jobs.js';

describe("mounts of a job's or a restore's external disk (loop devices)", () => {
  let lab: JobLab;
  let loops: Loops;
  const mkfs = {
    ext4: (dev: string): void => void sh('mkfs.ext4', ['-q', '-F', dev]),
    xfs: (dev: string): void => void sh('mkfs.xfs', ['-q', '-f', dev]),
  };
  const idIn = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id;
  const restored = (vmid: string): string => sha256File(join(lab.storageDir, 'images', vmid, `vm-${vmid}-disk-0.raw`));

  beforeAll(async () => {
    lab = await makeJobLab('cv-jmnt-');
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-jmnt-loops-')));
    writeGuestConf(lab, '101', 'mnt01');
    mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
    writeImage(diskPath(lab, '101'), ['text', 'random', 'zero', 'random'], 17);
  });

  afterAll(async () => {
    await loops?.cleanup([join(lab.root, 'usb'), join(lab.root, 'local'), join(lab.root, 'copy')]);
    await lab?.cleanup();
  });

  it.each([
    ['ext4', '96M', '311'],
    ['xfs', '320M', '312'],
  ] as const)(
    'restore --device from a %s disk left with a journal to replay: restored byte-identical, the disk image byte-identical',
    async (fs, size, newId) => {
      const disk = loops.make(`dirty-${fs}`, size, mkfs[fs]);
      await leaveDirty(disk, loops.work, async (dir) => {
        expect((await cv(lab, ['datastore', 'init', dir])).code).toBe(0);
        const b = await cv(lab, ['backup', '101', '--store', dir]);
        expect(b.code, b.stderr).toBe(0);
      });
      expect(replayWouldWrite(disk, loops.work), 'the fixture: a mount that replays the journal writes to this disk').toBe(true);
      const before = imageHash(disk);
      const dir = join(lab.root, `restore-${fs}`);
      const r = await cv(lab, ['restore', '101', '--version', '1', '--new-id', newId, '--store', dir, '--device', `UUID=${disk.uuid}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(restored(newId)).toBe(sha256File(diskPath(lab, '101')));
      expect(imageHash(disk), 'the disk image after the restore').toBe(before);
      expect(await mounted(dir)).toBe(false);
      expect(r.stderr).toContain('without journal replay: the disk is not changed');
      if (fs === 'ext4') expect(r.stderr).toMatch(/was not cleanly unmounted: its journal holds changes that this read-only mount does not replay/);
    },
  );

  it('a job whose folder holds another datastore is refused before any guest is touched; disk and datastore untouched', async () => {
    const disk = loops.make('empty', '96M', mkfs.ext4);
    const folder = join(lab.root, 'local');
    expect((await cv(lab, ['datastore', 'init', folder])).code).toBe(0); // say, the host's local datastore
    const localId = idIn(folder);
    const filesBefore = readdirSync(folder).sort();
    const before = imageHash(disk);
    expect((await cv(lab, ['job', 'add', 'onlocal', '--store', folder, '--vmid', '101', '--device', `UUID=${disk.uuid}`, '--init-device'])).code).toBe(0);
    const run = await cv(lab, ['job', 'run', 'onlocal']);
    expect(run.code, run.stdout).toBe(1);
    expect(run.stdout).toContain(`'${folder}' holds datastore ${localId}, not the disk's (the disk holds none); mounting over it would hide that datastore`);
    expect(run.stdout).not.toContain('Starting Backup of VM 101');
    expect(await mounted(folder)).toBe(false);
    expect(imageHash(disk), 'the disk was looked at read-only').toBe(before);
    expect(readdirSync(folder).sort()).toEqual(filesBefore);
    expect(idIn(folder)).toBe(localId);
  });

  it("a job whose folder is a datastore in use (a live lock) is refused; without the lock, a folder holding the disk's own id is mounted on", async () => {
    const disk = loops.make('own', '96M', mkfs.ext4);
    const diskId = await loops.byHand(disk, async (dir) => {
      expect((await cv(lab, ['datastore', 'init', dir])).code).toBe(0);
      return idIn(dir);
    });
    const folder = join(lab.root, 'copy'); // a copy of the disk's datastore, left where the disk is mounted
    mkdirSync(folder);
    writeFileSync(
      join(folder, 'coldvault-datastore.json'),
      await loops.byHand(disk, (dir) => readFileSync(join(dir, 'coldvault-datastore.json'), 'utf8'), true),
    );
    expect((await cv(lab, ['job', 'add', 'oncopy', '--store', folder, '--vmid', '101', '--device', `UUID=${disk.uuid}`])).code).toBe(0);
    const lock = await new LockDir(join(folder, 'locks')).acquire('guest-101', 'a restore of guest 101');
    const before = imageHash(disk);
    try {
      const run = await cv(lab, ['job', 'run', 'oncopy']);
      expect(run.code, run.stdout).toBe(1);
      expect(run.stdout).toContain(
        `mounting device ${disk.path} on '${folder}' failed: '${folder}' is a datastore in use: its lock guest-101.lock is held by a restore of guest 101 (pid ${process.pid}`,
      );
      expect(run.stdout).not.toContain('Starting Backup of VM 101');
      expect(await mounted(folder)).toBe(false);
      expect(imageHash(disk)).toBe(before);
    } finally {
      await lock.release();
    }
    const run = await cv(lab, ['job', 'run', 'oncopy']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`job oncopy is now bound to datastore ${diskId}`);
    expect(await loops.byHand(disk, (dir) => readdirSync(join(dir, 'guests', '101')), true)).toContain('1');
    expect(await mounted(folder)).toBe(false);
  });
});
