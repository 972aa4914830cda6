/**
 * The path rule: a disk is read only from a configured storage or from a path the admin allowed in
 * `allowDiskPaths` (block devices: the reason Proxmox configs hold absolute paths), and a restored
 * disk is written only inside its target storage. Paths are judged after realpath, so a symlink
 * counts by where it leads.
 *
 * Backup (resolveBackupDisk), for the volume's path P and its real path R:
 * 1. R under /proc or /sys, or R neither a regular file nor a block device (a directory, character
 *    device, FIFO, socket): refused, DISK_PATH_SPECIAL.
 * 2. R under /dev: only a block device on the allow-list, or a regular file inside a configured
 *    storage (a storage on the tmpfs /dev/shm).
 * 3. Elsewhere: R inside the real folder of a configured storage, or on the allow-list.
 *    Anything else: DISK_PATH_NOT_ALLOWED.
 * "On the allow-list": R matches a pattern, or R is a block device and P matches (so
 * `/dev/disk/by-id/*` names the disks its links lead to, but a link cannot carry a file out).
 * Restore (checkRestoreTargets): the real path of the nearest existing folder of each new volume
 * lies inside the real folder of its target storage, else DISK_PATH_NOT_ALLOWED.
 */
import type { Stats } from 'node:fs';
import { lstat, readlink, realpath, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { ColdvaultError, errnoCode, ioError, type ErrorCode } from '../core/index.js';
import { matchingPattern } from './disk-path-globs.js';
import { parseVolume, resolveVolumePath, storageDir, type StorageMap } from './volumes.js';

/** What the rule is judged against: the storages and the config's `allowDiskPaths`. */
export interface DiskPathRule {
  storages: StorageMap;
  /** absolute path patterns (disk-path-globs.ts) of disks outside the storages that may be read */
  allowDiskPaths?: readonly string[];
}

type FileKind = 'regular file' | 'block device' | 'directory' | 'character device' | 'FIFO' | 'socket' | 'special file';

/** The real path to read a disk from, once the path rule allows it; DISK_MISSING when it does not exist. */
export async function resolveBackupDisk(disk: { key: string; volume: string }, guestId: string, rule: DiskPathRule): Promise<string> {
  const what = `disk '${disk.key}' of guest ${guestId}`;
  const path = resolveVolumePath(disk.volume, rule.storages);
  const real = await realDiskPath(path, what);
  const kind = fileKind(
    await stat(real).catch((err: unknown) => {
      throw ioError(`reading ${what} image '${real}'`, err);
    }),
  );
  const refuse = (code: ErrorCode, why: string): ColdvaultError =>
    new ColdvaultError(code, `backing up ${what} (volume '${disk.volume}') refused: its real path '${real}'${real === path ? '' : ` (from '${path}')`} ${why}`);
  if (isUnder(real, '/proc') || isUnder(real, '/sys')) throw refuse('DISK_PATH_SPECIAL', 'is under /proc or /sys, where no disk is read');
  if (kind !== 'regular file' && kind !== 'block device') throw refuse('DISK_PATH_SPECIAL', `is a ${kind}; a disk is a regular file or a block device`);
  const allowList = rule.allowDiskPaths ?? [];
  const allowed = matchingPattern(real, allowList) !== undefined || (kind === 'block device' && matchingPattern(path, allowList) !== undefined);
  if (isUnder(real, '/dev')) {
    if (allowed && kind === 'block device') return real;
    if (kind === 'regular file' && (await insideAStorage(real, rule.storages))) return real;
    throw refuse(
      'DISK_PATH_NOT_ALLOWED',
      `is under /dev, where only a block device that allowDiskPaths names is read, or a regular file inside a configured storage (allowDiskPaths: ${listed(allowList)})`,
    );
  }
  if (allowed || (await insideAStorage(real, rule.storages))) return real;
  throw refuse(
    'DISK_PATH_NOT_ALLOWED',
    `lies outside every storage (${storagesListed(rule.storages)}) and matches no allowDiskPaths pattern (${listed(allowList)})`,
  );
}

/** Refuses (DISK_PATH_NOT_ALLOWED) a restore whose new volume's folder resolves outside its target storage. */
export async function checkRestoreTargets(newId: string, targets: ReadonlyMap<string, { volume: string; path: string }>, storages: StorageMap): Promise<void> {
  for (const [key, target] of targets) {
    const storage = parseVolume(target.volume).storage ?? '';
    const root = await realNearest(storageDir(storages, storage, `restoring disk '${key}' of guest ${newId}`));
    const folder = posix.dirname(target.path);
    const realFolder = await realNearest(folder);
    if (isUnder(realFolder, root)) continue;
    throw new ColdvaultError(
      'DISK_PATH_NOT_ALLOWED',
      `restoring disk '${key}' of guest ${newId} to '${target.volume}' refused: its folder '${folder}' ` +
        `resolves to '${realFolder}', outside the target storage '${storage}' ('${root}'); a restore writes only inside its target storage`,
    );
  }
}

async function realDiskPath(path: string, what: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new ColdvaultError('DISK_MISSING', `${what}: image '${path}' does not exist`, { cause: err });
    throw ioError(`resolving ${what} image '${path}'`, err);
  }
}

/** realpath of `path`, or of its nearest existing ancestor joined with the rest (a dangling link by where it points). */
async function realNearest(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' || posix.dirname(path) === path) throw ioError(`resolving '${path}'`, err);
    const link = await lstat(path).then(
      (s) => s.isSymbolicLink(),
      () => false,
    );
    if (link) return realNearest(posix.resolve(posix.dirname(path), await readlink(path)));
    return posix.join(await realNearest(posix.dirname(path)), posix.basename(path));
  }
}

async function insideAStorage(real: string, storages: StorageMap): Promise<boolean> {
  for (const dir of Object.values(storages)) {
    const root = await realpath(dir).catch(() => undefined);
    if (root !== undefined && isUnder(real, root)) return true;
  }
  return false;
}

function isUnder(path: string, root: string): boolean {
  return root === '/' || path === root || path.startsWith(`${root}/`);
}

function fileKind(s: Stats): FileKind {
  if (s.isFile()) return 'regular file';
  if (s.isBlockDevice()) return 'block device';
  if (s.isDirectory()) return 'directory';
  if (s.isCharacterDevice()) return 'character device';
  if (s.isFIFO()) return 'FIFO';
  return s.isSocket() ? 'socket' : 'special file';
}

const listed = (patterns: readonly string[]): string => patterns.join(', ') || 'none';

const storagesListed = (storages: StorageMap): string =>
  Object.entries(storages)
    .map(([id, dir]) => `${id}: ${dir}`)
    .join(', ') || 'none configured';
