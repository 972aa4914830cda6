/**
 * GET /api/v1/devices on a real loop device (as root, as CI runs): the job form's and the Restore
 * tab's "external device" choice lists the disk with its filesystem, label and UUID; a job may name
 * its device by UUID=; auth and unknown query parameters are refused like everywhere else.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File } from '../helpers/fixtures.js';
import { makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

describe('GET /api/v1/devices', () => {
  let lab: ServerLab;
  let usbLab: ServerLab;
  let work = '';
  let dev = '';
  const label = `cvapi${Math.random().toString(36).slice(2, 6)}`;

  beforeAll(async () => {
    lab = await makeServerLab();
    work = mkdtempSync(join(tmpdir(), 'cv-api-dev-'));
    const img = join(work, 'disk.img');
    sh('truncate', ['-s', '160M', img]);
    dev = sh('losetup', ['--find', '--show', img]);
    sh('mkfs.ext4', ['-q', '-F', '-L', label, dev]);
    // a second server whose datastore 'usb' is the folder the disk is mounted on for a restore; it shares
    // the guests and the storage of the first lab's guest 101
    usbLab = await makeServerLab({ config: { datastores: { usb: join(work, 'usb') }, guestsDir: lab.guestsDir, storages: { local: lab.storageDir } } });
  });

  afterAll(async () => {
    if (dev) sh('losetup', ['-d', dev]);
    rmSync(work, { recursive: true, force: true });
    await usbLab?.close();
    await lab?.close();
  });

  it('lists the loop device with ?all=true: path, filesystem, label, UUID, no datastore', async () => {
    const res = await lab.api('GET', '/api/v1/devices?all=true');
    expect(res.statusCode, res.body).toBe(200);
    const mine = (res.json() as Array<{ path: string; fstype: string; label: string; uuid: string; datastore: unknown }>).find((d) => d.path === dev);
    expect(mine).toMatchObject({ fstype: 'ext4', label, datastore: null });
    expect(mine?.uuid).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a job may name its device by UUID= or LABEL=; a path outside /dev is refused', async () => {
    const base = { store: lab.storeDir, vmid: ['101'] };
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'byuuid', ...base, device: 'UUID=0a1b2c3d-0000-4000-8000-000000000000' })).statusCode).toBe(201);
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'bylabel', ...base, device: `LABEL=${label}`, initDevice: true })).statusCode).toBe(201);
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'bypath', ...base, device: '/etc/passwd' })).statusCode).toBe(400);
    // rotated disks: a comma list, every entry checked
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'rotated', ...base, device: `UUID=0a1b2c3d-0000-4000-8000-000000000000,LABEL=${label}` })).statusCode).toBe(201);
    expect((await lab.api('POST', '/api/v1/jobs', { id: 'rotbad', ...base, device: `LABEL=${label},/etc/passwd` })).statusCode).toBe(400);
  });

  it('POST /api/v1/restore with fromDevice mounts the disk read-only on fromPath, restores, unmounts', async () => {
    const mnt = join(work, 'usb');
    mkdirSync(mnt);
    sh('mount', [dev, mnt]);
    try {
      expect((await cli(['datastore', 'init', mnt])).code).toBe(0);
      const b = await cli(['backup', '101', '--store', mnt, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
      expect(b.code, b.stderr).toBe(0);
    } finally {
      sh('umount', [mnt]);
    }
    const uuid = sh('blkid', ['-s', 'UUID', '-o', 'value', '-p', dev]);
    const res = await usbLab.api('POST', '/api/v1/restore', { fromDevice: `UUID=${uuid}`, fromPath: 'usb', id: '101', version: 1, newId: '301' });
    expect(res.statusCode, res.body).toBe(202);
    const task = await waitTask(usbLab, (res.json() as { taskId: string }).taskId);
    expect(task.status).toBe('ok');
    expect(sha256File(join(lab.storageDir, 'images', '301', 'vm-301-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(` ${mnt} `);
  });

  it('needs auth and refuses unknown parameters', async () => {
    expect((await lab.api('GET', '/api/v1/devices', undefined, {})).statusCode).toBe(401);
    expect((await lab.api('GET', '/api/v1/devices?bogus=1')).statusCode).toBe(400);
  });
});
