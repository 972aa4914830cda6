import { describe, expect, it } from 'vitest';
import { allocateRestoreVolumes, macAddressesOf, parseGuestConfig, rewriteConfigForRestore } from '../../src/guests/index.js';
import { readFixture } from './fixtures.js';

const MAP_LINE = /^#qmdump#map:([^:]+):drive-[^:]+:([^:]*):([^:]*):$/gm;

/** A deterministic random source: bytes 0, 1, 2, ... continuing across calls. */
function counter(start = 0): (n: number) => Buffer {
  let next = start;
  return (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff));
}

function restoreFixture(id: string): string {
  const input = readFixture(`restore-config-input/${id}.conf`);
  const disks = [...input.matchAll(MAP_LINE)].map((m) => ({ key: m[1] ?? '', format: m[3] ?? '', storage: 'target' }));
  const allocated = allocateRestoreVolumes({
    newId: id,
    disks,
    storages: { target: '/srv/target' },
    existingFiles: () => [],
  });
  const volumes = new Map([...allocated].map(([key, v]) => [key, v.volume]));
  return rewriteConfigForRestore(input, { volumes, unique: false });
}

describe('qmrestore fixtures', () => {
  it.each(['139', '142', '1422', '179'])('%s.conf rewrites exactly as qmrestore', (id) => {
    expect(restoreFixture(id)).toBe(readFixture(`restore-config-expected/${id}.conf`));
  });
});

