/**
 * A USB-disk job with `--encrypt` end to end (issue 13, on issue 6's flow), on a REAL loop device
 * with ext4: the job initialises the empty disk, backs the guest up encrypted, and unmounts it; the
 * disk, looked at read-only as a finder would, holds no byte of a 64-byte marker written in the
 * guest's disk, only versions whose manifests name the key; `restore --device` (read-only mount)
 * restores it byte-identical with `--keyfile` and refuses it without, naming the key. Guest: driver
 * 'none', a generated disk image.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMounts } from '../../src/targets/index.js';
import { regionBytes, sha256File, writeImage } from '../helpers/fixtures.js';
import { filesUnder } from '../cli/cli-lab.js';
import { mounted, sh, type Loop } from './helpers-devices.js';
import { cv, diskPath, makeJobLab, writeGuestConf, type JobLab } from './helpers-jobs.js';

describe('a USB-disk job with --encrypt (loop device, ext4)', () => {
  let lab: JobLab;
  let work = '';
  let loop: Loop;
  let mnt = '';
  let fingerprint = '';
  const MARKER = Buffer.from('coldvault-usb-encrypted-marker:' + '7c1e9a04d3b25f68'.repeat(3)).subarray(0, 64);
  const keyFile = (): string => join(lab.root, 'usb.key');

  /** Mounts the disk read-only elsewhere, runs `look` on the mount point, unmounts. */
  const inside = <T>(look: (dir: string) => T): T => {
    const dir = join(work, `look-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(dir);
    sh('mount', ['-o', 'ro', loop.path, dir]);
    try {
      return look(dir);
    } finally {
      sh('umount', [dir]);
    }
  };

  beforeAll(async () => {
    lab = await makeJobLab('cv-jdev-enc-');
    work = mkdtempSync(join(tmpdir(), 'cv-jdev-enc-loops-'));
    const img = join(work, 'usb.img');
    sh('truncate', ['-s', '96M', img]);
    loop = { path: sh('losetup', ['--find', '--show', img]), img, uuid: '' };
    sh('mkfs.ext4', ['-q', '-F', '-L', 'cvjobenc', loop.path]);
    loop.uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', '-p', loop.path]);
    writeGuestConf(lab, '101', 'usb-enc');
    mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
    writeImage(diskPath(lab, '101'), ['random', 'text', 'zero', 'random'], 613);
    const disk = readFileSync(diskPath(lab, '101'));
    const region = regionBytes('random', 614);
    MARKER.copy(region, 4096);
    region.copy(disk, 0);
    writeFileSync(diskPath(lab, '101'), disk);
    mnt = join(lab.root, 'usb');
    const made = await cv(lab, ['key', 'create', keyFile(), '--kdf', 'none', '--json']);
    expect(made.code, made.stderr).toBe(0);
    fingerprint = (JSON.parse(made.stdout) as { fingerprint: string }).fingerprint;
  });

  afterAll(async () => {
    for (const m of (await readMounts()).filter((x) => x.mountpoint.startsWith(work) || x.mountpoint === mnt)) sh('umount', ['-l', m.mountpoint]);
    if (loop) sh('losetup', ['-d', loop.path]);
    rmSync(work, { recursive: true, force: true });
    await lab?.cleanup();
  });

  it('backs the guest up encrypted onto the disk it initialises, and unmounts it', async () => {
    const add = await cv(lab, ['job', 'add', 'usb', '--store', mnt, '--vmid', '101', '--device', `UUID=${loop.uuid}`, '--init-device', '--encrypt', keyFile()]);
    expect(add.code, add.stderr).toBe(0);
    const run = await cv(lab, ['job', 'run', 'usb']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain(`encryption: AES-256-GCM with key ${fingerprint}`);
    expect(run.stdout).toMatch(/the disk may now be removed/);
    expect(await mounted(mnt)).toBe(false);
  });

  it('the disk, read as a finder would, holds no byte run of the marker; its manifest names the key', () => {
    inside((dir) => {
      const files = filesUnder(dir).filter((f) => statSync(join(dir, f)).isFile());
      expect(files.some((f) => f.startsWith('chunks/'))).toBe(true);
      expect(files.filter((f) => readFileSync(join(dir, f)).includes(MARKER))).toEqual([]);
      const manifest = JSON.parse(readFileSync(join(dir, 'guests', '101', '1', 'manifest.json'), 'utf8')) as { encryption?: { fingerprint: string } };
      expect(manifest.encryption?.fingerprint).toBe(fingerprint);
    });
  });

  it('restore --device: refused without the key, naming it; byte-identical with --keyfile; the disk unmounted after', async () => {
    const dir = join(lab.root, 'usb-restore');
    const refused = await cv(lab, ['restore', '101', '--version', '1', '--new-id', '301', '--store', dir, '--device', `UUID=${loop.uuid}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`encrypted with key ${fingerprint}: give its key file (--keyfile FILE)`);
    expect(existsSync(join(lab.guestsDir, '301.conf'))).toBe(false);
    expect(await mounted(dir)).toBe(false);
    const r = await cv(lab, ['restore', '101', '--version', '1', '--new-id', '301', '--store', dir, '--device', `UUID=${loop.uuid}`, '--keyfile', keyFile()]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/read-only/);
    expect(await mounted(dir)).toBe(false);
    expect(sha256File(join(lab.storageDir, 'images', '301', 'vm-301-disk-0.raw'))).toBe(sha256File(diskPath(lab, '101')));
    expect(readFileSync(join(lab.guestsDir, '301.conf'), 'utf8')).toContain('name: usb-enc');
  });
});
