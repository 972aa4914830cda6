/**
 * A job's external device failing MID-backup (issue 6, item 5), on REAL loop devices with ext4 (as
 * root, as CI runs) and a REAL running guest (the tiny QEMU guest, driver `qemu`): a disk that fills
 * up and a disk that is "unplugged" both fail the job cleanly; the guest coldvault stopped is running
 * again (QMP says so, and it booted once more); the disk is unmounted; the datastore on the disk stays
 * consistent (verify clean, no partial version, no staging folder listed); the admin gets a mail; and
 * the next run succeeds.
 *
 * "Mid-backup" is made deterministic: the guest's disk holds 96 MiB of random data (nothing to
 * dedup, seconds of work), the job is spawned, and as soon as its task log says
 * `now save file '...raw'` (the guest is off, the version is staged, the disk is being written) the
 * coldvault process is paused (SIGSTOP), the staging folder is checked to be there, the fault is
 * injected, and it is resumed (SIGCONT). The failing run is the job's first backup onto a datastore
 * initialised by hand, so all of its data is new.
 * - Full: the engine refuses up front when the disk cannot fit (space check, with a 64 MiB reserve),
 *   so the disk is filled from outside (fallocate) while the backup is paused.
 * - Unplugged: device-mapper is not available everywhere (no dm in some CI kernels), so the loop
 *   device's size limit is cut to 1 MiB (LOOP_SET_STATUS64): every I/O beyond it fails, as with a
 *   pulled disk, and the device reports its new size; the log names the disk as failed or removed,
 *   and the job's second guest is skipped without being stopped. "Re-plugging" sets the limit back
 *   (the backing file is intact); then, as an admin would: e2fsck -fy, mount and verify.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killGuest, readBootCount } from '../helpers/tiny-guest.js';
import { checkStore, fillGuestDisk, Loops, MiB, mounted, runWithFault, sh, type Loop } from './helpers-devices.js';
import { addTinyGuest, bootGuest, cv, lineIndex, makeJobLab, part, startSmtpSink, subjectOf, waitBooted, type JobLab } from './helpers-jobs.js';

describe("a job's external device failing mid-backup (loop devices, ext4, a real guest)", () => {
  let lab: JobLab;
  let sink: Awaited<ReturnType<typeof startSmtpSink>>;
  let loops: Loops;
  const mnts: Record<string, string> = {};
  const children: number[] = [];
  const disks: Record<string, Loop> = {};

  /** A running tiny guest whose disk holds 96 MiB of random data; returns its disk image. */
  const bigRunningGuest = async (vmid: string, name: string): Promise<string> => {
    const disk = await addTinyGuest(lab, vmid, name);
    await fillGuestDisk(disk, 128, 96, loops.work);
    await bootGuest(lab, vmid);
    return disk;
  };

  /** The guest coldvault stopped is running again and booted once more (boot `boots`). */
  const expectBackUp = async (vmid: string, disk: string, boots: number): Promise<void> => {
    expect(await lab.driver!.status(vmid)).toBe('running');
    await waitBooted(lab, vmid, boots);
    expect(await readBootCount(disk)).toBe(boots);
  };

  const lastMail = (): { subject: string; text: string } => {
    const mail = sink.got.at(-1);
    expect(mail, 'a report mail arrived').toBeDefined();
    return { subject: subjectOf(mail!.raw), text: part(mail!.raw, 'text/plain') };
  };

  beforeAll(async () => {
    sink = await startSmtpSink();
    lab = await makeJobLab('cv-jdevf-', {
      qemu: true,
      mail: { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@pve.example.com' },
    });
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-jdevf-loops-')));
    for (const name of ['full', 'flaky']) {
      // 320 MiB: the engine keeps a 64 MiB reserve, so a smaller disk would refuse the guest up front
      disks[name] = loops.make(name, '320M', (dev) => sh('mkfs.ext4', ['-q', '-F', '-m', '0', '-L', `cv${name}`, dev]));
      mnts[name] = join(lab.root, name);
      await loops.byHand(disks[name], (dir) => cv(lab, ['datastore', 'init', dir]));
    }
  });

  afterEach(async () => {
    for (const pid of children.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const vmid of lab.vmids) await killGuest(lab.qemuDir, vmid);
  });

  afterAll(async () => {
    await loops?.cleanup(Object.values(mnts));
    await lab?.cleanup();
    await sink?.close();
  });

  it('a disk that fills up mid-backup: the job fails with NO_SPACE, the guest runs again, the store stays consistent, the next run succeeds', async () => {
    const loop = disks.full!;
    const mnt = mnts.full!;
    const disk = await bigRunningGuest('101', 'full01');
    const add = await cv(lab, [
      'job',
      'add',
      'full',
      '--store',
      mnt,
      '--vmid',
      '101',
      '--device',
      `UUID=${loop.uuid}`,
      '--mailto',
      'admin@example.com',
      '--mail-notification',
      'failure',
    ]);
    expect(add.code, add.stderr).toBe(0);

    const run = await runWithFault(
      lab,
      { id: 'full', store: mnt, vmid: '101' },
      () => {
        // the disk fills up from outside while the backup writes: leave 4 MiB
        const s = statfsSync(mnt);
        sh('fallocate', ['-l', String(s.bavail * s.bsize - 4 * MiB), join(mnt, 'filler')]);
      },
      children,
    );
    expect(run.midBackup, run.out).toBe(true);
    expect(run.code, run.out).toBe(1);
    expect(run.out).toMatch(/Backup of VM 101 failed - .*(is full|No space left|not enough space)/i);
    expect(run.out).not.toMatch(/failed or was removed/); // a full disk is not a failed one
    expect(lineIndex(run.out, 'stopping virtual guest')).toBeLessThan(lineIndex(run.out, 'Backup of VM 101 failed'));
    expect(lineIndex(run.out, 'restarting vm')).toBeGreaterThan(lineIndex(run.out, 'Backup of VM 101 failed'));
    expect(run.out).toContain('guest is online again');
    expect(run.out).toMatch(/synced and unmounted/);
    expect(await mounted(mnt)).toBe(false);
    await expectBackUp('101', disk, 2);
    const mail = lastMail();
    expect(mail.subject).toMatch(/job full\): backup failed/);
    expect(mail.text).toMatch(/(is full|No space left|not enough space)/i);

    await loops.byHand(loop, async (dir) => {
      await checkStore(lab, dir, '101', []);
      rmSync(join(dir, 'filler')); // space freed
    });
    const next = await cv(lab, ['job', 'run', 'full']);
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect(await mounted(mnt)).toBe(false);
    await expectBackUp('101', disk, 3);
    // the failed run took version 1 (numbers are never handed out twice): the next one is 2
    await loops.byHand(loop, (dir) => checkStore(lab, dir, '101', [2]));
  });

  it('a disk unplugged mid-backup: the job fails naming the failed disk, the guest runs again, the next guest is not stopped, the store stays consistent, the next run succeeds', async () => {
    const loop = disks.flaky!;
    const mnt = mnts.flaky!;
    const [disk, other] = await Promise.all([
      bigRunningGuest('102', 'flaky02'),
      addTinyGuest(lab, '103', 'other03').then(async (d) => (await bootGuest(lab, '103'), d)),
    ]);
    const add = await cv(lab, [
      'job',
      'add',
      'flaky',
      '--store',
      mnt,
      '--vmid',
      '102,103',
      '--device',
      loop.path,
      '--mailto',
      'admin@example.com',
      '--mail-notification',
      'failure',
    ]);
    expect(add.code, add.stderr).toBe(0);

    const run = await runWithFault(lab, { id: 'flaky', store: mnt, vmid: '102' }, () => loops.setLimit(loop, MiB), children);
    expect(run.midBackup, run.out).toBe(true);
    expect(run.code, run.out).toBe(1);
    // the errno is the kernel's (EIO, EROFS once ext4 aborts its journal, ENOMEM on 6.x when an inode
    // block cannot be read); the log says what it means: the disk failed or went away
    const failedLine = new RegExp(
      `ERROR: the external disk ${loop.path} \\(UUID=${loop.uuid}\\) failed or was removed during the backup: its size dropped from 320\\.00 MiB to 1\\.00 MiB; .*'${mnt}/.*(EIO|EROFS|ENOMEM|ENXIO|ENODEV)`,
    );
    expect(run.out).toMatch(failedLine);
    expect(run.out).toMatch(/the external disk failed: guest 103 and the following ones are not backed up/);
    expect(run.out).not.toContain('Starting Backup of VM 103');
    expect(run.out).toMatch(/Backup job finished with errors/);
    expect(run.out).toContain('guest is online again');
    expect(await mounted(mnt)).toBe(false);
    await expectBackUp('102', disk, 2);
    expect(await lab.driver!.status('103')).toBe('running');
    expect(await readBootCount(other)).toBe(1); // never stopped
    const mail = lastMail();
    expect(mail.subject).toMatch(/job flaky\): backup failed/);
    expect(mail.text).toMatch(/the external disk \S+ \(UUID=\S+\) failed or was removed during the backup/);

    // re-plug, as an admin would: the device is back, fsck, mount, verify
    loops.setLimit(loop, 0);
    const fsck = spawnSync('e2fsck', ['-fy', loop.path], { encoding: 'utf8' });
    expect(fsck.status, fsck.stdout + fsck.stderr).toBeLessThan(4); // 0 clean, 1/2 errors corrected
    await loops.byHand(loop, (dir) => checkStore(lab, dir, '102', [], true));

    const next = await cv(lab, ['job', 'run', 'flaky']);
    expect(next.code, next.stdout + next.stderr).toBe(0);
    expect(await mounted(mnt)).toBe(false);
    await expectBackUp('102', disk, 3);
    await expectBackUp('103', other, 2);
    await loops.byHand(loop, async (dir) => {
      await checkStore(lab, dir, '102', [2]); // the unplugged run took version 1 of 102
      await checkStore(lab, dir, '103', [1]);
    });
  });
});
