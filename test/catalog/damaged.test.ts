/**
 * A damaged catalog is moved aside and rebuilt, never a dead end; a catalog that is only locked by
 * another process, or that fails for another reason, is left alone (real SQLite files, a real second
 * process holding the lock).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog, type CatalogVersion } from '../../src/catalog/index.js';
import { catalogError, CatalogDamage, moveAside } from '../../src/catalog/damage.js';
import { isColdvaultError } from '../../src/core/errors.js';
import { createTaskLog } from '../../src/core/log.js';
import { asideFiles, damage, DAMAGES, holdLock, sqliteHealth } from './damage-helpers.js';
import { FileReader, makeManifest, ProtectingReader, protect, publish, seed, tempDir } from './fixtures.js';

const ids = (versions: CatalogVersion[]): string[] => versions.map((v) => `${v.guestId}/${v.version}`);
const ALL = ['101/1', '101/2', '101/3', '200/1', '200/2', '1000/1'];

/** A datastore folder with six versions and a healthy catalog file (closed). */
async function storeWithCatalog(): Promise<{ dir: string; file: string }> {
  const dir = await tempDir();
  await seed(dir);
  (await Catalog.open(new FileReader(dir))).close();
  return { dir, file: join(dir, 'catalog.sqlite') };
}

describe('Catalog.open on a damaged file', () => {
  it.each(DAMAGES)('%s: moves the file aside (bytes kept), warns naming it, and rebuilds every version', async (kind) => {
    const { dir, file } = await storeWithCatalog();
    await protect(dir, '200', 1);
    const damaged = damage(file, kind);
    expect(sqliteHealth(file)).not.toBe('ok');
    const log = createTaskLog();
    const catalog = await Catalog.open(new ProtectingReader(dir), { log });
    expect(ids(catalog.listVersions())).toEqual(ALL);
    expect(catalog.getVersion('200', 1)?.protected).toBe(true);
    catalog.close();
    const aside = asideFiles(file);
    expect(aside).toHaveLength(1);
    expect(aside[0]).toMatch(/^catalog\.sqlite\.damaged-\d{8}T\d{6}Z$/);
    expect(readFileSync(join(dir, aside[0] as string))).toEqual(damaged);
    expect(log.lines.map((l) => l.level)).toEqual(['WARN']);
    expect(log.lines[0]?.message).toContain(`catalog '${file}' is damaged`);
    expect(log.lines[0]?.message).toContain(`moved it to '${join(dir, aside[0] as string)}'`);
    expect(sqliteHealth(file)).toBe('ok');
  });

  it('a second open finds the rebuilt file healthy: nothing more is moved, verify state is kept from then on', async () => {
    const { dir, file } = await storeWithCatalog();
    damage(file, 'flipped page');
    const first = await Catalog.open(new FileReader(dir), { log: createTaskLog() });
    first.markVerified('101', 2, 'ok');
    first.close();
    const log = createTaskLog();
    const second = await Catalog.open(new FileReader(dir), { log });
    expect(second.getVersion('101', 2)?.verifyState).toBe('ok');
    second.close();
    expect(log.lines).toEqual([]);
    expect(asideFiles(file)).toHaveLength(1);
  });

  it('moveAside takes the side files SQLite left (-journal, -wal) along, under the new name', async () => {
    const { file } = await storeWithCatalog();
    damage(file, 'garbage');
    writeFileSync(`${file}-journal`, 'journal');
    writeFileSync(`${file}-wal`, 'wal');
    const found = new CatalogDamage(file, 'test', statSync(file).ino);
    const aside = moveAside(found, new Date(Date.UTC(2025, 0, 2, 3, 4, 5)));
    expect(aside).toBe(`${file}.damaged-20250102T030405Z`);
    expect(readFileSync(`${aside as string}-journal`, 'utf8')).toBe('journal');
    expect(readFileSync(`${aside as string}-wal`, 'utf8')).toBe('wal');
    expect(existsSync(file) || existsSync(`${file}-journal`) || existsSync(`${file}-wal`)).toBe(false);
    // the same second again: a free name, nothing overwritten
    writeFileSync(file, 'again');
    const second = moveAside(new CatalogDamage(file, 'test', statSync(file).ino), new Date(Date.UTC(2025, 0, 2, 3, 4, 5)));
    expect(second).toBe(`${file}.damaged-20250102T030405Z-2`);
    // a file that is no longer the damaged one (another process replaced it) is not moved
    writeFileSync(file, 'new catalog');
    expect(moveAside(found)).toBeUndefined();
    expect(readFileSync(file, 'utf8')).toBe('new catalog');
  });

  it('two processes opening one damaged file at once: both get a catalog, the file is moved aside once', async () => {
    const { dir, file } = await storeWithCatalog();
    damage(file, 'garbage');
    const [a, b] = await Promise.all([
      Catalog.open(new FileReader(dir), { log: createTaskLog() }),
      Catalog.open(new FileReader(dir), { log: createTaskLog() }),
    ]);
    expect(ids(a.listVersions())).toEqual(ALL);
    expect(ids(b.listVersions())).toEqual(ALL);
    a.close();
    b.close();
    expect(asideFiles(file)).toHaveLength(1);
  });
});

