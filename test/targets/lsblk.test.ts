import { describe, expect, it } from 'vitest';
import { parseBlkidExport, parseLsblk } from '../../src/targets/lsblk.js';
import { parseMountinfo } from '../../src/targets/mountinfo.js';
import { selectCandidates } from '../../src/targets/devices.js';
import { devicesTable } from '../../src/cli/commands/devices.js';

// Captured from `lsblk --json --bytes -o NAME,PATH,SIZE,FSTYPE,LABEL,UUID,MODEL,SERIAL,MOUNTPOINT,TYPE,RM,HOTPLUG,TRAN,PKNAME`
// (util-linux 2.38) on a machine with an NVMe system disk, a USB disk with two partitions and a loop device.
const CAPTURED = JSON.stringify({
  blockdevices: [
    {
      name: 'loop0',
      path: '/dev/loop0',
      size: 67108864,
      fstype: 'ext4',
      label: 'cvtest',
      uuid: '0b6d1c1e-8a4f-4a51-9a3c-2f0f5b1d9e11',
      model: null,
      serial: null,
      mountpoint: null,
      type: 'loop',
      rm: false,
      hotplug: false,
      tran: null,
      pkname: null,
    },
    {
      name: 'sda',
      path: '/dev/sda',
      size: 2000398934016,
      fstype: null,
      label: null,
      uuid: null,
      model: 'Elements 25A3',
      serial: 'WX12A3456789',
      mountpoint: null,
      type: 'disk',
      rm: false,
      hotplug: true,
      tran: 'usb',
      pkname: null,
      children: [
        {
          name: 'sda1',
          path: '/dev/sda1',
          size: 1000204886016,
          fstype: 'ntfs',
          label: 'USB-BACKUP',
          uuid: '5A1C2F3D1C2F15D7',
          model: null,
          serial: null,
          mountpoint: null,
          type: 'part',
          rm: false,
          hotplug: true,
          tran: null,
          pkname: 'sda',
        },
        {
          name: 'sda2',
          path: '/dev/sda2',
          size: 1000193000000,
          fstype: 'exfat',
          label: 'MEDIA',
          uuid: '64A1-2B3C',
          model: null,
          serial: null,
          mountpoint: '/media/media',
          type: 'part',
          rm: false,
          hotplug: true,
          tran: null,
          pkname: 'sda',
        },
      ],
    },
    {
      name: 'nvme0n1',
      path: '/dev/nvme0n1',
      size: 512110190592,
      fstype: null,
      label: null,
      uuid: null,
      model: 'Samsung SSD 980',
      serial: 'S64DNF0R123456',
      mountpoint: null,
      type: 'disk',
      rm: false,
      hotplug: false,
      tran: 'nvme',
      pkname: null,
      children: [
        {
          name: 'nvme0n1p1',
          path: '/dev/nvme0n1p1',
          size: 536870912,
          fstype: 'vfat',
          label: null,
          uuid: 'A1B2-C3D4',
          model: null,
          serial: null,
          mountpoint: '/boot/efi',
          type: 'part',
          rm: false,
          hotplug: false,
          tran: 'nvme',
          pkname: 'nvme0n1',
        },
        {
          name: 'nvme0n1p2',
          path: '/dev/nvme0n1p2',
          size: 511571214336,
          fstype: 'ext4',
          label: null,
          uuid: 'c0ffee00-1111-2222-3333-444455556666',
          model: null,
          serial: null,
          mountpoint: '/',
          type: 'part',
          rm: false,
          hotplug: false,
          tran: 'nvme',
          pkname: 'nvme0n1',
        },
        {
          name: 'nvme0n1p3',
          path: '/dev/nvme0n1p3',
          size: 1073741824,
          fstype: 'xfs',
          label: 'spare',
          uuid: 'deadbeef-0000-1111-2222-333344445555',
          model: null,
          serial: null,
          mountpoint: null,
          type: 'part',
          rm: false,
          hotplug: false,
          tran: 'nvme',
          pkname: 'nvme0n1',
        },
      ],
    },
    {
      name: 'sdb',
      path: '/dev/sdb',
      size: '31266439168',
      fstype: 'exfat',
      label: 'STICK',
      uuid: '1234-ABCD',
      model: 'Cruzer Blade',
      serial: '4C530001',
      mountpoint: null,
      type: 'disk',
      rm: '1',
      hotplug: '1',
      tran: 'usb',
      pkname: null,
    },
    {
      name: 'sr0',
      path: '/dev/sr0',
      size: 1073741312,
      fstype: 'iso9660',
      label: 'DEBIAN',
      uuid: '2023-06-10-10-17-41-00',
      model: 'DVD-RW',
      serial: null,
      mountpoint: null,
      type: 'rom',
      rm: true,
      hotplug: false,
      tran: 'sata',
      pkname: null,
    },
  ],
});

