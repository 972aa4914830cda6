/**
 * A wrong or unmountable external disk, with a REAL running guest (the tiny QEMU guest, driver
 * `qemu`) and a REAL SMTP server on loopback, on REAL loop devices (root): the job is refused before
 * any guest is stopped (the guest keeps running, it never booted again), the disk is not written to
 * (its image is byte-identical: it was looked at read-only, without journal replay), nothing is left
 * mounted, the log says why in one line, and the admin gets a failure mail saying the same.
 *
 * The job is bound to the datastore on its "home" disk by a first run that backs up a guest that is
 * not running (so the running guest is never stopped in this file); then other disks are plugged in.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guestFiles, readBootCount } from '../helpers/tiny-guest.js';
import { imageHash, Loops, mounted, sh, type Loop } from './helpers-devices.js';
import { addTinyGuest, bootGuest, cv, makeJobLab, part, startSmtpSink, subjectOf, type JobLab } from './helpers-jobs.js';

describe('a wrong or unmountable external disk while a real guest runs', () => {
  let lab: JobLab;
  let sink: Awaited<ReturnType<typeof startSmtpSink>>;
  let loops: Loops;
  let mnt = '';
  let guestDisk = '';
  const disks = {} as Record<'home' | 'other' | 'garbage' | 'damaged', Loop>;
  const ids = { home: '', other: '' };
  const mkext4 =
    (label: string) =>
    (dev: string): void =>
      void sh('mkfs.ext4', ['-q', '-F', '-L', label, dev]);
  const datastoreIdOn = (loop: Loop): Promise<string> =>
    loops.byHand(loop, (dir) => (JSON.parse(readFileSync(join(dir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id, true);

  beforeAll(async () => {
    sink = await startSmtpSink();
    lab = await makeJobLab('cv-jdevg-', {
      qemu: true,
      mail: { transport: 'smtp', host: '127.0.0.1', port: sink.port, secure: false, tlsRejectUnauthorized: false, from: 'backup@pve.example.com' },
    });
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-jdevg-loops-')));
    mnt = join(lab.root, 'usb');
    disks.home = loops.make('home', '96M', mkext4('cvhome'));
    disks.other = loops.make('other', '96M', mkext4('cvother'));
    await loops.byHand(disks.other, (dir) => cv(lab, ['datastore', 'init', dir]));
    disks.garbage = loops.make('garbage', '16M');
    sh('dd', ['if=/dev/urandom', `of=${disks.garbage.path}`, 'bs=1M', 'count=16', 'status=none']);
    disks.damaged = loops.make('damaged', '96M', mkext4('cvdamaged'));
    // the group descriptors (right after the superblock) zeroed: blkid still sees ext4 and its UUID, mount fails
    sh('dd', ['if=/dev/zero', `of=${disks.damaged.path}`, 'bs=1024', 'seek=2', 'count=6', 'conv=notrunc', 'status=none']);

    guestDisk = await addTinyGuest(lab, '101', 'web01');
    await addTinyGuest(lab, '102', 'idle02'); // not running: backing it up stops nothing
    const add = await cv(lab, [
      'job',
      'add',
      'carry',
      '--store',
      mnt,
      '--vmid',
      '102',
      '--device',
      `UUID=${disks.home.uuid}`,
      '--init-device',
      '--mailto',
      'admin@example.com',
      '--mail-notification',
      'failure',
    ]);
    expect(add.code, add.stderr).toBe(0);
    const bind = await cv(lab, ['job', 'run', 'carry']);
    expect(bind.code, bind.stdout + bind.stderr).toBe(0);
    expect((await cv(lab, ['job', 'edit', 'carry', '--vmid', '101'])).code).toBe(0);
    [ids.home, ids.other] = [await datastoreIdOn(disks.home), await datastoreIdOn(disks.other)];
    await bootGuest(lab, '101');
  });

  afterAll(async () => {
    await loops?.cleanup([mnt]);
    await lab?.cleanup();
    await sink?.close();
  });

  /** Runs the job on `device`: refused with `why` in the log and the mail; guest, disk and mounts untouched. */
  const expectRefused = async (loop: Loop, device: string, why: RegExp): Promise<void> => {
    const before = imageHash(loop);
    const mails = sink.got.length;
    expect((await cv(lab, ['job', 'edit', 'carry', '--device', device])).code).toBe(0);
    const run = await cv(lab, ['job', 'run', 'carry']);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`ERROR: Backup job failed - ${why.source}`));
    expect(run.stdout).not.toMatch(/Starting Backup of VM 101|stopping virtual guest|restarting vm/);
    // the guest was never stopped: running, and still in its first boot
    expect(await lab.driver!.status('101')).toBe('running');
    expect(readFileSync(guestFiles(lab.qemuDir, '101').log, 'utf8')).not.toContain('coldvault-tiny-guest: boot 2');
    expect(await readBootCount(guestDisk)).toBe(1);
    expect(await mounted(mnt)).toBe(false);
    expect(imageHash(loop), 'the disk was written to').toBe(before);
    expect(sink.got.length, 'one failure mail').toBe(mails + 1);
    const mail = sink.got.at(-1)!;
    expect(subjectOf(mail.raw)).toMatch(/job carry\): backup failed/);
    expect(part(mail.raw, 'text/plain')).toMatch(why);
  };

  it('a disk that holds another datastore is refused untouched and mailed, naming both datastore ids', async () => {
    expect(ids.home).not.toBe(ids.other);
    await expectRefused(
      disks.other,
      `UUID=${disks.other.uuid}`,
      new RegExp(`the device mounted on '${mnt}' holds datastore ${ids.other}, not the expected datastore ${ids.home}; nothing was written to it`),
    );
  });

  it('a disk without a filesystem is refused and mailed: no filesystem found on it', async () => {
    await expectRefused(disks.garbage, disks.garbage.path, new RegExp(`mounting device ${disks.garbage.path} on '${mnt}' failed: no filesystem found on it`));
  });

  it("a disk whose filesystem is damaged is refused and mailed with mount's reason", async () => {
    await expectRefused(
      disks.damaged,
      `UUID=${disks.damaged.uuid}`,
      new RegExp(`mounting device ${disks.damaged.path} on '${mnt}' failed: mount: .*(Structure needs cleaning|bad superblock|wrong fs type)`),
    );
  });
});
