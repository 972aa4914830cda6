/**
 * Telling a damaged catalog file from a catalog in trouble, and moving a damaged one aside.
 *
 * Damage (the file itself is wrong; the catalog is derived data, so it is moved aside and rebuilt):
 * SQLITE_CORRUPT*, SQLITE_NOTADB*, a schema that is not coldvault's, a failed `PRAGMA quick_check`.
 * Trouble (the file may be fine; it is never moved): SQLITE_BUSY* / SQLITE_LOCKED* (another process
 * holds a lock: LOCKED), SQLITE_FULL / ENOSPC (NO_SPACE), SQLITE_IOERR*, EIO, EACCES, SQLITE_CANTOPEN,
 * SQLITE_READONLY... (IO).
 *
 * Moving aside: `catalog.sqlite` -> `catalog.sqlite.damaged-<UTC time>` (a counter appended when that
 * name is taken), and each of its `-journal`, `-wal`, `-shm` files to the new name plus the same suffix,
 * so that SQLite still pairs the moved file with its journal for anyone who wants to look into it.
 */
import { existsSync, renameSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { ColdvaultError, errnoCode, ioError } from '../core/index.js';

/** The catalog file is damaged: `inode` is the file that was found so (undefined: it had none). */
export class CatalogDamage extends ColdvaultError {
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly inode: number | undefined,
    options?: { cause?: unknown },
  ) {
    super('DATASTORE_CORRUPT', `catalog '${file}' is damaged: ${reason}`, options);
  }
}

const DAMAGE = /^SQLITE_(CORRUPT|NOTADB)/;
const BUSY = /^SQLITE_(BUSY|LOCKED)/;
const FULL = /^SQLITE_FULL/;

/** The SQLite files that belong to a catalog file besides itself. */
const SIDE_FILES = ['-journal', '-wal', '-shm'] as const;

/** Maps a failure of `doing` on the catalog to damage, LOCKED, NO_SPACE or IO; ColdvaultErrors pass. */
export function catalogError(file: string, inode: number | undefined, doing: string, err: unknown): ColdvaultError {
  if (err instanceof ColdvaultError) return err;
  const code = errnoCode(err) ?? '';
  const detail = err instanceof Error ? err.message : String(err);
  if (DAMAGE.test(code)) return new CatalogDamage(file, `${detail} (${code}, while ${doing})`, inode, { cause: err });
  if (BUSY.test(code)) {
    return new ColdvaultError('LOCKED', `${doing} catalog '${file}' failed: another process holds it locked (${code}); try again when that process is done`, {
      cause: err,
    });
  }
  if (FULL.test(code)) return new ColdvaultError('NO_SPACE', `${doing} catalog '${file}' failed: no space left (${code})`, { cause: err });
  return ioError(`${doing} catalog '${file}'`, err);
}

/** An error SQLite raised (better-sqlite3's SqliteError codes all start SQLITE_), as opposed to the reader's. */
export function isSqliteError(err: unknown): boolean {
  return (errnoCode(err) ?? '').startsWith('SQLITE_');
}

/** The inode of `file`, or undefined when it does not exist (or is not a file on disk, like ':memory:'). */
export async function inodeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).ino;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw ioError(`reading catalog '${file}'`, err);
  }
}

/**
 * Renames the damaged file (and its side files) aside; returns the new name. Returns undefined when
 * `file` is no longer the damaged file (another process moved it first, and may have made a new one).
 * Synchronous from the inode check to the rename, so that no other open in this process runs between.
 * Throws the rename's error (EROFS on a read-only datastore).
 */
export function moveAside(damage: CatalogDamage, now = new Date()): string | undefined {
  const { file } = damage;
  if (damage.inode === undefined || inodeNow(file) !== damage.inode) return undefined;
  const aside = freeName(`${file}.damaged-${stamp(now)}`);
  try {
    renameSync(file, aside);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  for (const suffix of SIDE_FILES) moveIfThere(`${file}${suffix}`, `${aside}${suffix}`);
  return aside;
}

function inodeNow(file: string): number | undefined {
  return statSync(file, { throwIfNoEntry: false })?.ino;
}

function moveIfThere(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

/** `20250101T020000Z`: sortable, no characters a shell or Windows share would trip on. */
function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

function freeName(base: string): string {
  let name = base;
  for (let n = 2; existsSync(name); n++) name = `${base}-${n}`;
  return name;
}
