/**
 * External devices on REAL loop devices (root only): ext4, exFAT and NTFS images of 64 MiB, and xfs of
 * 320 MiB (mkfs.xfs refuses less than 300 MiB; the images are sparse files).
 * afterAll always unmounts and detaches, also when a test failed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { LockDir } from '../../src/datastore/index.js';
import {
  checkIdentity,
  deviceProblem,
  listCandidates,
  listDevices,
  mountDevice,
  mountsOfDevice,
  readMounts,
  resolveDevice,
  unmountDevice,
} from '../../src/targets/index.js';
import { CLI, REPO } from '../helpers/fixtures.js';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
const tag = Math.random().toString(36).slice(2, 7).toUpperCase();

const SHORT = { ext4: 'e4', exfat: 'xf', ntfs: 'nt', xfs: 'xs' } as const;
const SIZE = { ext4: '64M', exfat: '64M', ntfs: '64M', xfs: '320M' } as const;
const MiB = 1024 * 1024;
interface Disk {
  fs: 'ext4' | 'exfat' | 'ntfs' | 'xfs';
  label: string;
  path: string;
  uuid: string;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isColdvaultError(err), String(err)).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  return err as Error;
}

describe('external devices on loop devices (needs root, as CI runs)', () => {
  let work = '';
  const disks: Disk[] = [];
  const spareLoops: string[] = [];
  const mountpoints: string[] = [];
  let datastoreId = ''; // on the ext4 disk
  let xfsDatastoreId = '';
  const disk = (fs: Disk['fs']): Disk => disks.find((d) => d.fs === fs)!;
  const mnt = (name: string): string => {
    const dir = join(work, name);
    mountpoints.push(dir);
    return dir;
  };

  beforeAll(async () => {
    if (!existsSync(join(REPO, 'dist', 'cli', 'main.js'))) sh('npm', ['run', 'build', '--prefix', REPO]);
    work = mkdtempSync(join(tmpdir(), 'coldvault-devices-'));
    const mkfs: Record<Disk['fs'], (dev: string, label: string) => void> = {
      ext4: (dev, label) => sh('mkfs.ext4', ['-q', '-F', '-L', label, dev]),
      exfat: (dev, label) => sh('mkfs.exfat', ['-L', label, dev]),
      ntfs: (dev, label) => sh('mkfs.ntfs', ['-Q', '-F', '-L', label, dev]),
      xfs: (dev, label) => sh('mkfs.xfs', ['-q', '-f', '-L', label, dev]),
    };
    for (const fs of ['ext4', 'exfat', 'ntfs', 'xfs'] as const) {
      const img = join(work, `${fs}.img`);
      sh('truncate', ['-s', SIZE[fs], img]);
      const path = sh('losetup', ['--find', '--show', img]);
      const label = `cv${SHORT[fs]}${tag}`; // exFAT labels: at most 11 characters
      disks.push({ fs, label, path, uuid: '' }); // at once: afterAll detaches it whatever fails next
      mkfs[fs](path, label);
      disks[disks.length - 1]!.uuid = sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', path]);
    }
    // a datastore on the ext4 and on the xfs disk, made by the CLI
    const initOn = async (fs: Disk['fs']): Promise<string> => {
      const dir = mnt(`init-${fs}`);
      await mountDevice(disk(fs).path, dir, {});
      try {
        sh('node', [CLI, 'datastore', 'init', dir]);
        return (JSON.parse(readFileSync(join(dir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id;
      } finally {
        await unmountDevice(dir);
      }
    };
    datastoreId = await initOn('ext4');
    xfsDatastoreId = await initOn('xfs');
  });

  afterAll(() => {
    for (const dir of mountpoints.reverse()) {
      try {
        sh('umount', [dir]);
      } catch {
        /* not mounted */
      }
    }
    for (const d of disks) {
      try {
        sh('umount', [d.path]);
      } catch {
        /* not mounted */
      }
      try {
        sh('losetup', ['-d', d.path]);
      } catch (err) {
        console.error(`detaching ${d.path} failed: ${String(err)}`);
      }
    }
    for (const path of spareLoops) {
      try {
        sh('losetup', ['-d', path]);
      } catch (err) {
        console.error(`detaching ${path} failed: ${String(err)}`);
      }
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('discovery with --all lists the four loop devices with filesystem, label and UUID; probing them names the datastore on each, leaving them unmounted', async () => {
    const listed = await listCandidates({ all: true }); // mounts nothing
    // probing only our own disks: the others' loop devices on this machine are not ours to mount
    const probed = await listDevices({ only: disks.map((d) => d.path) });
    expect(probed.map((x) => x.path).sort()).toEqual(disks.map((d) => d.path).sort());
    for (const d of disks) {
      expect(
        listed.find((x) => x.path === d.path),
        d.path,
      ).toMatchObject({ fstype: d.fs, label: d.label, uuid: d.uuid, size: Number.parseInt(SIZE[d.fs], 10) * MiB, type: 'loop' });
      const found = probed.find((x) => x.path === d.path);
      expect(found, d.path).toMatchObject({ fstype: d.fs, label: d.label, uuid: d.uuid, type: 'loop' });
      expect(found!.datastore).toEqual(d.fs === 'ext4' ? { id: datastoreId } : d.fs === 'xfs' ? { id: xfsDatastoreId } : null);
      expect(found!.probeError).toBeUndefined();
      expect(await mountsOfDevice(d.path)).toEqual([]);
    }
    expect((await readMounts()).filter((m) => m.mountpoint.includes('coldvault-probe-'))).toEqual([]);
    const plain = await listCandidates();
    expect(plain.some((x) => disks.some((d) => d.path === x.path))).toBe(false);
    await expectCode(listDevices({ only: [`LABEL=nope${tag}`] }), 'DEVICE_NOT_FOUND');
  });

  it('the devices command prints the table and JSON (of the disks named)', () => {
    const json = JSON.parse(sh('node', [CLI, 'devices', '--json', ...disks.map((d) => d.path)])) as Array<{ path: string; datastore: { id: string } | null }>;
    expect(json.find((x) => x.path === disk('ext4').path)?.datastore).toEqual({ id: datastoreId });
    const table = sh('node', [CLI, 'devices', `UUID=${disk('ntfs').uuid}`, `LABEL=${disk('ext4').label}`]);
    expect(table.split('\n')[0]).toMatch(/^DEVICE\s+SIZE\s+FS\s+LABEL\s+UUID\s+MODEL\s+DATASTORE$/);
    expect(table).toMatch(new RegExp(`${disk('ntfs').path}\\s+.*ntfs\\s+${disk('ntfs').label}\\s+${disk('ntfs').uuid}\\s+-\\s+-`));
    expect(table).toContain(datastoreId);
    expect(table.split('\n')).toHaveLength(3);
  });

  it('resolveDevice finds a device by UUID=, LABEL= and /dev path', async () => {
    for (const d of disks) {
      expect((await resolveDevice(`UUID=${d.uuid}`)).path).toBe(d.path);
      expect((await resolveDevice(`LABEL=${d.label}`)).path).toBe(d.path);
      expect((await resolveDevice(d.path)).fstype).toBe(d.fs);
    }
  });

  it('a missing device is DEVICE_NOT_FOUND naming the spec', async () => {
    for (const spec of ['UUID=00000000-dead-beef-0000-000000000000', `LABEL=nope${tag}`, '/dev/coldvault-missing']) {
      const err = await expectCode(resolveDevice(spec), 'DEVICE_NOT_FOUND');
      expect(err.message).toContain(spec);
    }
  });

  it.each(['ext4', 'exfat', 'ntfs', 'xfs'] as const)('mount, write, unmount, mount read-only, read: %s', async (fs) => {
    const d = disk(fs);
    const dir = mnt(`rt-${fs}`);
    await mountDevice(await resolveDevice(`UUID=${d.uuid}`), dir, { readOnly: false });
    await writeFile(join(dir, 'hello.txt'), `hello ${fs}\n`);
    await unmountDevice(dir);
    expect(await mountsOfDevice(d.path)).toEqual([]);
    expect(existsSync(join(dir, 'hello.txt'))).toBe(false);
    await mountDevice(d.path, dir, { readOnly: true });
    try {
      expect(await readFile(join(dir, 'hello.txt'), 'utf8')).toBe(`hello ${fs}\n`);
      expect(() => writeFileSync(join(dir, 'other.txt'), 'x')).toThrow(/EROFS|EACCES|EPERM/);
    } finally {
      await unmountDevice(dir);
    }
    await unmountDevice(dir); // idempotent
  });

  it('refuses a mountpoint that is already a mount, and a device mounted elsewhere', async () => {
    const a = mnt('busy-a');
    const b = mnt('busy-b');
    await mountDevice(disk('ext4').path, a, { readOnly: true });
    try {
      const e1 = await expectCode(mountDevice(disk('ntfs').path, a, { readOnly: true }), 'DEVICE_MOUNT_FAILED');
      expect(e1.message).toMatch(/already a mountpoint/);
      const e2 = await expectCode(mountDevice(disk('ext4').path, b, { readOnly: true }), 'DEVICE_MOUNT_FAILED');
      expect(e2.message).toMatch(/already mounted on/);
    } finally {
      await unmountDevice(a);
    }
  });

  it("an unmountable device is DEVICE_MOUNT_FAILED with mount's stderr", async () => {
    const d = await resolveDevice(disk('exfat').path);
    const err = await expectCode(mountDevice({ ...d, fstype: 'ext4' }, mnt('bad'), { readOnly: true }), 'DEVICE_MOUNT_FAILED');
    expect(err.message).toMatch(new RegExp(`mounting device ${d.path} .* failed: .*(wrong fs type|bad superblock|mount)`, 's'));
    expect(await mountsOfDevice(d.path)).toEqual([]);
  });

  it('checkIdentity: the right id, a wrong id (WRONG_DATASTORE naming both), an empty filesystem', async () => {
    const dir = mnt('id-ext4');
    await mountDevice(disk('ext4').path, dir, { readOnly: true });
    try {
      expect(await checkIdentity(dir, datastoreId)).toBe(datastoreId);
      expect(await checkIdentity(dir, undefined)).toBe(datastoreId);
      const err = await expectCode(checkIdentity(dir, 'f'.repeat(32)), 'WRONG_DATASTORE');
      expect(err.message).toContain(datastoreId);
      expect(err.message).toContain('f'.repeat(32));
    } finally {
      await unmountDevice(dir);
    }
    const empty = mnt('id-empty');
    await mountDevice(disk('exfat').path, empty, { readOnly: false });
    try {
      await writeFile(join(empty, 'hello.txt'), 'x'); // a file that is no datastore
      await expectCode(checkIdentity(empty, datastoreId), 'NOT_A_DATASTORE');
      rmSync(join(empty, 'hello.txt'));
      expect(await checkIdentity(empty, datastoreId)).toBe('empty');
    } finally {
      await unmountDevice(empty);
    }
  });

  it('deviceProblem: nothing for an intact device; a shrunk device and a vanished one are named', async () => {
    const img = join(work, 'shrink.img');
    sh('truncate', ['-s', '8M', img]);
    const path = sh('losetup', ['--find', '--show', img]);
    spareLoops.push(path);
    expect(await deviceProblem({ path, size: 8 * MiB })).toBeUndefined();
    sh('truncate', ['-s', '1M', img]);
    sh('losetup', ['--set-capacity', path]); // the kernel re-reads the size, as after a failing disk's reset
    expect(await deviceProblem({ path, size: 8 * MiB })).toBe('its size dropped from 8.00 MiB to 1.00 MiB');
    expect(await deviceProblem({ path: '/dev/coldvault-missing', size: MiB })).toBe('/dev/coldvault-missing is no longer attached');
  });

  it('locks: an empty lock file is stale at once where hard links exist (ext4), held for 30 s on exFAT (no hard links)', async () => {
    for (const fs of ['ext4', 'exfat'] as const) {
      const dir = mnt(`locks-${fs}`);
      await mountDevice(disk(fs).path, dir, {});
      try {
        const locks = new LockDir(join(dir, 'locks'));
        const first = await locks.acquire('guest-101', 'a backup');
        await first.release();
        writeFileSync(first.path, ''); // as a disk pulled before the lock's content reached it leaves it
        if (fs === 'ext4') {
          await (await locks.acquire('guest-101', 'the next backup')).release();
        } else {
          await expectCode(locks.acquire('guest-101', 'the next backup'), 'LOCKED'); // may be a process writing it
          const old = new Date(Date.now() - 120_000);
          utimesSync(first.path, old, old);
          await (await locks.acquire('guest-101', 'the next backup')).release();
        }
      } finally {
        await unmountDevice(dir);
      }
    }
  });
});
