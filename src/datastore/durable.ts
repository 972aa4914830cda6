/**
 * Crash-safe file writes: temp file in the same folder, write, fsync, rename, fsync the folder.
 * After `writeFileDurable` returns, the file is on stable storage under its final name or, after a
 * crash, absent; a reader never sees a half-written file. On failure the temp file is removed.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { alignUp } from '../core/aligned.js';
import { errnoCode, ioError } from '../core/errors.js';

/** Marker in temp names, so that cleanup recognises them: `<name>.cvtmp-<pid>-<rand>`. */
export const TEMP_MARK = '.cvtmp-';

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
    const handle = await open(temp, 'wx');
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
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o666);
  } catch (err) {
    if (errnoCode(err) === 'EINVAL') return false;
    throw ioError(doing, err);
  }
  try {
    try {
      const padded = new Uint8Array(data.buffer, data.byteOffset, alignUp(data.length));
      for (let done = 0; done < padded.length;) done += (await handle.write(padded, done, padded.length - done, done)).bytesWritten;
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

export async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw ioError(`creating folder '${dir}'`, err);
  }
}

export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}
