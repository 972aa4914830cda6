/**
 * The path rule through the real CLI (built bin/coldvault.js), as root, on real files and a real
 * loop device: a backup reads a disk only from a storage or from a path on `allowDiskPaths`, never
 * /etc/shadow (named directly or through a symlink), /proc, /sys or a character device; a refused
 * disk fails the backup with exit 1 and nothing written to the store. A restore writes only inside
 * its target storage, never through a symlinked image folder nor to an absolute path of the config
 * it replaces with --force, and creates its disks 0600.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, writeGuest, writeImage, type CliResult, type Lab } from '../helpers/fixtures.js';
import { Loops } from '../jobs/helpers-devices.js';
import { initStore, lastLine, ok, restore, sha256, volumePath } from './cli-lab.js';

let lab: Lab;
let loops: Loops;
let outside: string;
let configFile: string;

beforeAll(async () => {
  lab = makeLab('cv-diskpaths-cli-');
  outside = join(lab.root, 'outside');
  mkdirSync(outside);
  configFile = join(lab.root, 'coldvault.json');
  writeFileSync(configFile, JSON.stringify({ storages: { local: lab.storageDir } }));
  await initStore(lab);
  mkdirSync(join(lab.root, 'loops'));
  loops = new Loops(join(lab.root, 'loops'));
});

afterAll(async () => {
  await loops?.cleanup();
  lab?.cleanup();
});

/** Every file of the store but the catalog's: what a refused backup must leave as it was. */
function storeFiles(): Map<string, number> {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  return new Map(
    walk(lab.storeDir)
      .filter((p) => !p.includes('catalog'))
      .map((p) => [relative(lab.storeDir, p), statSync(p).mtimeMs]),
  );
}

/** A guest whose scsi0 is a fine disk in the storage and whose scsi1 is `volume`. */
function guestWith(vmid: string, volume: string): void {
  writeGuest(lab, vmid, [{ key: 'scsi0', file: `vm-${vmid}-disk-0.raw` }]);
  writeImage(imagePath(lab, vmid, `vm-${vmid}-disk-0.raw`), ['random', 'text'], Number(vmid));
  appendFileSync(join(lab.guestsDir, `${vmid}.conf`), `scsi1: ${volume},size=1G\n`);
}

async function backupJson(
  vmid: string,
  extra: string[] = [],
): Promise<{ r: CliResult; result: { ok: boolean; code?: string; error?: string; version?: number } }> {
  const r = await cli(['backup', vmid, '--json', ...lab.flags, ...extra]);
  return { r, result: (JSON.parse(r.stdout) as Array<{ ok: boolean; code?: string; error?: string; version?: number }>)[0] ?? { ok: false } };
}

/** Backs up `vmid` expecting a refusal with `code` and a message naming each of `mentions`; the store stays as it was. */
async function expectRefused(vmid: string, code: string, ...mentions: string[]): Promise<void> {
  const before = storeFiles();
  const { r, result } = await backupJson(vmid);
  expect(r.code, r.stderr).toBe(1);
  expect(result).toMatchObject({ ok: false, code });
  for (const m of mentions) expect(result.error).toContain(m);
  expect(lastLine(r.stderr)).toContain('refused');
  expect(storeFiles()).toEqual(before);
  expect(existsSync(join(lab.storeDir, 'guests', vmid))).toBe(false);
}

