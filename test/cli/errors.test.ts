/**
 * What a user sees when something is wrong: a non-zero exit (1 failed, 2 bad usage) and, as the last
 * line of stderr, one line that names what is wrong (the guest, the config line, the file, the folder),
 * with no stack trace. A failed backup leaves no version and no staging folder behind.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, writeGuest, writeImage, type CliResult, type Lab } from '../helpers/fixtures.js';
import { backup, chunkFiles, initStore, lastLine, leftovers, list, ok, restore, sha256, storeFlag, versions, writeRegions } from './cli-lab.js';

let lab: Lab;
const DISK = 'vm-101-disk-0.raw';

beforeAll(async () => {
  lab = makeLab('cv-errors-');
  await initStore(lab);
  writeGuest(lab, '101', [{ key: 'scsi0', file: DISK }]);
  writeImage(imagePath(lab, '101', DISK), ['random', 'text'], 3, 4096);
  expect((await backup(lab, '101')).version).toBe(1);
});

afterAll(() => lab?.cleanup());

/** Exit code, and a last stderr line that is the CLI's own one-line error, without a stack trace. */
function expectError(r: CliResult, code: number, command: string, ...mentions: string[]): string {
  expect(r.code, r.stderr).toBe(code);
  const line = lastLine(r.stderr);
  expect(line.startsWith(`coldvault ${command}: `), line).toBe(true);
  for (const m of mentions) expect(line).toContain(m);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace: the error was expected and explained
  return line;
}

describe('backup of a guest that cannot be read', () => {
  it('an unknown vmid (no config) exits 1 naming the guest and the missing config', async () => {
    const r = await cli(['backup', '105', ...lab.flags]);
    expectError(r, 1, 'backup', '105', join(lab.guestsDir, '105.conf'));
    expect(await versions(lab, '105')).toEqual([]);
    expect(leftovers(lab.storeDir, '105')).toEqual([]);
  });

  it('a malformed config (a garbage line in the main section) exits 1 naming the line number and the text', async () => {
    writeGuest(lab, '103', [{ key: 'scsi0', file: 'vm-103-disk-0.raw' }]);
    writeImage(imagePath(lab, '103', 'vm-103-disk-0.raw'), ['text'], 4);
    const path = join(lab.guestsDir, '103.conf');
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.splice(3, 0, 'this line is garbage');
    writeFileSync(path, lines.join('\n'));
    const r = await cli(['backup', '103', ...lab.flags]);
    expectError(r, 1, 'backup', 'line 4', 'this line is garbage', '103');
    expect(await versions(lab, '103')).toEqual([]);
    expect(leftovers(lab.storeDir, '103')).toEqual([]);
  });

  it('a missing disk image exits 1 naming its path, and leaves no version', async () => {
    writeGuest(lab, '104', [
      { key: 'scsi0', file: 'vm-104-disk-0.raw' },
      { key: 'scsi1', file: 'vm-104-disk-1.raw' },
    ]);
    writeImage(imagePath(lab, '104', 'vm-104-disk-0.raw'), ['random'], 5);
    const chunksBefore = chunkFiles(lab.storeDir);
    const r = await cli(['backup', '104', ...lab.flags]);
    expectError(r, 1, 'backup', imagePath(lab, '104', 'vm-104-disk-1.raw'));
    expect(await versions(lab, '104')).toEqual([]);
    expect(leftovers(lab.storeDir, '104')).toEqual([]);
    expect(chunkFiles(lab.storeDir)).toEqual(chunksBefore); // nothing of disk 0 was stored either
  });
});

