import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configValue, guestConfigPath, listGuestIds, parseVolume, readGuestConfig, resolveVolumePath } from '../../src/guests/index.js';

const storages = { local: '/var/lib/vz', 'local-lvm': '/dev/pve', 'usb.1': '/mnt/usb' };

describe('parseVolume', () => {
  it('splits storage volumes and leaves paths alone', () => {
    expect(parseVolume('local:101/vm-101-disk-0.raw')).toEqual({ storage: 'local', volname: '101/vm-101-disk-0.raw' });
    expect(parseVolume('local-lvm:vm-101-disk-0')).toEqual({ storage: 'local-lvm', volname: 'vm-101-disk-0' });
    expect(parseVolume('/dev/sdb')).toEqual({ storage: null, volname: '/dev/sdb' });
    expect(parseVolume('/mnt/a:b.raw')).toEqual({ storage: null, volname: '/mnt/a:b.raw' });
    expect(parseVolume('none')).toEqual({ storage: null, volname: 'none' });
  });
});

describe('resolveVolumePath', () => {
  it('maps dir-storage volumes, block-style names and paths', () => {
    expect(resolveVolumePath('local:101/vm-101-disk-0.raw', storages)).toBe('/var/lib/vz/images/101/vm-101-disk-0.raw');
    expect(resolveVolumePath('local-lvm:vm-101-disk-0', storages)).toBe('/dev/pve/vm-101-disk-0');
    expect(resolveVolumePath('usb.1:100/base-100-disk-0.qcow2/101/vm-101-disk-1.qcow2', storages)).toBe('/mnt/usb/images/101/vm-101-disk-1.qcow2');
    expect(resolveVolumePath('local:iso/debian.iso', storages)).toBe('/var/lib/vz/template/iso/debian.iso');
    expect(resolveVolumePath('/dev/disk/by-id/ata-X', storages)).toBe('/dev/disk/by-id/ata-X');
  });

  it('names the volume and the known storages for an unknown storage', () => {
    const call = (): string => resolveVolumePath('nas:101/vm-101-disk-0.raw', storages);
    expect(call).toThrow("resolving volume 'nas:101/vm-101-disk-0.raw' failed: unknown storage 'nas' (known: local, local-lvm, usb.1)");
    expect(call).toThrow(expect.objectContaining({ code: 'STORAGE_UNKNOWN' }));
    expect(() => resolveVolumePath('toString:vm-1', {})).toThrow(/unknown storage 'toString' \(known: none\)/);
  });

  it('refuses what is neither a volume nor a path, and escapes from the storage', () => {
    for (const volume of ['none', 'relative/file.raw', 'local:101/../../etc/shadow', 'local:vztmpl/a/b.tar']) {
      expect(() => resolveVolumePath(volume, storages)).toThrow(expect.objectContaining({ code: 'DISK_UNSUPPORTED' }));
    }
  });
});

describe('guest config files', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coldvault-guests-'));
    await writeFile(join(dir, '101.conf'), 'name: web\nscsi0: local:101/vm-101-disk-0.raw\n');
    await writeFile(join(dir, '1000.conf'), 'name: big\n');
    await writeFile(join(dir, '200.conf'), 'name: mid\n');
    await writeFile(join(dir, '99.conf'), 'name: too-small-id\n');
    await writeFile(join(dir, '300.conf.tmp'), '');
    await writeFile(join(dir, '400.conf'), 'name: bad\nnonsense\n');
    await mkdir(join(dir, '500.conf'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lists guest ids numerically, skipping other names and folders', async () => {
    expect(await listGuestIds(dir)).toEqual(['101', '200', '400', '1000']);
  });

  it('reads and parses a config', async () => {
    const guest = await readGuestConfig(dir, '101');
    expect(guest.path).toBe(join(dir, '101.conf'));
    expect(guest.text).toBe('name: web\nscsi0: local:101/vm-101-disk-0.raw\n');
    expect(configValue(guest.config, 'name')).toBe('web');
  });

  it('reports a missing guest as GUEST_NOT_FOUND', async () => {
    const read = readGuestConfig(dir, '102');
    await expect(read).rejects.toThrow(`guest 102 not found: no config ${join(dir, '102.conf')}`);
    await expect(readGuestConfig(dir, '102')).rejects.toMatchObject({ code: 'GUEST_NOT_FOUND' });
  });

  it('names guest and file for a malformed config, IO for a directory, USAGE for a bad id', async () => {
    await expect(readGuestConfig(dir, '400')).rejects.toMatchObject({
      code: 'GUEST_CONFIG_MALFORMED',
      message: `cannot parse guest 400 (${join(dir, '400.conf')}) line 2: expected 'key: value', got 'nonsense'`,
    });
    await expect(readGuestConfig(dir, '500')).rejects.toMatchObject({ code: 'IO', message: expect.stringMatching(/EISDIR/) });
    await expect(readGuestConfig(dir, '../101')).rejects.toMatchObject({ code: 'USAGE' });
    expect(() => guestConfigPath(dir, '12')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(guestConfigPath('/etc/pve/qemu-server', '101')).toBe('/etc/pve/qemu-server/101.conf');
  });

  it('fails listing a missing folder with IO', async () => {
    await expect(listGuestIds(join(dir, 'missing'))).rejects.toMatchObject({ code: 'IO', message: expect.stringMatching(/ENOENT/) });
  });
});