/** Runs `fn` on a read-only bind mount of `dir` (root), always unmounting. */
async function readOnly<T>(dir: string, fn: (ro: string) => Promise<T>): Promise<T> {
  const ro = await tempDir();
  execFileSync('mount', ['--bind', dir, ro]);
  try {
    execFileSync('mount', ['-o', 'remount,ro,bind', ro]);
    return await fn(ro);
  } finally {
    execFileSync('umount', [ro]);
  }
}

describe('Catalog.open on a read-only datastore (a read-only bind mount, as root): nothing is written', () => {
  it('a damaged file: the catalog is rebuilt in memory with a WARN saying so, the file stays as it was', async () => {
    const { dir, file } = await storeWithCatalog();
    const damaged = damage(file, 'flipped page');
    await readOnly(dir, async (ro) => {
      const log = createTaskLog();
      const catalog = await Catalog.open(new FileReader(ro), { log });
      expect(ids(catalog.listVersions())).toEqual(ALL);
      catalog.markVerified('101', 1, 'ok'); // in memory: a verify on read-only media still records its result for the run
      catalog.close();
      expect(log.lines.map((l) => l.level)).toEqual(['WARN']);
      expect(log.lines[0]?.message).toMatch(/is damaged: .*; the datastore is read-only, so this command uses a catalog rebuilt in memory/);
    });
    expect(readFileSync(file)).toEqual(damaged);
    expect(existsSync(':memory:'), 'an in-memory catalog leaves no file named :memory: in the working folder').toBe(false);
    expect(asideFiles(file)).toEqual([]);
  });

  it('no catalog file, or one that is behind the version folders: in memory too', async () => {
    const missing = await tempDir();
    await seed(missing);
    const { dir: stale, file } = await storeWithCatalog();
    await publish(stale, makeManifest('101', 4));
    const before = readFileSync(file);
    for (const [dir, expected] of [
      [missing, ALL],
      [stale, [...ALL.slice(0, 3), '101/4', ...ALL.slice(3)]],
    ] as const) {
      await readOnly(dir, async (ro) => {
        const log = createTaskLog();
        const catalog = await Catalog.open(new FileReader(ro), { log });
        expect(ids(catalog.listVersions())).toEqual(expected);
        catalog.close();
        expect(log.lines[0]?.message).toMatch(/catalog '.*' failed: .*, and the datastore is read-only, so this command uses a catalog rebuilt in memory/);
      });
    }
    expect(existsSync(join(missing, 'catalog.sqlite'))).toBe(false);
    expect(readFileSync(file)).toEqual(before);
  });

  it('a healthy, current catalog is read from the file, without a warning', async () => {
    const { dir } = await storeWithCatalog();
    await readOnly(dir, async (ro) => {
      const log = createTaskLog();
      const catalog = await Catalog.open(new FileReader(ro), { log });
      expect(catalog.file).toBe(join(ro, 'catalog.sqlite'));
      expect(ids(catalog.listVersions())).toEqual(ALL);
      catalog.close();
      expect(log.lines).toEqual([]);
    });
  });
});

