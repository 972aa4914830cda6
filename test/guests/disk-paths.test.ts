/**
 * The path rule (src/guests/disk-paths.ts) on real files made at run time: which disks a backup may
 * read, which folders a restore may write, and the allowDiskPaths patterns. The CLI, job and API
 * paths through it are tested in test/cli/disk-paths*.test.ts and test/server/restore-paths.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDiskPathPattern, checkRestoreTargets, resolveBackupDisk } from '../../src/guests/index.js';

let root = '';
let vz = '';
let outside = '';
const rule = (allowDiskPaths: string[] = []) => ({ storages: { local: vz }, allowDiskPaths });
const resolve = (volume: string, allow: string[] = []): Promise<string> => resolveBackupDisk({ key: 'scsi0', volume }, '101', rule(allow));

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'cv-diskpaths-'));
  vz = join(root, 'vz');
  outside = join(root, 'outside');
  mkdirSync(join(vz, 'images', '101'), { recursive: true });
  mkdirSync(join(vz, 'shared'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(vz, 'images', '101', 'vm-101-disk-0.raw'), 'disk');
  writeFileSync(join(vz, 'shared', 'base.raw'), 'base');
  writeFileSync(join(outside, 'secret.raw'), 'secret');
  symlinkSync('../../shared/base.raw', join(vz, 'images', '101', 'inside.raw'));
  symlinkSync('/etc/shadow', join(vz, 'images', '101', 'shadow.raw'));
  symlinkSync(join(outside, 'secret.raw'), join(vz, 'images', '101', 'secret.raw'));
  symlinkSync(join(vz, 'images', '101'), join(outside, 'link-into-storage'));
  execFileSync('mkfifo', [join(vz, 'images', '101', 'fifo.raw')]);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('a disk for backup', () => {
  it('is read from a regular file in a storage, and through a symlink that stays in the storage', async () => {
    expect(await resolve('local:101/vm-101-disk-0.raw')).toBe(join(vz, 'images', '101', 'vm-101-disk-0.raw'));
    expect(await resolve('local:101/inside.raw')).toBe(join(vz, 'shared', 'base.raw'));
    expect(await resolve(join(outside, 'link-into-storage', 'vm-101-disk-0.raw'))).toBe(join(vz, 'images', '101', 'vm-101-disk-0.raw'));
  });

  it('is refused outside the storages, naming disk, volume, guest, real path and rule', async () => {
    await expect(resolve('/etc/shadow')).rejects.toMatchObject({
      code: 'DISK_PATH_NOT_ALLOWED',
      message: `backing up disk 'scsi0' of guest 101 (volume '/etc/shadow') refused: its real path '/etc/shadow' lies outside every storage (local: ${vz}) and matches no allowDiskPaths pattern (none)`,
    });
    await expect(resolve(join(outside, 'secret.raw'))).rejects.toMatchObject({ code: 'DISK_PATH_NOT_ALLOWED' });
  });

  it('is refused when a symlink in a storage leads out of it', async () => {
    await expect(resolve('local:101/shadow.raw')).rejects.toMatchObject({
      code: 'DISK_PATH_NOT_ALLOWED',
      message: expect.stringContaining(`its real path '/etc/shadow' (from '${join(vz, 'images', '101', 'shadow.raw')}') lies outside every storage`),
    });
    await expect(resolve('local:101/secret.raw')).rejects.toMatchObject({ code: 'DISK_PATH_NOT_ALLOWED' });
  });

  it('is refused under /proc and /sys, and when a character device, FIFO or folder, even when allowed', async () => {
    const all = ['/**'];
    await expect(resolve('/proc/self/environ', all)).rejects.toMatchObject({
      code: 'DISK_PATH_SPECIAL',
      message: expect.stringContaining('under /proc or /sys'),
    });
    await expect(resolve('/sys/kernel/notes', all)).rejects.toMatchObject({ code: 'DISK_PATH_SPECIAL' });
    for (const dev of ['/dev/null', '/dev/zero']) {
      await expect(resolve(dev, all)).rejects.toMatchObject({ code: 'DISK_PATH_SPECIAL', message: expect.stringContaining('is a character device') });
    }
    await expect(resolve('local:101/fifo.raw')).rejects.toMatchObject({ code: 'DISK_PATH_SPECIAL', message: expect.stringContaining('is a FIFO') });
    await expect(resolve(join(vz, 'images', '101'))).rejects.toMatchObject({ code: 'DISK_PATH_SPECIAL', message: expect.stringContaining('is a directory') });
  });

  it('outside the storages is read when its real path matches allowDiskPaths; a regular file under /dev never is', async () => {
    expect(await resolve(join(outside, 'secret.raw'), [`${outside}/*.raw`])).toBe(join(outside, 'secret.raw'));
    // the link's own name matching does not carry a regular file out of the storage
    await expect(resolve('local:101/shadow.raw', [`${vz}/**`])).rejects.toMatchObject({ code: 'DISK_PATH_NOT_ALLOWED' });
    const shm = mkdtempSync('/dev/shm/cv-diskpaths-');
    try {
      writeFileSync(join(shm, 'disk.raw'), 'x');
      await expect(resolve(join(shm, 'disk.raw'), ['/dev/**'])).rejects.toMatchObject({
        code: 'DISK_PATH_NOT_ALLOWED',
        message: expect.stringContaining('is under /dev, where only a block device'),
      });
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });

  it('a block device: fine inside a storage; outside, allowed by its real path or by the name of the link that leads to it', async () => {
    // device nodes made with mknod (root; only stat'ed, never read): the rule judges what a path is, not its contents
    const inStorage = join(vz, 'images', '101', 'node.raw');
    const byId = join(root, 'by-id');
    mkdirSync(byId);
    execFileSync('mknod', [inStorage, 'b', '7', '0']);
    execFileSync('mknod', [join(outside, 'dev-node'), 'b', '7', '0']);
    symlinkSync(join(outside, 'dev-node'), join(byId, 'disk-a'));
    symlinkSync(join(outside, 'secret.raw'), join(byId, 'file-b'));
    expect(await resolve('local:101/node.raw')).toBe(inStorage);
    await expect(resolve(join(byId, 'disk-a'))).rejects.toMatchObject({ code: 'DISK_PATH_NOT_ALLOWED' });
    expect(await resolve(join(byId, 'disk-a'), [`${byId}/*`])).toBe(join(outside, 'dev-node'));
    expect(await resolve(join(outside, 'dev-node'), [`${outside}/dev-*`])).toBe(join(outside, 'dev-node'));
    // the same link pattern does not let a link lead to a regular file
    await expect(resolve(join(byId, 'file-b'), [`${byId}/*`])).rejects.toMatchObject({ code: 'DISK_PATH_NOT_ALLOWED' });
  });

  it('that does not exist is DISK_MISSING, naming its path', async () => {
    const missing = join(vz, 'images', '101', 'nope.raw');
    await expect(resolve('local:101/nope.raw')).rejects.toMatchObject({
      code: 'DISK_MISSING',
      message: `disk 'scsi0' of guest 101: image '${missing}' does not exist`,
    });
  });
});

describe('a restore target', () => {
  const target = (folder: string) => new Map([['scsi0', { volume: 'local:201/vm-201-disk-0.raw', path: join(folder, 'vm-201-disk-0.raw') }]]);

  it('is fine in the storage, also when its folder does not exist yet', async () => {
    await expect(checkRestoreTargets('201', target(join(vz, 'images', '201')), { local: vz })).resolves.toBeUndefined();
    await expect(checkRestoreTargets('201', target(join(root, 'new-vz', 'images', '201')), { local: join(root, 'new-vz') })).resolves.toBeUndefined();
  });

  it('is refused when its folder, or a dangling link in its way, leads out of the target storage', async () => {
    const store = join(root, 'vz-linked');
    mkdirSync(join(store, 'images'), { recursive: true });
    symlinkSync(outside, join(store, 'images', '201'));
    symlinkSync(join(outside, 'not-yet'), join(store, 'images', '202'));
    await expect(checkRestoreTargets('201', target(join(store, 'images', '201')), { local: store })).rejects.toMatchObject({
      code: 'DISK_PATH_NOT_ALLOWED',
      message: `restoring disk 'scsi0' of guest 201 to 'local:201/vm-201-disk-0.raw' refused: its folder '${join(store, 'images', '201')}' resolves to '${outside}', outside the target storage 'local' ('${store}'); a restore writes only inside its target storage`,
    });
    const dangling = new Map([['scsi0', { volume: 'local:202/vm-202-disk-0.raw', path: join(store, 'images', '202', 'vm-202-disk-0.raw') }]]);
    await expect(checkRestoreTargets('202', dangling, { local: store })).rejects.toMatchObject({
      code: 'DISK_PATH_NOT_ALLOWED',
      message: expect.stringContaining(`resolves to '${join(outside, 'not-yet')}'`),
    });
  });
});

describe('allowDiskPaths patterns', () => {
  const allowed = async (path: string, pattern: string): Promise<boolean> =>
    resolveBackupDisk({ key: 'scsi0', volume: path }, '101', { storages: {}, allowDiskPaths: [pattern] }).then(
      () => true,
      () => false,
    );

  it('* and ? stay within one segment, ** crosses segments', async () => {
    const file = join(outside, 'secret.raw');
    expect(await allowed(file, `${outside}/*`)).toBe(true);
    expect(await allowed(file, `${outside}/secret.ra?`)).toBe(true);
    expect(await allowed(file, `${root}/*`)).toBe(false);
    expect(await allowed(file, `${root}/**`)).toBe(true);
    expect(await allowed(file, `${root}/*/*.raw`)).toBe(true);
    expect(await allowed(file, `${outside}/secret.raw.*`)).toBe(false);
  });

  it('treat regular-expression characters as themselves, and the path as normalised', async () => {
    const dotted = join(outside, 'a+b(1).raw');
    writeFileSync(dotted, 'x');
    expect(await allowed(dotted, `${outside}/a+b(1).raw`)).toBe(true);
    expect(await allowed(join(outside, 'aab(1)xraw'), `${outside}/a+b(1).raw`)).toBe(false);
    expect(await allowed(join(outside, '..', 'outside', 'secret.raw'), `${outside}/secret.raw`)).toBe(true);
  });

  it('must be absolute and normal (checked when the config is read)', () => {
    expect(checkDiskPathPattern('/dev/disk/by-id/*', 'cfg')).toBe('/dev/disk/by-id/*');
    for (const bad of ['dev/sda', '/', '/dev/../etc/*', '/dev//sda', '/dev/zvol/', '', 5]) {
      expect(() => checkDiskPathPattern(bad, 'config file x: allowDiskPaths')).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('config file x: allowDiskPaths') }),
      );
    }
  });
});
