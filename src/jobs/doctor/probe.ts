/**
 * Small looks at the filesystem and the clock of a promise that the checks share: what a path is,
 * whether a folder takes a new file (a private temp file, written, fsynced and removed at once), and
 * a time limit on any look that may hang (a dead NFS mount, a socket nobody answers).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, errnoCode } from '../../core/index.js';

export type PathKind = 'folder' | 'file' | 'socket' | 'other' | 'missing';

export async function pathKind(path: string): Promise<PathKind> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'folder' : s.isFile() ? 'file' : s.isSocket() ? 'socket' : 'other';
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return 'missing';
    throw err;
  }
}

/** Undefined when `dir` takes a new file; else why not (`EROFS: read-only file system, open '...'`). */
export async function cannotWrite(dir: string): Promise<string | undefined> {
  const file = join(dir, `.coldvault-doctor-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    try {
      await handle.write(Buffer.alloc(4096));
      await handle.sync();
    } finally {
      await handle.close();
      await unlink(file);
    }
    return undefined;
  } catch (err) {
    return describeError(err);
  }
}

/** `promise`, or a rejection naming `what` after `ms` (the timer is cleared either way). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** `0755` */
export const octalMode = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');