describe('Catalog.open on a catalog in trouble, not damaged: the file is left alone', () => {
  it('another process holds a write transaction: the catalog opens and lists (no write lock needed), nothing is moved', async () => {
    const { dir, file } = await storeWithCatalog();
    const before = readFileSync(file);
    const holder = await holdLock(file, 'write');
    try {
      const catalog = await Catalog.open(new FileReader(dir), { log: createTaskLog() });
      expect(ids(catalog.listVersions())).toEqual(ALL);
      catalog.close();
    } finally {
      await holder.release();
    }
    expect(asideFiles(file)).toEqual([]);
    expect(readFileSync(file)).toEqual(before);
  });

  it('another process holds it exclusively beyond busy_timeout: LOCKED naming the file, nothing is moved', async () => {
    const { dir, file } = await storeWithCatalog();
    const before = readFileSync(file);
    const holder = await holdLock(file, 'exclusive');
    const log = createTaskLog();
    let err: unknown;
    try {
      err = await Catalog.open(new FileReader(dir), { log }).catch((e: unknown) => e);
    } finally {
      await holder.release();
    }
    expect(isColdvaultError(err, 'LOCKED'), String(err)).toBe(true);
    expect((err as Error).message).toContain(`catalog '${file}'`);
    expect((err as Error).message).toMatch(/another process holds it locked \(SQLITE_BUSY\)/);
    expect(log.lines).toEqual([]);
    expect(asideFiles(file)).toEqual([]);
    expect(readFileSync(file)).toEqual(before);
  });

  it('a catalog path that cannot be opened (a folder in its place) is IO, and stays', async () => {
    const dir = await tempDir();
    await seed(dir);
    mkdirSync(join(dir, 'catalog.sqlite'));
    const err: unknown = await Catalog.open(new FileReader(dir), { log: createTaskLog() }).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'IO'), String(err)).toBe(true);
    expect(asideFiles(join(dir, 'catalog.sqlite'))).toEqual([]);
  });

  it('a catalog of a newer schema is refused (DATASTORE_TOO_NEW), not moved: an upgrade reads it', async () => {
    const { dir, file } = await storeWithCatalog();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    const err: unknown = await Catalog.open(new FileReader(dir), { log: createTaskLog() }).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'DATASTORE_TOO_NEW')).toBe(true);
    expect(asideFiles(file)).toEqual([]);
  });

  // SQLite's I/O and lock failures cannot all be caused on purpose here (EIO needs a failing disk):
  // the classification is checked on the error objects better-sqlite3 raises for them.
  it('classifies SQLite and system errors: only CORRUPT and NOTADB are damage', () => {
    const sqlite = (code: string): Error => new Database.SqliteError(`sqlite says ${code}`, code);
    const system = (code: string): Error => Object.assign(new Error(`${code}: failed`), { code });
    const damaged = ['SQLITE_CORRUPT', 'SQLITE_CORRUPT_INDEX', 'SQLITE_NOTADB'].map(sqlite);
    const trouble: Array<[Error, string]> = [
      [sqlite('SQLITE_BUSY'), 'LOCKED'],
      [sqlite('SQLITE_BUSY_SNAPSHOT'), 'LOCKED'],
      [sqlite('SQLITE_LOCKED'), 'LOCKED'],
      [sqlite('SQLITE_FULL'), 'NO_SPACE'],
      [system('ENOSPC'), 'NO_SPACE'],
      [sqlite('SQLITE_IOERR_READ'), 'IO'],
      [sqlite('SQLITE_CANTOPEN'), 'IO'],
      [sqlite('SQLITE_READONLY'), 'IO'],
      [sqlite('SQLITE_PERM'), 'IO'],
      [system('EACCES'), 'IO'],
      [system('EIO'), 'IO'],
    ];
    for (const err of damaged) expect(catalogError('/s/catalog.sqlite', 7, 'opening', err)).toBeInstanceOf(CatalogDamage);
    for (const [err, code] of trouble) {
      const mapped = catalogError('/s/catalog.sqlite', 7, 'opening', err);
      expect(mapped, String(err)).not.toBeInstanceOf(CatalogDamage);
      expect(mapped.code, String(err)).toBe(code);
      expect(mapped.message).toContain("catalog '/s/catalog.sqlite'");
    }
  });
});
