/**
 * A job's external device, on REAL loop devices with ext4 (as root, as CI runs): the disk named by
 * UUID= is mounted on the job's target dir for the run and unmounted after; an empty disk is
 * initialised only with --init-device and binds the job to its datastore; a wrong disk (another
 * datastore) or an empty one without --init-device is refused without writing to it (a refused disk
 * was only mounted read-only: its image stays byte-identical); a missing disk fails the job before
 * any guest is touched. Guests: driver 'none', generated disk images.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMounts } from '../../src/targets/index.js';
import { sha256File, writeImage } from '../helpers/fixtures.js';
import { imageHash, Loops, mounted, type Loop } from './helpers-devices.js';
import { cv, diskPath, makeJobLab, part, startSmtpSink, subjectOf, writeGuestConf, type JobLab } from './helpers-jobs.js';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

describe('job with an external device (loop devices, ext4)', () => {
  let lab: JobLab;
  let sink: Awaited<ReturnType<typeof startSmtpSink>>;
  let work = '';
  const loops: Loop[] = [];
  let mnt = '';

  /** Looks into a disk: mounts it read-only elsewhere, lists a folder, unmounts. */
  const look = (loop: Loop, sub: string): string[] => {
    const dir = join(work, `look-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(dir);
    sh('mount', ['-o', 'ro', loop.path, dir]);
    try {
      return existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)) : [];
    } finally {
      sh('umount', [dir]);
    }
  };

  beforeAll(async () => {
    sink = await startSmtpSink();
    lab = await makeJobLab('cv-jdev-', {
      mail: { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@pve.example.com' },
    });
    work = mkdtempSync(join(tmpdir(), 'cv-jdev-loops-'));
    for (const name of ['a', 'b', 'c']) {
      const img = join(work, `${name}.img`);
      sh('truncate', ['-s', '96M', img]);
      const path = sh('losetup', ['--find', '--show', img]);
      loops.push({ path, img, uuid: '' });
      sh('mkfs.ext4', ['-q', '-F', '-L', `cvjob${name}`, path]);
      loops[loops.length - 1]!.uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', '-p', path]);
    }
    // disk b already holds another datastore
    const dir = join(work, 'init-b');
    mkdirSync(dir);
    sh('mount', [loops[1]!.path, dir]);
    await cv(lab, ['datastore', 'init', dir]);
    sh('umount', [dir]);
    writeGuestConf(lab, '101', 'usb01');
    mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
    writeImage(diskPath(lab, '101'), ['text', 'zero', 'random', 'text'], 7);
    mnt = join(lab.root, 'usb');
  });

  afterAll(async () => {
    for (const m of (await readMounts()).filter((x) => x.mountpoint.startsWith(work) || x.mountpoint === mnt)) sh('umount', ['-l', m.mountpoint]);
    for (const l of loops) sh('losetup', ['-d', l.path]);
    rmSync(work, { recursive: true, force: true });
    await lab?.cleanup();
    await sink?.close();
  });

  it('an empty disk without --init-device is refused and stays empty (byte-identical)', async () => {
    const before = sha256File(loops[0]!.img);
    const add = await cv(lab, [
      'job',
      'add',
      'usb',
      '--store',
      mnt,
      '--vmid',
      '101',
      '--device',
      `UUID=${loops[0]!.uuid}`,
      '--mailto',
      'admin@example.com',
      '--mail-notification',
      'failure',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const run = await cv(lab, ['job', 'run', 'usb']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/holds no coldvault datastore; nothing was written to it/);
    expect(run.stdout).not.toContain('Starting Backup of VM 101');
    expect(await mounted(mnt)).toBe(false);
    expect(sha256File(loops[0]!.img), 'looked at read-only: not even a mount count written').toBe(before);
    expect(look(loops[0]!, '.').filter((n) => n !== 'lost+found')).toEqual([]);
  });

  it('with --init-device the disk is initialised, bound, backed up to, and unmounted after', async () => {
    expect((await cv(lab, ['job', 'edit', 'usb', '--init-device'])).code).toBe(0);
    const run = await cv(lab, ['job', 'run', 'usb']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/initialised datastore [0-9a-f-]+ on the empty disk/);
    expect(run.stdout).toMatch(/is now bound to datastore/);
    expect(run.stdout).toMatch(/the disk may now be removed/);
    expect(await mounted(mnt)).toBe(false);
    expect(look(loops[0]!, 'guests/101')).toContain('1');
    const again = await cv(lab, ['job', 'run', 'usb']);
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).not.toMatch(/is now bound/);
    expect(look(loops[0]!, 'guests/101')).toEqual(expect.arrayContaining(['1', '2']));
  });

  it('restore --device mounts the disk read-only for the restore and unmounts it after', async () => {
    const dir = join(lab.root, 'usb-restore');
    const r = await cv(lab, ['restore', '101', '--version', '1', '--new-id', '301', '--store', dir, '--device', `UUID=${loops[0]!.uuid}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/read-only/);
    expect(r.stderr).toContain('restore successful');
    expect(await mounted(dir)).toBe(false);
    expect(sha256File(join(lab.storageDir, 'images', '301', 'vm-301-disk-0.raw'))).toBe(sha256File(diskPath(lab, '101')));
  });

  it("another datastore's disk is refused without writing to it", async () => {
    expect((await cv(lab, ['job', 'edit', 'usb', '--device', `UUID=${loops[1]!.uuid}`])).code).toBe(0);
    const run = await cv(lab, ['job', 'run', 'usb']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/holds datastore [0-9a-f-]+, not the expected datastore [0-9a-f-]+; nothing was written to it/);
    expect(run.stdout).not.toContain('Starting Backup of VM 101');
    expect(await mounted(mnt)).toBe(false);
    expect(look(loops[1]!, 'guests')).toEqual([]);
  });

  it("a failed job whose disk cannot be unmounted reports the job's own error and logs the unmount failure", async () => {
    // the script before the guests keeps the mounted disk busy (a process whose cwd is on it) and fails
    const script = join(work, 'busy-and-fail.sh');
    writeFileSync(script, `#!/bin/sh\n(cd '${mnt}' && exec sleep 3) >/dev/null 2>&1 &\necho "script before: failing on purpose"\nexit 7\n`, { mode: 0o755 });
    expect((await cv(lab, ['job', 'edit', 'usb', '--device', `UUID=${loops[0]!.uuid}`, '--script-before', script])).code).toBe(0);
    try {
      const run = await cv(lab, ['job', 'run', 'usb']);
      expect(run.code).toBe(1);
      expect(run.stdout).toMatch(/unmounting the external disk failed too: .*failed after 5 attempts/);
      expect(run.stdout).toMatch(/script before: failing on purpose/);
      expect(
        run.stdout
          .split('\n')
          .filter((l) => /Backup job failed/.test(l))
          .join('\n'),
      ).toMatch(/exit code 7|exited with 7|code 7/);
    } finally {
      await new Promise((r) => setTimeout(r, 3500)); // the busy process ends
      if (await mounted(mnt)) sh('umount', [mnt]);
      expect((await cv(lab, ['job', 'edit', 'usb', '--script-before', ''])).code).toBe(0);
    }
  });

  it('a missing disk fails the job before any guest is touched', async () => {
    expect((await cv(lab, ['job', 'edit', 'usb', '--device', 'UUID=00000000-dead-beef-0000-000000000000'])).code).toBe(0);
    const run = await cv(lab, ['job', 'run', 'usb']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/UUID=00000000-dead-beef-0000-000000000000/);
    expect(run.stdout).not.toContain('Starting Backup of VM 101');
    expect(run.stdout).toContain('Backup job failed');
    // and the admin hears of it
    const mail = sink.got.at(-1);
    expect(mail).toBeDefined();
    expect(subjectOf(mail!.raw)).toMatch(/job usb\): backup failed/);
    expect(part(mail!.raw, 'text/plain')).toContain('UUID=00000000-dead-beef-0000-000000000000');
  });
});

