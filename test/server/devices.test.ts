/**
 * External disks over the API, on REAL loop devices (as root, as CI runs):
 * - GET /api/v1/devices lists the disks (the job form's and the Restore tab's "external device"
 *   choice) with filesystem, label and UUID, and mounts nothing: the kernel logs no mount of the
 *   disks' filesystems (ext4 and xfs, each carrying a datastore) and mountinfo is unchanged;
 * - POST /api/v1/devices/probe names the datastore on each, mounting each read-only for a moment:
 *   no byte of any disk changes, not even of one left with a journal to replay;
 * - POST /api/v1/restore with fromDevice restores from a disk left with a journal to replay (a power
 *   cut) and leaves its image byte-identical; a fromPath that is a datastore in use is refused;
 * - a job may name its device by UUID= or LABEL=; auth and unknown fields are refused as everywhere.
 * Loop devices are made here and detached in afterAll; no other loop device is touched.
 */
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockDir } from '../../src/datastore/index.js';
import { readMounts, type MountEntry } from '../../src/targets/index.js';
import { cli, imagePath, sha256File } from '../helpers/fixtures.js';
import { imageHash, kernelMountsOf, leaveDirty, Loops, sh, type Loop } from '../jobs/helpers-devices.js';
import { errorCode, makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

type Name = 'plain' | 'ext4' | 'xfs' | 'dirty';

describe('external disks over the API (loop devices, root)', () => {
  let lab: ServerLab;
  let usbLab: ServerLab;
  let loops: Loops;
  let usbDir = '';
  const disks = {} as Record<Name, Loop>;
  const ids = {} as Record<Exclude<Name, 'plain'>, string>;
  const label = `cvapi${Math.random().toString(36).slice(2, 6)}`;
  const ext4 =
    (l: string) =>
    (dev: string): void =>
      void sh('mkfs.ext4', ['-q', '-F', '-L', l, dev]);
  const initOn = async (dir: string): Promise<string> => {
    expect((await cli(['datastore', 'init', dir])).code).toBe(0);
    return (JSON.parse(readFileSync(join(dir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id;
  };
  /** Our disks' entries in mountinfo (other tests mount and unmount meanwhile). */
  const ourMounts = async (): Promise<MountEntry[]> => {
    const paths = Object.values(disks).map((d) => d.path);
    return (await readMounts()).filter((m) => paths.includes(m.source) || m.mountpoint.startsWith(loops.work) || m.mountpoint.includes('coldvault-probe-'));
  };
  const readOnlyFlag = (d: Loop): string => readFileSync(`/sys/class/block/${basename(d.path)}/ro`, 'utf8').trim();

  beforeAll(async () => {
    lab = await makeServerLab();
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-api-dev-')));
    disks.plain = loops.make('plain', '64M', ext4(label));
    disks.ext4 = loops.make('ext4', '64M', ext4(`${label}e`));
    disks.xfs = loops.make('xfs', '320M', (dev) => void sh('mkfs.xfs', ['-q', '-f', dev]));
    disks.dirty = loops.make('dirty', '160M', ext4(`${label}d`));
    ids.ext4 = await loops.byHand(disks.ext4, initOn);
    ids.xfs = await loops.byHand(disks.xfs, initOn);
    // a datastore with a backup of guest 101, then a power cut: its journal has something to replay
    await leaveDirty(disks.dirty, loops.work, async (dir) => {
      ids.dirty = await initOn(dir);
      const b = await cli(['backup', '101', '--store', dir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
      expect(b.code, b.stderr).toBe(0);
    });
    // a second server whose datastore 'usb' is the folder a disk is mounted on for a restore; it shares
    // the guests and the storage of the first lab's guest 101
    usbDir = join(loops.work, 'usb');
    usbLab = await makeServerLab({ config: { datastores: { usb: usbDir }, guestsDir: lab.guestsDir, storages: { local: lab.storageDir } } });
  });

  afterAll(async () => {
    await loops?.cleanup();
    await usbLab?.close();
    await lab?.close();
  });

  it('GET /api/v1/devices?all=true lists the disks (path, filesystem, label, UUID) and mounts nothing', async () => {
    const mountsBefore = await ourMounts();
    const logged = { ext4: kernelMountsOf(disks.ext4.uuid), xfs: kernelMountsOf(disks.xfs.uuid), dirty: kernelMountsOf(disks.dirty.uuid) };
    const res = await lab.api('GET', '/api/v1/devices?all=true');
    expect(res.statusCode, res.body).toBe(200);
    const listed = res.json() as Array<Record<string, unknown>>;
    expect(
      {
        ext4: kernelMountsOf(disks.ext4.uuid),
        xfs: kernelMountsOf(disks.xfs.uuid),
        dirty: kernelMountsOf(disks.dirty.uuid),
      },
      'the kernel logged no mount of the disks',
    ).toEqual(logged);
    expect(await ourMounts()).toEqual(mountsBefore);
    expect(listed.find((d) => d.path === disks.plain.path)).toMatchObject({ fstype: 'ext4', label, uuid: disks.plain.uuid, type: 'loop' });
    expect(listed.find((d) => d.path === disks.xfs.path)).toMatchObject({ fstype: 'xfs', uuid: disks.xfs.uuid });
    for (const d of listed) expect(d).not.toHaveProperty('datastore'); // whose datastore: only POST /api/v1/devices/probe says
    const plain = await lab.api('GET', '/api/v1/devices');
    expect(plain.statusCode).toBe(200);
    expect(
      (plain.json() as Array<{ path: string }>).some((d) => d.path.startsWith('/dev/loop')),
      'loop devices only with all',
    ).toBe(false);
  });

  it('POST /api/v1/devices/probe names the datastore on each disk; each was mounted read-only for a moment, and no byte changed', async () => {
    const hashes = Object.fromEntries(Object.entries(disks).map(([n, d]) => [n, imageHash(d)]));
    // only our disks: the others' loop devices on this machine are not ours to mount
    const res = await lab.api('POST', '/api/v1/devices/probe', {
      devices: [disks.plain.path, `UUID=${disks.ext4.uuid}`, disks.xfs.path, `UUID=${disks.dirty.uuid}`],
    });
    expect(res.statusCode, res.body).toBe(200);
    const found = Object.fromEntries((res.json() as Array<{ path: string; datastore: unknown; probeError?: string }>).map((d) => [d.path, d]));
    expect(Object.keys(found).sort()).toEqual(
      Object.values(disks)
        .map((d) => d.path)
        .sort(),
    );
    expect(found[disks.plain.path]).toMatchObject({ datastore: null });
    expect(found[disks.ext4.path]).toMatchObject({ datastore: { id: ids.ext4 } });
    expect(found[disks.xfs.path]).toMatchObject({ datastore: { id: ids.xfs } });
    expect(found[disks.dirty.path]).toMatchObject({ datastore: { id: ids.dirty } });
    for (const d of Object.values(disks)) expect(found[d.path]?.probeError, d.path).toBeUndefined();
    expect(await ourMounts()).toEqual([]);
    expect(Object.fromEntries(Object.entries(disks).map(([n, d]) => [n, imageHash(d)]))).toEqual(hashes);
    expect(Object.values(disks).map(readOnlyFlag), 'the block devices are writable again').toEqual(['0', '0', '0', '0']);
  });

  it('POST /api/v1/restore with fromDevice restores from a disk left with a journal to replay, and its image stays byte-identical', async () => {
    const before = imageHash(disks.dirty);
    const res = await usbLab.api('POST', '/api/v1/restore', { fromDevice: `UUID=${disks.dirty.uuid}`, fromPath: 'usb', id: '101', version: 1, newId: '301' });
    expect(res.statusCode, res.body).toBe(202);
    const { taskId } = res.json() as { taskId: string };
    const task = await waitTask(usbLab, taskId);
    expect(task.status).toBe('ok');
    expect(sha256File(join(lab.storageDir, 'images', '301', 'vm-301-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    expect(imageHash(disks.dirty), 'the disk image after the restore').toBe(before);
    expect(await ourMounts()).toEqual([]);
    const log = ((await usbLab.api('GET', `/api/v1/tasks/${taskId}/log`)).json() as Array<{ message?: string } | string>)
      .map((l) => JSON.stringify(l))
      .join('\n');
    expect(log).toContain('without journal replay: the disk is not changed');
    expect(log).toContain('was not cleanly unmounted');
  });

  it('a restore whose fromPath is a datastore in use is refused (409) naming the folder and why; nothing is mounted', async () => {
    mkdirSync(usbDir, { recursive: true });
    const folderId = await initOn(usbDir);
    const lock = await new LockDir(join(usbDir, 'locks')).acquire('guest-101', 'a backup of guest 101');
    const body = { fromDevice: `UUID=${disks.ext4.uuid}`, fromPath: 'usb', id: '101', version: 1, newId: '302' };
    try {
      const res = await usbLab.api('POST', '/api/v1/restore', body);
      expect(res.statusCode, res.body).toBe(409);
      expect(errorCode(res)).toBe('DEVICE_MOUNT_FAILED');
      expect(res.body).toContain(`'${usbDir}' is a datastore in use: its lock guest-101.lock is held by a backup of guest 101`);
    } finally {
      await lock.release();
    }
    const res = await usbLab.api('POST', '/api/v1/restore', body);
    expect(res.statusCode, res.body).toBe(409);
    expect(res.body).toContain(`'${usbDir}' holds datastore ${folderId}, not the disk's (it holds ${ids.ext4})`);
    expect(await ourMounts()).toEqual([]);
  });

  it('a job may name its device by UUID= or LABEL=; a path outside /dev is refused', async () => {
    const base = { store: lab.storeDir, vmid: ['101'] };
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'byuuid', ...base, device: 'UUID=0a1b2c3d-0000-4000-8000-000000000000' })).statusCode).toBe(201);
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'bylabel', ...base, device: `LABEL=${label}`, initDevice: true })).statusCode).toBe(201);
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'bypath', ...base, device: '/etc/passwd' })).statusCode).toBe(400);
    // rotated disks: a comma list, every entry checked
    expect(
      (await lab.api('POST', '/api/v1/jobs', { id: 'rotated', ...base, device: `UUID=0a1b2c3d-0000-4000-8000-000000000000,LABEL=${label}` })).statusCode,
    ).toBe(201);
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'rotbad', ...base, device: `LABEL=${label},/etc/passwd` })).statusCode).toBe(400);
  });

  it('needs auth and refuses unknown parameters', async () => {
    expect((await lab.api('GET', '/api/v1/devices', undefined, {})).statusCode).toBe(401);
    expect((await lab.api('POST', '/api/v1/devices/probe', {}, {})).statusCode).toBe(401);
    expect((await lab.api('GET', '/api/v1/devices?bogus=1')).statusCode).toBe(400);
    expect((await lab.api('POST', '/api/v1/devices/probe', { bogus: 1 })).statusCode).toBe(400);
    expect(errorCode(await lab.api('POST', '/api/v1/devices/probe', { devices: ['/etc/passwd'] }))).toBe('PATH_NOT_ALLOWED');
    expect(errorCode(await lab.api('POST', '/api/v1/devices/probe', { devices: ['UUID=00000000-dead-beef-0000-000000000000'] }))).toBe('DEVICE_NOT_FOUND');
  });
});
