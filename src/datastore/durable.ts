/**
 * Crash-safe file writes: temp file in the same folder, write, fsync, rename, fsync the folder.
 * After `writeFileDurable` returns, the file is on stable storage under its final name or, after a
 * crash, absent; a reader never sees a half-written file. On failure the temp file is removed.
 *
 * Modes: what these helpers create is private to its owner, files PRIVATE_FILE (0600) and folders
 * PRIVATE_DIR (0700), given explicitly at creation (open / mkdir), so whatever the process umask
 * (even 000) nothing is ever readable by other local users, not even for a moment. A stopped guest's
 * disk holds exactly what its owner wants to keep private.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, open, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { alignUp, errnoCode, ioError } from '../core/index.js';

/** Marker in temp names, so that cleanup recognises them: `<name>.cvtmp-<pid>-<rand>`. */
export const TEMP_MARK = '.cvtmp-';

/** Mode of every file coldvault creates in a datastore or its state dir (rw for the owner only). */
export const PRIVATE_FILE = 0o600;
/** Mode of every folder coldvault creates there (rwx for the owner only). */
export const PRIVATE_DIR = 0o700;

export function tempNameFor(path: string): string {
  return join(dirname(path), `${basename(path)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

export interface DurableWriteOptions {
  /** fsync the folder afterwards (default true); callers that sync folders in a batch say false */
  syncDir?: boolean;
  /** fdatasync instead of fsync: enough for content whose metadata (times) does not matter */
  dataOnly?: boolean;
  /** what the error message says was being done, default "writing '<path>'" */
  doing?: string;
  /** the file's modification time (ms since the epoch), set before it gets its name; default: the write's */
  mtimeMs?: number;
}

export async function writeFileDurable(path: string, data: Uint8Array, opts: DurableWriteOptions = {}): Promise<void> {
  const temp = tempNameFor(path);
  try {
    const handle = await open(temp, 'wx', PRIVATE_FILE);
    try {
      await handle.writeFile(data);
      if (opts.mtimeMs !== undefined) await setTimes(handle, opts.mtimeMs);
      await (opts.dataOnly ? handle.datasync() : handle.sync());
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw ioError(opts.doing ?? `writing '${path}'`, err);
  }
  if (opts.syncDir !== false) await fsyncDir(dirname(path));
}

/**
 * As writeFileDurable with dataOnly and no folder sync, but through O_DIRECT, past the page cache:
 * `data` must be directAligned(data, 0, true) (an aligned address, and its buffer holds the padding
 * to a whole block). The padded blocks are written, the file is cut to data.length, fdatasync, rename.
 * Returns false, with nothing left behind, when the filesystem refuses O_DIRECT (EINVAL: some FUSE
 * filesystems); the caller then writes through the page cache.
 */
export async function writeFileDirect(path: string, data: Uint8Array, doing: string, mtimeMs?: number): Promise<boolean> {
  const temp = tempNameFor(path);
  let handle: FileHandle;
  try {
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, PRIVATE_FILE);
  } catch (err) {
    if (errnoCode(err) === 'EINVAL') return false;
    throw ioError(doing, err);
  }
  try {
    try {
      const padded = new Uint8Array(data.buffer, data.byteOffset, alignUp(data.length));
      for (let done = 0; done < padded.length; ) done += (await handle.write(padded, done, padded.length - done, done)).bytesWritten;
      if (padded.length !== data.length) await handle.truncate(data.length);
      if (mtimeMs !== undefined) await setTimes(handle, mtimeMs);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    return true;
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    if (errnoCode(err) === 'EINVAL') return false;
    throw ioError(doing, err);
  }
}

/** Sets a file's access and modification times (ms since the epoch). */
async function setTimes(handle: FileHandle, ms: number): Promise<void> {
  const time = new Date(ms);
  await handle.utimes(time, time);
}

/** fsync a directory, so that renames and creations in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Some filesystems (FUSE, exFAT drivers) refuse fsync on a directory; the data fsyncs still hold.
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'EISDIR' && errnoCode(err) !== 'ENOTSUP') {
      throw ioError(`syncing folder '${dir}'`, err);
    }
  } finally {
    await handle?.close();
  }
}

/** Creates `dir` and its missing parents, each PRIVATE_DIR; an existing folder is left as it is. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  } catch (err) {
    throw ioError(`creating folder '${dir}'`, err);
  }
}

export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Creates `path` empty with PRIVATE_FILE if it does not exist; an existing file is left untouched.
 * For files another library creates, e.g. SQLite: it gives its journal, WAL and shm files the
 * database file's mode, so a database created this way stays private with all its companions.
 * Any failure (a read-only folder...) is left for that library's open to report in its words.
 */
export function createPrivateFile(path: string): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, PRIVATE_FILE));
  } catch {
    // exists already, or cannot be created: the real open says why
  }
}