describe('the datastore given with --store', () => {
  it('a folder that is not a datastore exits 1 naming it and suggesting `datastore init`', async () => {
    const dir = join(lab.root, 'not-a-store');
    mkdirSync(dir);
    const r = await cli(['backup', '101', '--store', dir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expectError(r, 1, 'backup', dir, 'datastore init');
    expect(readdirSync(dir)).toEqual([]); // nothing was written into it
    const l = await cli(['list', '--store', dir]);
    expectError(l, 1, 'list', dir, 'datastore init');
  });

  it('a folder that does not exist exits 1 naming it', async () => {
    const dir = join(lab.root, 'no-such-folder');
    expectError(await cli(['list', '--store', dir]), 1, 'list', dir);
    expect(existsSync(dir)).toBe(false);
  });

  it('a datastore of format 99 exits 1 saying it is newer, and is left untouched', async () => {
    const dir = join(lab.root, 'store-from-the-future');
    await initStore(lab, dir);
    const idFile = join(dir, 'coldvault-datastore.json');
    const identity = JSON.parse(readFileSync(idFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(idFile, JSON.stringify({ ...identity, format: 99 }, null, 2));
    const before = readdirSync(dir).sort();
    for (const args of [['list'], ['verify'], ['gc']]) {
      const line = expectError(await cli([...args, '--store', dir]), 1, args[0] as string, 'newer', dir);
      expect(line).toContain('99');
    }
    const b = await cli(['backup', '101', '--store', dir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expectError(b, 1, 'backup', 'newer');
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(chunkFiles(dir).size).toBe(0);
  });
});

describe('restore', () => {
  it('of a version that does not exist exits 1 naming guest and version, and writes nothing', async () => {
    const r = await cli(['restore', '101', '--version', '7', '--new-id', '200', ...lab.flags]);
    expectError(r, 1, 'restore', '101', 'version 7');
    expect(existsSync(join(lab.guestsDir, '200.conf'))).toBe(false);
    expect(existsSync(join(lab.storageDir, 'images', '200'))).toBe(false);
    const g = await cli(['restore', '999', '--version', '1', '--new-id', '200', ...lab.flags]);
    expectError(g, 1, 'restore', '999');
  });

  it('to a new ID that is taken exits 1 naming the ID and --force, leaving that guest alone; with --force it succeeds', async () => {
    writeGuest(lab, '300', [{ key: 'scsi0', file: 'vm-300-disk-0.raw' }]);
    writeImage(imagePath(lab, '300', 'vm-300-disk-0.raw'), ['text'], 30);
    const configBefore = readFileSync(join(lab.guestsDir, '300.conf'), 'utf8');
    const diskBefore = sha256(imagePath(lab, '300', 'vm-300-disk-0.raw'));
    const r = await cli(['restore', '101', '--version', '1', '--new-id', '300', ...lab.flags]);
    expectError(r, 1, 'restore', '300', '--force');
    expect(readFileSync(join(lab.guestsDir, '300.conf'), 'utf8')).toBe(configBefore);
    expect(sha256(imagePath(lab, '300', 'vm-300-disk-0.raw'))).toBe(diskBefore);
    expect(readdirSync(join(lab.storageDir, 'images', '300'))).toEqual(['vm-300-disk-0.raw']); // no temp files left

    const disks = await restore(lab, '101', 1, '300', ['--force']);
    const restored = disks.get('scsi0') as string;
    expect(sha256(restored)).toBe(sha256(imagePath(lab, '101', DISK)));
    const config = readFileSync(join(lab.guestsDir, '300.conf'), 'utf8');
    expect(config).not.toBe(configBefore);
    expect(config).toMatch(new RegExp(`^scsi0: local:300/${restored.slice(restored.lastIndexOf('/') + 1)}`, 'm'));
  });
});

describe('not enough space (a 12 MiB tmpfs; needs root, as CI runs)', () => {
  let mountpoint: string | undefined;
  afterAll(() => {
    if (mountpoint) execFileSync('umount', [mountpoint]);
  });

  it('a backup of 32 MiB of random data exits 1 naming the store, with no version, no staging folder and no chunk left', async () => {
    const dir = join(lab.root, 'tiny');
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', dir]);
    mountpoint = dir;
    const store = join(dir, 'store');
    await initStore(lab, store);
    writeGuest(lab, '110', [{ key: 'scsi0', file: 'vm-110-disk-0.raw' }]);
    writeRegions(
      imagePath(lab, '110', 'vm-110-disk-0.raw'),
      Array.from({ length: 8 }, (_, i) => ({ kind: 'random' as const, seed: 1100 + i })),
    );
    const flags = ['--store', store, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`];
    const r = await cli(['backup', '110', ...flags]);
    const line = expectError(r, 1, 'backup', store);
    expect(line).toMatch(/space|full/i);
    const l = await ok(['list', '110', '--store', store, '--json']);
    expect(JSON.parse(l.stdout)).toEqual([]);
    expect(leftovers(store, '110')).toEqual([]);
    expect(chunkFiles(store).size).toBe(0);
    // the store still works: verify of the empty store is fine
    await ok(['verify', '--store', store]);
  });
});

describe('bad usage exits 2', () => {
  it.each([
    [['backup', '101', '--bogus'], 'backup', '--bogus'],
    [['backup', '101', '--keep', '0'], 'backup', '--keep'],
    [['backup', '101', '--keep', 'two'], 'backup', '--keep'],
    [['backup', 'abc'], 'backup', "'abc'"],
    [['list', 'abc'], 'list', "'abc'"],
    [['restore', '101', '--new-id', '200'], 'restore', '--version'],
    [['restore', '101', '--version', '1', '--new-id', 'xyz'], 'restore', "'xyz'"],
    [['prune', '101', '--keep-last', '0'], 'prune', '--keep'],
    [['verify', '--version', '1'], 'verify', '--version'],
  ])('%j', async (args, command, mention) => {
    const extra = command === 'backup' || command === 'restore' ? lab.flags : storeFlag(lab);
    const r = await cli([...args, ...extra]);
    expectError(r, 2, command, mention);
    expect(await versions(lab, '101')).toEqual([1]); // nothing happened
  });

  it('an unknown command exits 2 and lists the commands', async () => {
    const r = await cli(['bakcup', '101']);
    expect(r.code).toBe(2);
    expect(lastLine(r.stderr)).toContain("'bakcup'");
    expect(lastLine(r.stderr)).toContain('backup');
  });

  it('--version prints the version from package.json and exits 0', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^coldvault ${pkg.version.replace(/\./g, '\\.')} \\(node v\\d+`));
  });

  it('says which command failed once, not twice (`coldvault backup: coldvault backup: ...`)', async () => {
    for (const [args, command] of [
      [['backup', '101', '--bogus', ...lab.flags], 'backup'],
      [['prune', '101', '--keep-last', '0', ...storeFlag(lab)], 'prune'],
    ] as const) {
      const line = lastLine((await cli([...args])).stderr);
      expect(line.split(`coldvault ${command}:`).length - 1, line).toBe(1);
    }
  });
});

describe('datastore init', () => {
  it('refuses a folder that holds other files, naming it, and writes nothing into it', async () => {
    const dir = join(lab.root, 'photos');
    mkdirSync(dir);
    writeFileSync(join(dir, 'holiday.jpg'), 'not a datastore');
    const r = await cli(['datastore', 'init', dir]);
    expect(r.code).not.toBe(0);
    const line = lastLine(r.stderr);
    expect(line).toContain(dir);
    expect(line).toMatch(/not empty/);
    expect(readdirSync(dir)).toEqual(['holiday.jpg']);
  });

  it('runs again over what an init cut short left (its empty folders, a temp identity file), but not over a folder with a chunk in it', async () => {
    const dir = join(lab.root, 'half-made');
    for (const sub of ['chunks', 'guests', 'locks']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'coldvault-datastore.json.cvtmp-999999-dead'), '');
    expect((await cli(['datastore', 'init', dir])).code).toBe(0);
    expect((await cli(['datastore', 'info', '--store', dir])).code).toBe(0);
    const used = join(lab.root, 'half-used');
    mkdirSync(join(used, 'chunks', '3fa2'), { recursive: true });
    const r = await cli(['datastore', 'init', used]);
    expect(r.code).not.toBe(0);
    expect(lastLine(r.stderr)).toMatch(/not empty \(chunks\)/);
  });

  it('on an existing datastore says so and keeps its identity and versions', async () => {
    const idFile = join(lab.storeDir, 'coldvault-datastore.json');
    const identity = readFileSync(idFile, 'utf8');
    const r = await cli(['datastore', 'init', lab.storeDir]);
    expectError(r, 1, 'datastore', lab.storeDir, 'already');
    expect(readFileSync(idFile, 'utf8')).toBe(identity);
    expect((await list(lab, '101')).map((v) => v.version)).toEqual([1]);
  });
});
