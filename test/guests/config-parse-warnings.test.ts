/**
 * A config line over 1 MiB, or a key Proxmox VE does not know in its section, is a warning naming the
 * line and the key, never silence: in the parsed config's `warnings`, and as a WARN in the backup's log
 * (the real CLI). None of the 229 real Proxmox configs (qemu-server's test suite) warns so.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGuestConfig } from '../../src/guests/index.js';
import { imagePath, makeLab, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { backup, initStore } from '../cli/cli-lab.js';
import { listConfigFixtures, readFixture } from './fixtures.js';

const MiB = 1024 * 1024;
const keyOrLength = (warnings: readonly string[]): string[] => warnings.filter((w) => /unknown key|bytes long/.test(w));

describe('the 229 real Proxmox configs', () => {
  const fixtures = listConfigFixtures();
  it('are all there', () => {
    expect(fixtures).toHaveLength(229);
  });

  it.each(fixtures)('%s: no unknown key, no over-long line', (name) => {
    expect(keyOrLength(parseGuestConfig(readFixture(name), name).warnings)).toEqual([]);
  });
});

describe('unknown keys', () => {
  const warningsOf = (text: string): string[] => keyOrLength(parseGuestConfig(text, 'guest 101 (101.conf)').warnings);

  it('in the main section: a warning naming line and key; the line is kept', () => {
    const text = 'cores: 2\nmemroy: 2048\nscsi0: local:101/vm-101-disk-0.raw\nfoo_bar: 1\n';
    expect(warningsOf(text)).toEqual([
      "guest 101 (101.conf) line 2: unknown key 'memroy' in the main section (Proxmox ignores it; kept as written)",
      "guest 101 (101.conf) line 4: unknown key 'foo_bar' in the main section (Proxmox ignores it; kept as written)",
    ]);
    expect(parseGuestConfig(text, 'g').sections[0]?.values.get('memroy')).toBe('2048');
  });

  it('in [PENDING] and snapshots; `delete` only in [PENDING]', () => {
    const text = 'cores: 1\ndelete: net0\n\n[PENDING]\ndelete: net1\nbogus: 1\n\n[snap1]\nsnaptime: 1\nvmstate: local:state\nwhatever: x\n';
    expect(warningsOf(text)).toEqual([
      "guest 101 (101.conf) line 2: unknown key 'delete' in the main section (Proxmox ignores it; kept as written)",
      "guest 101 (101.conf) line 6: unknown key 'bogus' in [PENDING] (Proxmox ignores it; kept as written)",
      "guest 101 (101.conf) line 11: unknown key 'whatever' in snapshot [snap1] (Proxmox ignores it; kept as written)",
    ]);
  });

  it('[special:cloudinit] is not checked (Proxmox does not either); [special:fleecing] knows fleecing-images only', () => {
    const text = 'cores: 1\n\n[special:cloudinit]\nanything: goes\n\n[special:fleecing]\nfleecing-images: zfs:vm-1\nother: 1\n';
    expect(warningsOf(text)).toEqual(["guest 101 (101.conf) line 8: unknown key 'other' in [special:fleecing] (Proxmox ignores it; kept as written)"]);
  });

  it('every numbered family up to its Proxmox limit, and no further', () => {
    const known = [
      'net31',
      'ipconfig31',
      'numa7',
      'virtiofs9',
      'parallel2',
      'serial3',
      'hostpci15',
      'usb13',
      'unused255',
      'scsi30',
      'virtio15',
      'sata5',
      'ide3',
    ];
    const beyond = ['net32', 'numa8', 'virtiofs10', 'parallel3', 'serial4', 'hostpci16', 'usb14', 'unused256', 'scsi31', 'virtio16', 'sata6', 'ide4'];
    const line = (k: string): string => (/^(scsi|virtio|sata|ide)/.test(k) ? `${k}: local:101/vm-101-disk-0.raw` : `${k}: x`);
    expect(warningsOf(known.map(line).join('\n'))).toEqual([]);
    expect(warningsOf(beyond.map(line).join('\n')).map((w) => /'([^']+)'/.exec(w)?.[1])).toEqual(beyond);
  });
});

describe('lines over 1 MiB', () => {
  it('a warning naming the line, its key and its size, not its text; 1 MiB exactly is fine', () => {
    const at = (bytes: number): string => `description: ${'x'.repeat(bytes - 'description: '.length)}`;
    expect(keyOrLength(parseGuestConfig(`cores: 1\n${at(MiB)}\n`, 'g').warnings)).toEqual([]);
    const warnings = keyOrLength(parseGuestConfig(`cores: 1\n${at(MiB + 1)}\nname: x\n`, 'g').warnings);
    expect(warnings).toEqual([`g line 2 (key 'description') is ${MiB + 1} bytes long, over the 1 MiB a config line should hold`]);
  });

  it('counts bytes, not characters (UTF-8), and names a description line by its start', () => {
    const wide = `#${'é'.repeat(MiB / 2)}`; // 1 MiB + 1 bytes in 524289 characters
    expect(keyOrLength(parseGuestConfig(`${wide}\ncores: 1\n`, 'g').warnings)).toEqual([
      `g line 1 (starting '#${'é'.repeat(39)}') is ${MiB + 1} bytes long, over the 1 MiB a config line should hold`,
    ]);
  });
});

describe('in the backup log (built CLI)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = makeLab('cv-config-warn-');
    await initStore(lab);
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }], 'memroy: 2048\n');
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['text'], 3);
  });
  afterAll(() => lab?.cleanup());

  it('the backup succeeds and its log has the WARN naming the line and the key', async () => {
    const { version } = await backup(lab, '101');
    const log = readFileSync(join(lab.storeDir, 'guests', '101', String(version), 'backup.log'), 'utf8');
    const lineNo = readFileSync(join(lab.guestsDir, '101.conf'), 'utf8').split('\n').indexOf('memroy: 2048') + 1;
    expect(log).toMatch(new RegExp(`WARN: guest 101 \\(.*101\\.conf\\) line ${lineNo}: unknown key 'memroy' in the main section`));
  });
});
