import { describe, expect, it } from 'vitest';
import { archivedConfigText, parseGuestConfig, printGuestConfig, selectBackupDisks, type GuestConfig } from '../../src/guests/index.js';
import { listConfigFixtures, readFixture } from './fixtures.js';

const parse = (text: string): GuestConfig => parseGuestConfig(text, 'guest 101');

function summary(config: GuestConfig): string {
  const { included, excluded } = selectBackupDisks(config);
  const inc = included.map((d) => `${d.key}=${d.volume}[${d.format}]`);
  const exc = excluded.map((d) => `-${d.key}(${d.reason})`);
  return [...inc, ...exc].join(' ') || '(none)';
}

describe('selectBackupDisks on the fixtures', () => {
  it('is stable: the same after print -> parse, and as recorded', () => {
    const lines = listConfigFixtures().map((name) => {
      const config = parseGuestConfig(readFixture(name), name);
      const again = parseGuestConfig(printGuestConfig(config), name);
      expect(selectBackupDisks(again)).toEqual(selectBackupDisks(config));
      return `${name}: ${summary(config)}`;
    });
    expect(lines.join('\n')).toMatchSnapshot();
  });

  it('includes the efidisk with OVMF, skips the ISO cdrom', () => {
    const config = parseGuestConfig(readFixture('parse-config-input/regular-vm-efi.conf'), 'g');
    expect(selectBackupDisks(config)).toEqual({
      included: [
        { key: 'scsi0', volume: 'rbdkvm:vm-139-disk-1', storage: 'rbdkvm', volname: 'vm-139-disk-1', format: 'raw' },
        { key: 'efidisk0', volume: 'mydir:139/vm-139-disk-0.qcow2', storage: 'mydir', volname: '139/vm-139-disk-0.qcow2', format: 'qcow2' },
      ],
      excluded: [],
    });
  });
});

describe('selectBackupDisks rules', () => {
  it('skips cdroms, `none` and `cdrom`, excludes backup=0 and an efidisk without OVMF, in Proxmox order', () => {
    const config = parse(
      [
        'virtio0: local:101/vm-101-disk-3.qcow2',
        'efidisk0: local:101/vm-101-disk-9.raw,efitype=4m',
        'tpmstate0: local-lvm:vm-101-disk-8,version=v2.0',
        'scsi10: local:101/vm-101-disk-2.vmdk,backup=off',
        'scsi2: /dev/disk/by-id/ata-X,format=raw,backup=1',
        'sata1: local:101/vm-101-disk-4.img',
        'ide2: local:iso/debian.iso,media=cdrom',
        'cdrom: none,media=cdrom',
        'ide0: none',
        'ide3: cdrom',
        'ide1: nfs:101/vm-101-disk-5.qcow2,format=raw',
      ].join('\n'),
    );
    const { included, excluded } = selectBackupDisks(config);
    expect(included.map((d) => [d.key, d.format, d.storage])).toEqual([
      ['ide1', 'raw', 'nfs'],
      ['sata1', 'raw', 'local'],
      ['scsi2', 'raw', null],
      ['virtio0', 'qcow2', 'local'],
      ['tpmstate0', 'raw', 'local-lvm'],
    ]);
    expect(excluded).toEqual([
      { key: 'scsi10', volume: 'local:101/vm-101-disk-2.vmdk', reason: 'backup=no' },
      { key: 'efidisk0', volume: 'local:101/vm-101-disk-9.raw', reason: 'efidisk but no OMVF BIOS' },
    ]);
  });

  it('reads the main section only, and file=/volume= forms', () => {
    const config = parse('scsi0: file=local:101/a.qcow2,cache=none\nvirtio1: cache=none,volume=/x/b.raw\n\n[snap]\nscsi1: local:101/old.raw\n');
    expect(selectBackupDisks(config).included.map((d) => [d.key, d.volume, d.format])).toEqual([
      ['scsi0', 'local:101/a.qcow2', 'qcow2'],
      ['virtio1', '/x/b.raw', 'raw'],
    ]);
  });
});

describe('archivedConfigText', () => {
  it('keeps the main section as written, without lock/parent/unused', () => {
    const text = readFixture('parse-config-input/locked.conf');
    const archived = archivedConfigText(parse(text));
    expect(archived).toBe(text.replace(/^(lock|unused7): .*\n/gm, ''));
    expect(archived).toMatch(/^# locked\n/);
  });

  it('drops pending, special and snapshot sections and the blank line before them', () => {
    const archived = archivedConfigText(parse(readFixture('parse-config-input/sections.conf')));
    expect(archived).not.toMatch(/\[|parent:|unused0:|snaptime/);
    expect(archived.endsWith('vmgenid: 7079e97c-50e3-4079-afe7-23e67566b946\n')).toBe(true);
    expect(archived.trimEnd().split('\n')).toHaveLength(16);
  });

  it('drops stray #qmdump# lines; an empty config archives as empty text', () => {
    expect(archivedConfigText(parse('#qmdump#map:scsi0:drive-scsi0:local:raw:\ncores: 1'))).toBe('cores: 1\n');
    expect(archivedConfigText(parse(''))).toBe('');
  });
});