describe('a job on an external disk of each filesystem (ext4, xfs, exFAT, NTFS on loop devices)', () => {
  // The catalog (SQLite, journal mode DELETE), the locks (hard links, or O_EXCL where the filesystem
  // has none) and the file names must work on what users carry around.
  let lab: JobLab;
  let work = '';
  const loops: string[] = [];

  beforeAll(async () => {
    lab = await makeJobLab('cv-jfs-');
    work = mkdtempSync(join(tmpdir(), 'cv-jfs-loops-'));
    writeGuestConf(lab, '101', 'fs01');
    mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
    writeImage(diskPath(lab, '101'), ['text', 'zero', 'random', 'text', 'random'], 11);
  });

  afterAll(async () => {
    for (const m of (await readMounts()).filter((x) => x.mountpoint.startsWith(lab.root))) sh('umount', ['-l', m.mountpoint]);
    for (const l of loops) sh('losetup', ['-d', l]);
    rmSync(work, { recursive: true, force: true });
    await lab?.cleanup();
  });

  const MKFS: Record<string, (dev: string) => void> = {
    ext4: (dev) => sh('mkfs.ext4', ['-q', '-F', '-L', 'cvfsext4', dev]),
    exfat: (dev) => sh('mkfs.exfat', ['-L', 'cvfsexfat', dev]),
    ntfs: (dev) => sh('mkfs.ntfs', ['-Q', '-F', '-L', 'cvfsntfs', dev]),
    xfs: (dev) => sh('mkfs.xfs', ['-q', '-f', '-L', 'cvfsxfs', dev]),
  };

  for (const fs of ['ext4', 'xfs', 'exfat', 'ntfs']) {
    it(`${fs}: backs up twice, verifies and restores by UUID`, async () => {
      const img = join(work, `${fs}.img`);
      sh('truncate', ['-s', fs === 'xfs' ? '320M' : '128M', img]); // sparse; mkfs.xfs wants 300 MiB at least
      const dev = sh('losetup', ['--find', '--show', img]);
      loops.push(dev);
      MKFS[fs]!(dev);
      const uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', '-p', dev]);
      const mnt = join(lab.root, `mnt-${fs}`);
      expect((await cv(lab, ['job', 'add', `j${fs}`, '--store', mnt, '--vmid', '101', '--device', `UUID=${uuid}`, '--init-device', '--keep', '2'])).code).toBe(
        0,
      );
      for (let night = 1; night <= 2; night++) {
        const run = await cv(lab, ['job', 'run', `j${fs}`]);
        expect(run.code, run.stdout + run.stderr).toBe(0);
      }
      const newId = { ext4: '411', exfat: '412', ntfs: '413', xfs: '414' }[fs] as string;
      const r = await cv(lab, ['restore', '101', '--version', '2', '--new-id', newId, '--store', mnt, '--device', `UUID=${uuid}`]);
      expect(r.code, r.stderr).toBe(0);
      expect(sha256File(join(lab.storageDir, 'images', newId, `vm-${newId}-disk-0.raw`))).toBe(sha256File(diskPath(lab, '101')));
      // verify on the disk, mounted by hand, then unmounted again
      mkdirSync(mnt, { recursive: true });
      sh(
        'mount',
        fs === 'ntfs'
          ? ['-t', 'ntfs-3g', dev, mnt]
          : fs === 'exfat'
            ? ['-t', existsSync('/sbin/mount.exfat-fuse') ? 'exfat-fuse' : 'exfat', dev, mnt]
            : [dev, mnt],
      );
      try {
        const v = await cv(lab, ['verify', '--store', mnt]);
        expect(v.code, v.stderr).toBe(0);
        const list = JSON.parse((await cv(lab, ['list', '101', '--store', mnt, '--json'])).stdout) as Array<{ version: number }>;
        expect(list.map((x) => x.version)).toEqual([1, 2]);
      } finally {
        sh('umount', [mnt]);
      }
    });
  }
});

