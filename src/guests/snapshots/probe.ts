/**
 * Does a filesystem make reflink clones? Asked once per filesystem (per provider) with a tiny clone:
 * a one-byte file and its clone in the folder that will hold the snapshot folder, both removed at
 * once. XFS answers yes only when made with `reflink=1`, btrfs always; ext4, tmpfs, NTFS refuse.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, errnoCode } from '../../core/index.js';

/** statfs(2) magic numbers of the filesystems a disk is likely to live on, for the refusal's wording. */
const FS_NAMES: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  [0x01021994, 'tmpfs'],
  [0x2fc12fc1, 'zfs'],
  [0x6969, 'nfs'],
  [0x65735546, 'fuse (NTFS, exFAT ...)'],
  [0x794c7630, 'overlayfs'],
  [0x5346544e, 'ntfs'],
]);

const NO_REFLINK = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY']);

export async function filesystemName(dir: string): Promise<string> {
  const type = (await statfs(dir).catch(() => undefined))?.type;
  if (type === undefined) return 'unknown';
  return FS_NAMES.get(type) ?? `type 0x${type.toString(16)}`;
}

/** Why the filesystem of `dir` cannot hold reflink clones, or undefined when it can. */
export async function probeReflink(dir: string): Promise<string | undefined> {
  const probe = join(dir, `.coldvault-reflink-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, 'c', { flag: 'wx', mode: 0o600 });
    await copyFile(probe, `${probe}.clone`, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
    return undefined;
  } catch (err) {
    const fs = await filesystemName(dir);
    if (NO_REFLINK.has(errnoCode(err) ?? '')) {
      return `its filesystem (${fs}) refuses reflink clones (${errnoCode(err)}): XFS made with reflink=1 and btrfs have them; ext4, tmpfs and NTFS do not`;
    }
    return `probing for reflink clones in '${dir}' (${fs}) failed: ${describeError(err)}`;
  } finally {
    await rm(probe, { force: true });
    await rm(`${probe}.clone`, { force: true });
  }
}
