/**
 * Where a disk's snapshots live and how they are named (the reflink provider's layout):
 * `<storage dir>/.coldvault-snapshots/<vmid>/<disk key>.<tag>` when the storage folder holding the
 * disk is on the disk's filesystem, else `<disk's folder>/.coldvault-snapshots/<vmid>/<disk key>.<tag>`.
 * Proxmox lists a dir storage's images as `images/<vmid>/(vm|base)-<vmid>-*.{raw,qcow2,vmdk}`: a dot
 * folder at the storage's top, and names without an image suffix, are never taken for a volume.
 * Folders 0700, snapshots 0600 (a disk holds what its owner wants kept private).
 */
import { chmod, lstat, mkdir, realpath, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { ColdvaultError, errnoCode, ioError, type SnapshotSource } from '../../core/index.js';

export const SNAPSHOT_FOLDER = '.coldvault-snapshots';
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

/** Disk keys (`scsi0`, `efidisk0`) and tags (`run-<pid>-<boot id>`, `base-<datastore id>`) as they may appear in a name. */
const KEY = /^[a-z]+[0-9]+$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$/;

export interface SnapshotPlace {
  /** the folder that holds the guest's snapshots: `<parent>/.coldvault-snapshots/<vmid>` */
  dir: string;
  /** the storage folder or the disk's own folder, on the disk's filesystem */
  parent: string;
}

/** The place for a source's snapshots; the storage folder that holds it is preferred (see the header). */
export async function snapshotPlace(source: SnapshotSource, storageDirs: readonly string[]): Promise<SnapshotPlace> {
  const disk = await stat(source.path);
  const storage = await storageFolderOf(source.path, storageDirs);
  const parent = storage !== undefined && (await stat(storage)).dev === disk.dev ? storage : dirname(source.path);
  return { parent, dir: join(parent, SNAPSHOT_FOLDER, source.guestId) };
}

/** The real folder of the configured storage that holds `path` (the innermost one), if any. */
async function storageFolderOf(path: string, storageDirs: readonly string[]): Promise<string | undefined> {
  let best: string | undefined;
  for (const dir of storageDirs) {
    const real = await realpath(dir).catch(() => undefined);
    if (real !== undefined && path.startsWith(real === sep ? sep : `${real}${sep}`) && (best === undefined || real.length > best.length)) best = real;
  }
  return best;
}

export function snapshotName(key: string, tag: string): string {
  checkName(key, tag);
  return `${key}.${tag}`;
}

/** `<key>.<tag>` back into its parts; undefined for any other name (temp files start with a dot). */
export function parseSnapshotName(name: string): { key: string; tag: string } | undefined {
  const dot = name.indexOf('.');
  if (dot < 0) return undefined;
  const key = name.slice(0, dot);
  const tag = name.slice(dot + 1);
  return KEY.test(key) && TAG.test(tag) ? { key, tag } : undefined;
}

function checkName(key: string, tag: string): void {
  if (!KEY.test(key)) throw new ColdvaultError('SNAPSHOT_FAILED', `naming a snapshot failed: '${key}' is not a disk key`);
  if (!TAG.test(tag)) throw new ColdvaultError('SNAPSHOT_FAILED', `naming a snapshot failed: tag '${tag}' may hold only letters, digits, '_' and '-'`);
}

/** Makes (or checks) `<parent>/.coldvault-snapshots/<vmid>`: real folders, not links, private to their owner. */
export async function ensurePlace(place: SnapshotPlace): Promise<void> {
  for (const dir of [dirname(place.dir), place.dir]) {
    await mkdir(dir, { mode: PRIVATE_DIR }).catch((err: unknown) => {
      if (errnoCode(err) !== 'EEXIST') throw ioError(`creating the snapshot folder '${dir}'`, err);
    });
    const s = await lstat(dir);
    if (!s.isDirectory()) throw new ColdvaultError('DISK_UNSUPPORTED', `the snapshot folder '${dir}' is not a folder (a link or a file is never followed)`);
    if (s.uid !== process.getuid?.()) throw new ColdvaultError('DISK_UNSUPPORTED', `the snapshot folder '${dir}' belongs to another user (uid ${s.uid})`);
    if ((s.mode & 0o777) !== PRIVATE_DIR) await chmod(dir, PRIVATE_DIR);
  }
}