describe('a job with rotated disks (two loop devices with ext4; one carried away at a time)', () => {
  // "USB disks that they rotate and carry away": one job lists both disks by UUID, uses whichever is
  // attached, and binds one datastore per disk; a disk that then holds a third datastore is refused.
  let lab: JobLab;
  let loops: Loops;
  const detach = (d: Loop): void => void sh('losetup', ['-d', d.path]);
  const attach = (d: Loop): void => {
    d.path = sh('losetup', ['--find', '--show', d.img]);
  };
  const versionsOn = (d: Loop): Promise<string[]> =>
    loops.byHand(
      d,
      (dir) => {
        const guest = join(dir, 'guests', '101');
        return existsSync(guest)
          ? readdirSync(guest)
              .filter((n) => /^\d+$/.test(n))
              .sort()
          : [];
      },
      true,
    );

  beforeAll(async () => {
    lab = await makeJobLab('cv-jrot-');
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-jrot-loops-')));
    writeGuestConf(lab, '101', 'rot01');
    mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
    writeImage(diskPath(lab, '101'), ['text', 'random', 'zero', 'text'], 13);
    for (const name of ['mon', 'tue']) loops.make(name, '96M', (dev) => sh('mkfs.ext4', ['-q', '-F', '-L', `cvrot${name}`, dev]));
  });

  afterAll(async () => {
    await loops?.cleanup([join(lab.root, 'usb')]);
    await lab?.cleanup();
  });

  it('uses whichever disk is attached, binds one datastore per disk, and refuses a third datastore once both are bound', async () => {
    const [mon, tue] = loops.all as [Loop, Loop];
    const mnt = join(lab.root, 'usb');
    expect((await cv(lab, ['job', 'add', 'rot', '--store', mnt, '--vmid', '101', '--device', `UUID=${mon.uuid},UUID=${tue.uuid}`, '--init-device'])).code).toBe(
      0,
    );

    detach(tue); // Tuesday's disk is in the drawer
    const first = await cv(lab, ['job', 'run', 'rot']);
    expect(first.code, first.stdout).toBe(0);
    expect(first.stdout).toContain(`not attached (rotated away): UUID=${tue.uuid}`);
    expect(first.stdout).toMatch(/is now bound to datastore [0-9a-f-]+ \(disk 1 of 2\)/);

    attach(tue);
    detach(mon); // the next day: Monday's disk is carried away
    const second = await cv(lab, ['job', 'run', 'rot']);
    expect(second.code, second.stdout).toBe(0);
    expect(second.stdout).toMatch(/is now bound to datastore [0-9a-f-]+ \(disk 2 of 2: other disks will be refused\)/);
    expect(await mounted(mnt)).toBe(false);

    attach(mon); // both plugged in: the first one listed is used
    const third = await cv(lab, ['job', 'run', 'rot']);
    expect(third.code, third.stdout).toBe(0);
    expect(third.stdout).toContain(`also attached: UUID=${tue.uuid}`);
    expect(await versionsOn(mon)).toEqual(['1', '2']); // each disk is its own datastore with its own versions
    const job = (JSON.parse((await cv(lab, ['job', 'list', '--json'])).stdout) as Array<{ id: string; deviceDatastoreId?: string }>).find(
      (j) => j.id === 'rot',
    );
    expect(job?.deviceDatastoreId?.split(',')).toHaveLength(2);

    // Tuesday's disk is wiped and given another datastore (same UUID): refused, untouched
    detach(mon);
    sh('mkfs.ext4', ['-q', '-F', '-U', tue.uuid, '-L', 'cvrottue', tue.path]);
    await loops.byHand(tue, (dir) => cv(lab, ['datastore', 'init', dir]));
    const before = imageHash(tue);
    const refused = await cv(lab, ['job', 'run', 'rot']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/holds datastore [0-9a-f-]+, not one of the expected datastores [0-9a-f-]+, [0-9a-f-]+; nothing was written to it/);
    expect(imageHash(tue)).toBe(before);
    attach(mon); // for cleanup: every loop attached again
  });
});