describe('parseLsblk', () => {
  const devices = parseLsblk(CAPTURED);

  it('flattens the tree, parents before children', () => {
    expect(devices.map((d) => d.name)).toEqual(['loop0', 'sda', 'sda1', 'sda2', 'nvme0n1', 'nvme0n1p1', 'nvme0n1p2', 'nvme0n1p3', 'sdb', 'sr0']);
  });

  it('types every field; partitions inherit transport, model and serial from their disk', () => {
    const sda1 = devices.find((d) => d.name === 'sda1')!;
    expect(sda1).toEqual({
      name: 'sda1',
      path: '/dev/sda1',
      size: 1000204886016,
      fstype: 'ntfs',
      label: 'USB-BACKUP',
      uuid: '5A1C2F3D1C2F15D7',
      model: 'Elements 25A3',
      serial: 'WX12A3456789',
      mountpoint: null,
      type: 'part',
      removable: false,
      hotplug: true,
      transport: 'usb',
      parent: 'sda',
      hasChildren: false,
    });
    expect(devices.find((d) => d.name === 'sda')!.hasChildren).toBe(true);
  });

  it('accepts the string forms of older lsblk (sizes and flags as strings)', () => {
    const sdb = devices.find((d) => d.name === 'sdb')!;
    expect(sdb).toMatchObject({ size: 31266439168, removable: true, hotplug: true, transport: 'usb' });
  });

  it('rejects what is not lsblk JSON', () => {
    expect(() => parseLsblk('lsblk: failed')).toThrow(/not JSON/);
    expect(() => parseLsblk('{}')).toThrow(/blockdevices/);
  });
});

describe('selectCandidates', () => {
  const devices = parseLsblk(CAPTURED);

  it('by default: unmounted filesystems of USB / hotplug / removable devices only', () => {
    expect(selectCandidates(devices, false).map((d) => d.path)).toEqual(['/dev/sda1', '/dev/sdb']);
  });

  it('with all: also loop devices and fixed disks; never mounted ones, disks without a filesystem or optical drives', () => {
    expect(selectCandidates(devices, true).map((d) => d.path)).toEqual(['/dev/loop0', '/dev/sda1', '/dev/nvme0n1p3', '/dev/sdb']);
  });
});

describe('parseBlkidExport and parseMountinfo', () => {
  it('reads blkid KEY=value lines, unescaping values', () => {
    expect(parseBlkidExport('DEVNAME=/dev/loop0\nLABEL=my\\ disk\nUUID=d6f9\nTYPE=ext4\nUSAGE=filesystem\n')).toEqual({
      DEVNAME: '/dev/loop0',
      LABEL: 'my disk',
      UUID: 'd6f9',
      TYPE: 'ext4',
      USAGE: 'filesystem',
    });
  });

  it("reads mountpoint, its options, fstype, source and the filesystem's options, decoding octal escapes", () => {
    const text = [
      '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
      '98 22 7:0 / /mnt/usb\\040disk ro,nosuid,nodev,noexec,relatime shared:50 - fuseblk /dev/loop0 ro,user_id=0',
    ].join('\n');
    expect(parseMountinfo(text)).toEqual([
      { mountpoint: '/', fstype: 'ext4', source: '/dev/vda', options: ['rw', 'relatime'], superOptions: ['rw'] },
      {
        mountpoint: '/mnt/usb disk',
        fstype: 'fuseblk',
        source: '/dev/loop0',
        options: ['ro', 'nosuid', 'nodev', 'noexec', 'relatime'],
        superOptions: ['ro', 'user_id=0'],
      },
    ]);
  });
});

describe('devicesTable', () => {
  it('prints one aligned row per device, - for what is unknown', () => {
    const table = devicesTable([
      {
        path: '/dev/sda1',
        size: 1000204886016,
        fstype: 'ntfs',
        label: 'USB-BACKUP',
        uuid: '5A1C',
        model: 'Elements',
        serial: 'WX1',
        type: 'part',
        transport: 'usb',
        datastore: { id: 'ab12' },
      },
      {
        path: '/dev/loop0',
        size: 67108864,
        fstype: 'ext4',
        label: null,
        uuid: 'd6f9',
        model: null,
        serial: null,
        type: 'loop',
        transport: null,
        datastore: null,
      },
    ]).split('\n');
    expect(table[0]).toMatch(/^DEVICE\s+SIZE\s+FS\s+LABEL\s+UUID\s+MODEL\s+DATASTORE$/);
    expect(table[1]).toMatch(/^\/dev\/sda1\s+\S+ \S+\s+ntfs\s+USB-BACKUP\s+5A1C\s+Elements WX1\s+ab12$/);
    expect(table[2]).toMatch(/^\/dev\/loop0\s+.*ext4\s+-\s+d6f9\s+-\s+-$/);
  });
});