describe('allocateRestoreVolumes', () => {
  const storages = { local: '/var/lib/vz', usb: '/mnt/usb' };

  it('takes the lowest free numbers in sorted key order, skipping existing files', () => {
    const seen: string[] = [];
    const result = allocateRestoreVolumes({
      newId: '105',
      disks: [
        { key: 'virtio0', format: 'qcow2', storage: 'local' },
        { key: 'efidisk0', format: 'raw', storage: 'local' },
        { key: 'scsi0', format: 'vmdk', storage: 'usb' },
        { key: 'sata1', format: '', storage: 'local' },
      ],
      storages,
      existingFiles: (dir) => {
        seen.push(dir);
        return dir === '/var/lib/vz/images/105' ? ['vm-105-disk-0.qcow2', 'base-105-disk-2.raw', 'vm-1050-disk-1.raw', 'notes.txt', 'vm-105-disk-4'] : [];
      },
    });
    expect(Object.fromEntries(result)).toEqual({
      efidisk0: { volume: 'local:105/vm-105-disk-1.raw', path: '/var/lib/vz/images/105/vm-105-disk-1.raw' },
      sata1: { volume: 'local:105/vm-105-disk-3.raw', path: '/var/lib/vz/images/105/vm-105-disk-3.raw' },
      scsi0: { volume: 'usb:105/vm-105-disk-0.vmdk', path: '/mnt/usb/images/105/vm-105-disk-0.vmdk' },
      virtio0: { volume: 'local:105/vm-105-disk-5.qcow2', path: '/var/lib/vz/images/105/vm-105-disk-5.qcow2' },
    });
    expect([...result.keys()]).toEqual(['efidisk0', 'sata1', 'scsi0', 'virtio0']);
    expect(seen).toEqual(['/var/lib/vz/images/105', '/mnt/usb/images/105']);
  });

  it('reuses the volumes of the config being replaced (by volume id or path)', () => {
    const result = allocateRestoreVolumes({
      newId: '105',
      disks: [
        { key: 'scsi0', format: 'raw', storage: 'local' },
        { key: 'scsi1', format: 'raw', storage: 'local' },
      ],
      storages,
      existingFiles: () => ['vm-105-disk-0.raw', 'vm-105-disk-1.qcow2', 'vm-105-disk-2.raw'],
      reusable: new Set(['local:105/vm-105-disk-0.raw', '/var/lib/vz/images/105/vm-105-disk-2.raw']),
    });
    expect([...result.values()].map((v) => v.volume)).toEqual(['local:105/vm-105-disk-0.raw', 'local:105/vm-105-disk-2.raw']);
  });

  it('refuses an unknown storage and a bad guest id', () => {
    const disks = [{ key: 'scsi0', format: 'raw', storage: 'nas' }];
    const unknown = (): unknown => allocateRestoreVolumes({ newId: '105', disks, storages, existingFiles: () => [] });
    expect(unknown).toThrow("allocating a volume for disk scsi0 of guest 105 failed: unknown storage 'nas' (known: local, usb)");
    expect(unknown).toThrow(expect.objectContaining({ code: 'STORAGE_UNKNOWN' }));
    const badId = (): unknown => allocateRestoreVolumes({ newId: '../1', disks, storages, existingFiles: () => [] });
    expect(badId).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('rewriteConfigForRestore', () => {
  const config = [
    '#note',
    'name: web',
    'lock: backup',
    'parent: snap1',
    'unused3: local:101/vm-101-disk-9.raw',
    'scsi0: file=local:101/vm-101-disk-0.qcow2,cache=none,format=qcow2,size=4G',
    'scsi1: local:101/vm-101-disk-1.raw,backup=0,size=1G',
    'ide2: none,media=cdrom',
    'net0: virtio=AA:BB:CC:DD:EE:FF,bridge=vmbr0,firewall=1',
    'net1: bridge=vmbr1,model=e1000,macaddr=12:34:56:78:9a:bc',
    'net2: rtl8139,bridge=vmbr0',
    'smbios1: manufacturer=QUJD,uuid=1819ead7-a55d-4544-8d38-29ca94869a9c,base64=1',
    'vmgenid: 54d1c06c-8f5b-440f-b5b2-6eab1380e13d',
    '#vzdump#something',
    '#qmdump#map:scsi0:drive-scsi0:local:qcow2:',
    '',
    '[snap1]',
    'name: old',
    '',
  ].join('\n');
  const volumes = new Map([['scsi0', 'nas:202/vm-202-disk-0.raw']]);

  it('without unique: new volumes and vmgenid, MACs and smbios1 kept', () => {
    const out = rewriteConfigForRestore(config, { volumes, unique: false, random: counter() });
    expect(out).toBe(
      [
        '#note',
        'name: web',
        'scsi0: file=nas:202/vm-202-disk-0.raw,cache=none,size=4G',
        '#scsi1: local:101/vm-101-disk-1.raw,backup=0,size=1G',
        'ide2: none,media=cdrom',
        'net0: virtio=AA:BB:CC:DD:EE:FF,bridge=vmbr0,firewall=1',
        'net1: bridge=vmbr1,model=e1000,macaddr=12:34:56:78:9a:bc',
        'net2: rtl8139,bridge=vmbr0',
        'smbios1: manufacturer=QUJD,uuid=1819ead7-a55d-4544-8d38-29ca94869a9c,base64=1',
        'vmgenid: 00010203-0405-4607-8809-0a0b0c0d0e0f',
        '',
      ].join('\n'),
    );
  });

  it('with unique: new MACs with the prefix, new smbios1 uuid in place', () => {
    const out = rewriteConfigForRestore(config, { volumes, unique: true, random: counter(0x10), macPrefix: 'bc:24:11' });
    const lines = out.split('\n');
    expect(lines.filter((l) => l.startsWith('net'))).toEqual([
      'net0: virtio=BC:24:11:13:14:15,bridge=vmbr0,firewall=1',
      'net1: bridge=vmbr1,model=e1000,macaddr=BC:24:11:19:1A:1B',
      'net2: rtl8139=BC:24:11:1F:20:21,bridge=vmbr0',
    ]);
    expect(lines).toContain('smbios1: manufacturer=QUJD,uuid=22232425-2627-4829-aa2b-2c2d2e2f3031,base64=1');
    expect(lines).toContain('vmgenid: 32333435-3637-4839-ba3b-3c3d3e3f4041');
    expect(macAddressesOf(parseGuestConfig(out, 'g'))).toEqual(['BC:24:11:13:14:15', 'BC:24:11:19:1A:1B', 'BC:24:11:1F:20:21']);
  });

  it('never hands out an old MAC or one twice', () => {
    const outputs = [
      [0x00, 0, 0, 0xdd, 0xee, 0xff], // 02:00:00:DD:EE:FF, net0's old MAC
      [0x00, 0, 0, 1, 2, 3], // 02:00:00:01:02:03, net1's old MAC
      [0x10, 1, 1, 1, 1, 1], // 12:01:01:01:01:01 -> net0
      [0x10, 1, 1, 1, 1, 1], // again: taken
      [0x20, 2, 2, 2, 2, 2], // 22:02:02:02:02:02 -> net1
    ];
    let i = 0;
    const random = (n: number): Buffer => Buffer.from((outputs[i++] ?? []).slice(0, n));
    const text = 'net0: virtio=02:00:00:DD:EE:FF\nnet1: e1000=02:00:00:01:02:03\n';
    const out = rewriteConfigForRestore(text, { volumes: new Map(), unique: true, macPrefix: '', random });
    expect(out).toBe('net0: virtio=12:01:01:01:01:01\nnet1: e1000=22:02:02:02:02:02\n');
    const stuck = (): unknown => rewriteConfigForRestore(text, { volumes: new Map(), unique: true, macPrefix: '02:00:00', random: () => Buffer.alloc(6) });
    expect(stuck).toThrow(/generating a new MAC address for net1 failed/);
  });

  it('keeps vmgenid 0 and refuses volumes for drives the config lacks, and bad prefixes', () => {
    expect(rewriteConfigForRestore('vmgenid: 0\n', { volumes: new Map(), unique: true })).toBe('vmgenid: 0\n');
    const missing = (): unknown => rewriteConfigForRestore('cores: 1\n', { volumes: new Map([['scsi3', 'x:1']]), unique: false });
    expect(missing).toThrow(/no drive line for scsi3/);
    const bad = (): unknown => rewriteConfigForRestore('cores: 1\n', { volumes: new Map(), unique: true, macPrefix: '01:00' });
    expect(bad).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
