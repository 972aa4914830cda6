/**
 * A damaged catalog through the real CLI (built bin/coldvault.js): `list`, `verify`, `restore` and
 * `catalog rebuild` each move the damaged file aside with a WARN naming it, rebuild, and do their job;
 * a catalog another process holds locked is never moved; `restore --device` from a read-only disk
 * with a damaged catalog restores without writing to it (a real loop device with ext4, as root).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, rewriteRegion, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { backup, initStore, list, okJson, sha256, storeFlag, volumePath, type ListEntry } from '../cli/cli-lab.js';
import { Loops } from '../jobs/helpers-devices.js';
import { asideFiles, damage, DAMAGES, holdLock, type Damage } from './damage-helpers.js';

let lab: Lab;
let before: ListEntry[];
const shas = new Map<string, string>();
const catalogFile = (): string => join(lab.storeDir, 'catalog.sqlite');
const withoutVerify = (l: ListEntry[]): object[] => l.map(({ verified, verifyState, verifiedAt, ...rest }) => rest);

beforeAll(async () => {
  lab = makeLab('cv-damaged-catalog-');
  await initStore(lab);
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  const disk = imagePath(lab, '101', 'vm-101-disk-0.raw');
  writeImage(disk, ['random', 'zero', 'text'], 21, 333);
  for (let i = 1; i <= 3; i++) {
    rewriteRegion(disk, 0, 'random', 2100 + i);
    shas.set(`101/${(await backup(lab, '101')).version}`, sha256(disk));
  }
  before = await list(lab);
});

afterAll(() => lab?.cleanup());

/** Damages the (healthy) catalog, runs the command, checks the WARN and the file moved aside. */
async function runOnDamaged(kind: Damage, args: string[]): Promise<{ stdout: string; stderr: string }> {
  for (const name of asideFiles(catalogFile())) rmSync(join(lab.storeDir, name));
  const damaged = damage(catalogFile(), kind);
  const r = await cli(args);
  expect(r.code, r.stderr).toBe(0);
  const aside = asideFiles(catalogFile());
  expect(aside).toHaveLength(1);
  const moved = join(lab.storeDir, aside[0] as string);
  expect(readFileSync(moved)).toEqual(damaged);
  expect(r.stderr).toMatch(new RegExp(`WARN: catalog '${catalogFile()}' is damaged: .*; moved it to '${moved}' and rebuilding`));
  return r;
}

describe('a damaged catalog is moved aside and rebuilt by every command that opens it', () => {
  it.each(DAMAGES)('%s: list, verify, restore and catalog rebuild work', async (kind) => {
    const listed = await runOnDamaged(kind, ['list', ...storeFlag(lab), '--json']);
    expect(withoutVerify(JSON.parse(listed.stdout) as ListEntry[])).toEqual(withoutVerify(before));

    const verified = await runOnDamaged(kind, ['verify', ...storeFlag(lab), '--json']);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });

    const restored = await runOnDamaged(kind, ['restore', '101', '--version', '2', '--new-id', '201', ...lab.flags, '--force', '--json']);
    const volume = (JSON.parse(restored.stdout) as { volumes: Record<string, string> }).volumes.scsi0 as string;
    expect(sha256(volumePath(lab, volume))).toBe(shas.get('101/2'));

    const rebuilt = await runOnDamaged(kind, ['catalog', 'rebuild', ...storeFlag(lab), '--json']);
    expect(JSON.parse(rebuilt.stdout)).toEqual({ versions: 3, guests: 1, skipped: [] });
    expect(withoutVerify(await list(lab))).toEqual(withoutVerify(before));
  });
});

describe('a catalog another process holds locked is not damaged: never moved', () => {
  it('a write transaction in progress: list works and leaves the file alone', async () => {
    for (const name of asideFiles(catalogFile())) rmSync(join(lab.storeDir, name));
    const file = catalogFile();
    const holder = await holdLock(file, 'write');
    try {
      const r = await cli(['list', ...storeFlag(lab), '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as ListEntry[]).map((v) => v.version)).toEqual([1, 2, 3]);
      expect(r.stderr).not.toMatch(/damaged/);
    } finally {
      await holder.release();
    }
    expect(asideFiles(file)).toEqual([]);
  });

  it('held exclusively past the busy timeout: list fails saying so, and the file stays as it was', async () => {
    const file = catalogFile();
    const bytes = readFileSync(file);
    const holder = await holdLock(file, 'exclusive');
    let r: Awaited<ReturnType<typeof cli>>;
    try {
      r = await cli(['list', ...storeFlag(lab)]);
    } finally {
      await holder.release();
    }
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`catalog '${file}' failed: another process holds it locked (SQLITE_BUSY)`);
    expect(asideFiles(file)).toEqual([]);
    expect(readFileSync(file)).toEqual(bytes);
  });
});

describe('restore --device from a read-only disk whose catalog is damaged (loop device, ext4)', () => {
  let loops: Loops;
  beforeAll(() => {
    mkdirSync(join(lab.root, 'loops'));
    loops = new Loops(join(lab.root, 'loops'));
  });
  afterAll(async () => {
    await loops?.cleanup();
  });

  it('restores byte-identical and writes nothing to the disk: the damaged catalog stays as it was', async () => {
    const disk = loops.make('usb', '64M', (dev) => execFileSync('mkfs.ext4', ['-q', '-F', dev]));
    const damaged = await loops.byHand(disk, (dir) => {
      cpSync(lab.storeDir, dir, { recursive: true });
      for (const name of asideFiles(join(dir, 'catalog.sqlite'))) rmSync(join(dir, name));
      return damage(join(dir, 'catalog.sqlite'), 'garbage');
    });
    const mountpoint = join(lab.root, 'usb');
    const flags = ['--store', mountpoint, '--device', disk.path, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`];
    const restored = await okJson<{ volumes: Record<string, string> }>(['restore', '101', '--version', '3', '--new-id', '301', ...flags]);
    expect(sha256(volumePath(lab, restored.volumes.scsi0 as string))).toBe(shas.get('101/3'));
    await loops.byHand(
      disk,
      (dir) => {
        expect(readFileSync(join(dir, 'catalog.sqlite'))).toEqual(damaged);
        expect(asideFiles(join(dir, 'catalog.sqlite'))).toEqual([]);
      },
      true,
    );
  });

  it('list on a datastore mounted read-only by hand works from a catalog rebuilt in memory', async () => {
    const disk = loops.all[0];
    if (!disk) throw new Error('the restore test made the disk');
    await loops.byHand(
      disk,
      async (dir) => {
        const r = await cli(['list', '--store', dir, '--json']);
        expect(r.code, r.stderr).toBe(0);
        expect((JSON.parse(r.stdout) as ListEntry[]).map((v) => v.version)).toEqual([1, 2, 3]);
        expect(r.stderr).toMatch(/is damaged: .*the datastore is read-only, so this command uses a catalog rebuilt in memory/);
        expect(existsSync(join(dir, 'catalog.sqlite'))).toBe(true);
        expect(asideFiles(join(dir, 'catalog.sqlite'))).toEqual([]);
      },
      true,
    );
  });
});
