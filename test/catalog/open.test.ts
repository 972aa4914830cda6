import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog, SCHEMA_VERSION, type CatalogVersion } from '../../src/catalog/index.js';
import { isColdvaultError } from '../../src/core/errors.js';
import { encodeManifest } from '../../src/format/index.js';
import { FileReader, ProtectingReader, corrupt, makeManifest, protect, publish, seed, tempDir, unpublish, versionDir } from './fixtures.js';

const ids = (versions: CatalogVersion[]): string[] => versions.map((v) => `${v.guestId}/${v.version}`);
const withoutVerify = (v: CatalogVersion): Omit<CatalogVersion, 'verifyState' | 'verifiedAt' | 'verifyDetail'> => {
  const { verifyState: _s, verifiedAt: _a, verifyDetail: _d, ...rest } = v;
  return rest;
};

describe('Catalog.open', () => {
  it('creates and rebuilds a missing file from the manifests', async () => {
    const dir = await tempDir();
    await seed(dir);
    const reader = new FileReader(dir);
    const catalog = await Catalog.open(reader);
    expect(existsSync(join(dir, 'catalog.sqlite'))).toBe(true);
    expect(reader.manifestReads).toBe(6);
    expect(ids(catalog.listVersions())).toEqual(['101/1', '101/2', '101/3', '200/1', '200/2', '1000/1']);
    const v = catalog.getVersion('101', 2);
    expect(v).toMatchObject({ name: 'vm101', node: 'pve1', verifyState: 'unverified', protected: false });
    expect(v?.disks.map((d) => d.key)).toEqual(['scsi0', 'efidisk0']);
    expect(v?.logicalBytes).toBe(24 * 1024 * 1024 + 1024);
    expect(v?.chunkCount).toBe(7);
    expect(v).toMatchObject({ newBytes: 4000, storedBytes: 2000, zeroBytes: 4 * 1024 * 1024 });
    catalog.close();
  });

  it('uses journal mode DELETE, synchronous FULL, busy_timeout 5000 and sets user_version', async () => {
    const dir = await tempDir();
    const file = join(dir, 'other.sqlite');
    const catalog = await Catalog.open(new FileReader(dir), { file });
    catalog.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
    expect(existsSync(join(dir, 'catalog.sqlite'))).toBe(false);
    expect(existsSync(`${file}-wal`)).toBe(false);
  });

  it('reconciles: adds a version published behind its back, drops a removed one, reads only the new manifest', async () => {
    const dir = await tempDir();
    await seed(dir);
    (await Catalog.open(new FileReader(dir))).close();
    await publish(dir, makeManifest('101', 4));
    await unpublish(dir, '200', 1);
    await unpublish(dir, '1000', 1);
    const reader = new FileReader(dir);
    const catalog = await Catalog.open(reader);
    expect(reader.manifestReads).toBe(1);
    expect(ids(catalog.listVersions())).toEqual(['101/1', '101/2', '101/3', '101/4', '200/2']);
    expect(await catalog.reconcile()).toEqual({ added: 0, removed: 0, skipped: [] });
    catalog.close();
  });

  it('keeps verify state across reopen and reconcile; only rebuild resets it', async () => {
    const dir = await tempDir();
    await seed(dir);
    const first = await Catalog.open(new FileReader(dir));
    first.markVerified('101', 1, 'ok');
    first.markVerified('200', 2, 'failed', '2 chunks missing');
    first.close();
    await publish(dir, makeManifest('101', 4));
    const second = await Catalog.open(new FileReader(dir));
    expect(second.getVersion('101', 1)).toMatchObject({ verifyState: 'ok', verifyDetail: null });
    expect(second.getVersion('101', 1)?.verifiedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(second.getVersion('200', 2)).toMatchObject({ verifyState: 'failed', verifyDetail: '2 chunks missing' });
    expect(await second.rebuild()).toEqual({ versions: 7, guests: 3, skipped: [] });
    expect(second.listVersions().every((v) => v.verifyState === 'unverified' && v.verifiedAt === null)).toBe(true);
    second.close();
  });

  it('rebuild after deleting the file gives the same listing', async () => {
    const dir = await tempDir();
    await seed(dir);
    await protect(dir, '200', 1);
    const first = await Catalog.open(new ProtectingReader(dir));
    first.markVerified('101', 3, 'ok');
    const before = first.listVersions();
    first.close();
    await rm(join(dir, 'catalog.sqlite'));
    const second = await Catalog.open(new ProtectingReader(dir));
    expect(second.listVersions().map(withoutVerify)).toEqual(before.map(withoutVerify));
    expect(second.getVersion('200', 1)?.protected).toBe(true);
    second.close();
  });

  it('skips and reports a corrupt manifest, and picks it up once repaired', async () => {
    const dir = await tempDir();
    await seed(dir);
    await corrupt(dir, '101', 2);
    const catalog = await Catalog.open(new FileReader(dir));
    expect(ids(catalog.listVersions('101'))).toEqual(['101/1', '101/3']);
    expect(catalog.skipped).toEqual([{ guestId: '101', version: 2, error: expect.stringMatching(/guests\/101\/2.*corrupt/) }]);
    const result = await catalog.rebuild();
    expect(result).toMatchObject({ versions: 5, guests: 3 });
    expect(result.skipped.map((s) => `${s.guestId}/${s.version}`)).toEqual(['101/2']);
    await publish(dir, makeManifest('101', 2));
    expect(await catalog.reconcile()).toEqual({ added: 1, removed: 0, skipped: [] });
    catalog.close();
  });

  it('skips a manifest that is not JSON or names another version than its folder', async () => {
    const dir = await tempDir();
    await publish(dir, makeManifest('101', 1));
    await mkdir(versionDir(dir, '101', 2), { recursive: true });
    await writeFile(join(versionDir(dir, '101', 2), 'manifest.json'), encodeManifest(makeManifest('102', 5)));
    await mkdir(versionDir(dir, '101', 3), { recursive: true });
    await writeFile(join(versionDir(dir, '101', 3), 'manifest.json'), '{');
    const catalog = await Catalog.open(new FileReader(dir));
    expect(ids(catalog.listVersions())).toEqual(['101/1']);
    expect(catalog.skipped).toEqual([
      { guestId: '101', version: 2, error: expect.stringContaining('names guest 102 version 5') },
      { guestId: '101', version: 3, error: expect.stringContaining('not JSON') },
    ]);
    catalog.close();
  });

  it('refuses a catalog with a newer schema version, naming the file and the versions', async () => {
    const dir = await tempDir();
    const file = join(dir, 'catalog.sqlite');
    (await Catalog.open(new FileReader(dir))).close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const err: unknown = await Catalog.open(new FileReader(dir)).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'DATASTORE_TOO_NEW')).toBe(true);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain(`schema version ${SCHEMA_VERSION + 1} is newer than this coldvault reads (up to ${SCHEMA_VERSION})`);
  });

  it('fails when the listing fails; the next open catches up', async () => {
    const dir = await tempDir();
    await seed(dir);
    const broken = new FileReader(dir);
    broken.listGuestIds = async () => {
      throw new Error('EIO');
    };
    await expect(Catalog.open(broken)).rejects.toThrow('EIO');
    const catalog = await Catalog.open(new FileReader(dir));
    expect(catalog.listVersions()).toHaveLength(6);
    catalog.close();
  });
});
