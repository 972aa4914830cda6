/**
 * Crash-safe file writes: temp file in the same folder, write, fsync, rename, fsync the folder.
 * After `writeFileDurable` returns, the file is on stable storage under its final name or, after a
 * crash, absent; a reader never sees a half-written file. On failure the temp file is removed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
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
}

export async function writeFileDurable(path: string, data: Uint8Array, opts: DurableWriteOptions = {}): Promise<void> {
  const temp = tempNameFor(path);
  try {
    const handle = await open(temp, 'wx');
    try {
      await handle.writeFile(data);
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