describe('backup: disks only from the storages', () => {
  it('/etc/shadow as a disk is refused (exit 1), naming disk, volume, guest, real path and rule; nothing is written to the store', async () => {
    guestWith('101', '/etc/shadow');
    await expectRefused(
      '101',
      'DISK_PATH_NOT_ALLOWED',
      "disk 'scsi1'",
      "volume '/etc/shadow'",
      'guest 101',
      "real path '/etc/shadow'",
      'outside every storage',
      'allowDiskPaths',
    );
  });

  it('a symlink in a storage that leads to /etc/shadow is refused', async () => {
    guestWith('102', 'local:102/vm-102-disk-1.raw');
    symlinkSync('/etc/shadow', imagePath(lab, '102', 'vm-102-disk-1.raw'));
    await expectRefused('102', 'DISK_PATH_NOT_ALLOWED', "disk 'scsi1'", "real path '/etc/shadow'", `from '${imagePath(lab, '102', 'vm-102-disk-1.raw')}'`);
  });

  it('/proc/self/..., /sys and character devices (/dev/null, /dev/zero) are refused', async () => {
    for (const [vmid, volume, code] of [
      ['103', '/proc/self/environ', 'DISK_PATH_SPECIAL'],
      ['104', '/dev/null', 'DISK_PATH_SPECIAL'],
      ['105', '/dev/zero', 'DISK_PATH_SPECIAL'],
      ['106', '/sys/kernel/notes', 'DISK_PATH_SPECIAL'],
    ] as const) {
      guestWith(vmid, volume);
      await expectRefused(vmid, code, "disk 'scsi1'", `volume '${volume}'`);
    }
  });

  it('a symlink that stays in the storage is backed up, and restores byte-identical as a 0600 file', async () => {
    guestWith('110', 'local:110/vm-110-disk-1.raw');
    mkdirSync(join(lab.storageDir, 'shared'), { recursive: true });
    writeImage(join(lab.storageDir, 'shared', 'golden.raw'), ['text', 'zero', 'random'], 11);
    symlinkSync('../../shared/golden.raw', imagePath(lab, '110', 'vm-110-disk-1.raw'));
    const { r, result } = await backupJson('110');
    expect(r.code, r.stderr).toBe(0);
    expect(result.ok).toBe(true);
    const disks = await restore(lab, '110', 1, '210');
    expect(sha256(disks.get('scsi1') as string)).toBe(sha256(join(lab.storageDir, 'shared', 'golden.raw')));
    for (const file of disks.values()) expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});

describe('backup: a block device only from allowDiskPaths', () => {
  it('a loop device is refused, then backed up once the config allows it, and restores byte-identical', async () => {
    writeImage(join(loops.work, 'disk.img'), ['random', 'zero', 'text'], 42);
    const loop = loops.make('disk', '12M');
    const deviceHash = sha256(loop.img);
    guestWith('120', loop.path);
    await expectRefused(
      '120',
      'DISK_PATH_NOT_ALLOWED',
      `real path '${loop.path}'`,
      'is under /dev, where only a block device that allowDiskPaths names is read',
    );

    writeFileSync(configFile, JSON.stringify({ storages: { local: lab.storageDir }, allowDiskPaths: ['/dev/loop*'] }));
    const { r, result } = await backupJson('120', ['--config', configFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(result.ok).toBe(true);
    const restored = await ok(['restore', '120', '--version', '1', '--new-id', '220', '--target-storage', 'local', '--json', ...lab.flags]);
    const volumes = (JSON.parse(restored.stdout) as { volumes: Record<string, string> }).volumes;
    const file = volumePath(lab, volumes.scsi1 as string);
    expect(sha256(file)).toBe(deviceHash);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('a config whose allowDiskPaths is not a list of absolute patterns is refused when read', async () => {
    const bad = join(lab.root, 'bad.json');
    writeFileSync(bad, JSON.stringify({ allowDiskPaths: ['dev/sd*'] }));
    const r = await cli(['backup', '101', ...lab.flags, '--config', bad]);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toContain(`config file '${bad}': allowDiskPaths: disk path pattern "dev/sd*" must be an absolute path`);
  });
});

describe('restore: only inside the target storage', () => {
  it('refuses a target storage whose images/<newid> is a symlink out of it, and writes nothing there', async () => {
    guestWith('130', 'local:130/vm-130-disk-1.raw');
    writeImage(imagePath(lab, '130', 'vm-130-disk-1.raw'), ['text'], 13);
    expect((await backupJson('130')).result.ok).toBe(true);
    const escape = join(outside, 'escape');
    mkdirSync(escape);
    symlinkSync(escape, join(lab.storageDir, 'images', '230'));
    const r = await cli(['restore', '130', '--version', '1', '--new-id', '230', '--json', ...lab.flags]);
    expect(r.code, r.stderr).toBe(1);
    expect(lastLine(r.stderr)).toContain(
      `restoring disk 'scsi0' of guest 230 to 'local:230/vm-230-disk-0.raw' refused: its folder '${join(lab.storageDir, 'images', '230')}' resolves to '${escape}', outside the target storage 'local'`,
    );
    expect(readdirSync(escape)).toEqual([]);
    expect(existsSync(join(lab.guestsDir, '230.conf'))).toBe(false);
  });

  it('--force over a guest whose config names absolute paths outside the storages does not write them', async () => {
    const victim = join(outside, 'victim.raw');
    writeFileSync(victim, 'precious');
    const linked = join(outside, 'linked-victim.raw');
    writeFileSync(linked, 'also precious');
    mkdirSync(join(lab.storageDir, 'images', '240'), { recursive: true });
    symlinkSync(linked, imagePath(lab, '240', 'vm-240-disk-1.raw'));
    writeFileSync(
      join(lab.guestsDir, '240.conf'),
      `name: old\nscsi0: ${victim},size=1G\nscsi1: local:240/vm-240-disk-1.raw,size=1G\nvirtio0: /etc/passwd,size=1G\n`,
    );
    const passwd = sha256('/etc/passwd');
    const disks = await restore(lab, '130', 1, '240', ['--force']);
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(readFileSync(linked, 'utf8')).toBe('also precious');
    expect(sha256('/etc/passwd')).toBe(passwd);
    for (const file of disks.values()) expect(file.startsWith(join(lab.storageDir, 'images', '240') + '/')).toBe(true);
    expect(readFileSync(join(lab.guestsDir, '240.conf'), 'utf8')).not.toMatch(/victim|passwd/);
  });
});
