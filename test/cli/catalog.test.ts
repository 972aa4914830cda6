/**
 * The SQLite catalog is an index of the datastore's files, never the truth: deleted, it is rebuilt on
 * the next command; `catalog rebuild` gives the same listing; version folders that appear or disappear
 * behind its back (a folder restored from a copy, one deleted by hand) show up in `list` after reopening.
 */
import { cpSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, rewriteRegion, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { backup, initStore, list, ok, okJson, restore, sha256, storeFlag, versions, type ListEntry } from './cli-lab.js';

let lab: Lab;
let before: ListEntry[];
const catalogFile = (): string => join(lab.storeDir, 'catalog.sqlite');
const shas = new Map<string, string>();

beforeAll(async () => {
  lab = makeLab('cv-catalog-');
  await initStore(lab);
  writeGuest(lab, '101', [
    { key: 'scsi0', file: 'vm-101-disk-0.raw' },
    { key: 'virtio1', file: 'vm-101-disk-1.raw' },
  ]);
  writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'zero', 'text'], 11, 777);
  writeImage(imagePath(lab, '101', 'vm-101-disk-1.raw'), ['text'], 12);
  writeGuest(lab, '102', [{ key: 'scsi0', file: 'vm-102-disk-0.raw' }]);
  const disk102 = imagePath(lab, '102', 'vm-102-disk-0.raw');
  writeImage(disk102, ['random'], 13);
  await backup(lab, '101');
  rewriteRegion(imagePath(lab, '101', 'vm-101-disk-0.raw'), 0, 'random', 1101);
  await backup(lab, '101');
  for (let i = 1; i <= 2; i++) {
    rewriteRegion(disk102, 0, 'random', 1300 + i);
    shas.set(`102/${(await backup(lab, '102')).version}`, sha256(disk102));
  }
  await ok(['protect', '101', '--version', '1', ...storeFlag(lab)]);
  before = await list(lab);
});

afterAll(() => lab?.cleanup());

describe('catalog', () => {
  it('lists what was backed up (the baseline for the other tests)', () => {
    expect(before.map((v) => `${v.id}/${v.version}`)).toEqual(['101/1', '101/2', '102/1', '102/2']);
    expect(before.map((v) => v.protected)).toEqual([true, false, false, false]);
    expect(before[0]?.disks.map((d) => d.key)).toEqual(['scsi0', 'virtio1']);
  });

  it('is rebuilt automatically when catalog.sqlite is deleted: list shows every version, protection included', async () => {
    rmSync(catalogFile());
    expect(await list(lab)).toEqual(before);
    expect(existsSync(catalogFile())).toBe(true);
    // the human listing too
    const text = (await ok(['list', ...storeFlag(lab)])).stdout;
    expect(text.trim().split('\n')).toHaveLength(before.length);
    expect(text).toMatch(/ID: 101, Version: 1 .*protected/);
  });

  it('`catalog rebuild` gives the same `list --json`', async () => {
    const result = await okJson<{ versions: number; guests: number; skipped: unknown[] }>(['catalog', 'rebuild', ...storeFlag(lab)]);
    expect(result).toEqual({ versions: before.length, guests: 2, skipped: [] });
    expect(await list(lab)).toEqual(before);
    expect(await list(lab, '102')).toEqual(before.filter((v) => v.id === '102'));
  });

  it('lists a version folder copied back in behind its back (a store folder restored from a copy), and restores it', async () => {
    const folder = join(lab.storeDir, 'guests', '102', '1');
    const copy = join(lab.root, 'copy-of-102-1');
    cpSync(folder, copy, { recursive: true });
    expect((await okJson<{ removed: number[] }>(['prune', '102', '--keep-last', '1', ...storeFlag(lab)])).removed).toEqual([1]);
    expect(await versions(lab, '102')).toEqual([2]);

    cpSync(copy, folder, { recursive: true }); // no gc ran: its chunks are still in the store
    expect(await list(lab)).toEqual(before);
    expect((await okJson<{ ok: boolean }>(['verify', '102', '--version', '1', ...storeFlag(lab)])).ok).toBe(true);
    const restored = await restore(lab, '102', 1, '201');
    expect(sha256(restored.get('scsi0') as string)).toBe(shas.get('102/1'));
  });

  it('drops a version whose folder was deleted by hand, and keeps the others', async () => {
    rmSync(join(lab.storeDir, 'guests', '101', '2'), { recursive: true });
    // (102/1 was verified by the test before: its verify state is the one field allowed to differ)
    const withoutVerify = (l: ListEntry[]): object[] => l.map(({ verified, verifyState, verifiedAt, ...rest }) => rest);
    expect(withoutVerify(await list(lab))).toEqual(withoutVerify(before.filter((v) => !(v.id === '101' && v.version === 2))));
    expect((await list(lab, '102')).map((v) => v.verifyState)).toEqual(['ok', 'unverified']);
    // and a rebuild agrees
    await ok(['catalog', 'rebuild', ...storeFlag(lab)]);
    expect((await list(lab)).map((v) => `${v.id}/${v.version}`)).toEqual(['101/1', '102/1', '102/2']);
  });

  it('a damaged catalog file is moved aside with a warning and rebuilt (test/catalog/damaged-cli.test.ts has every kind of damage)', async () => {
    writeFileSync(catalogFile(), 'this is not an SQLite database, it is a damaged file'.repeat(100));
    const r = await cli(['list', ...storeFlag(lab)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`WARN: catalog '${catalogFile()}' is damaged: .*moved it to '${catalogFile()}\\.damaged-`));
    expect((await list(lab)).map((v) => `${v.id}/${v.version}`)).toEqual(['101/1', '102/1', '102/2']);
  });

  it('reports a version folder with an unreadable manifest in `catalog rebuild` (exit 1), and still lists the others', async () => {
    const folder = join(lab.storeDir, 'guests', '102', '2');
    const copy = join(lab.root, 'copy-of-102-2');
    cpSync(folder, copy, { recursive: true });
    writeFileSync(join(folder, 'manifest.json'), '{"damaged": ');
    const r = await cli(['catalog', 'rebuild', ...storeFlag(lab), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ versions: 2, skipped: [{ guestId: '102', version: 2 }] });
    expect((await list(lab)).map((v) => `${v.id}/${v.version}`)).toEqual(['101/1', '102/1']);
    cpSync(copy, folder, { recursive: true }); // repaired from the copy: listed again on the next open
    expect((await list(lab)).map((v) => `${v.id}/${v.version}`)).toEqual(['101/1', '102/1', '102/2']);
  });
});
