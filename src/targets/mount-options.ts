/**
 * How coldvault mounts an external disk: which driver, and with which options (pure but for the
 * driver choice of exFAT).
 *
 * - Always `nosuid,nodev,noexec`: a disk someone plugged in may carry set-uid programs, device nodes
 *   and executables; none is ever honoured. (exfat-fuse drops `noexec`: mountDevice checks the flags
 *   in mountinfo after the mount and adds what a driver dropped with a bind remount.)
 * - Read-only means without journal replay: ext3/ext4 `noload`, xfs `norecovery`. exFAT has no
 *   journal; ntfs-3g never replays NTFS's $LogFile (a read-write mount clears it, `recover` is its
 *   default; a read-only mount opens the device read-only and writes nothing). A read-only mount is a
 *   look at the disk as it is: it never changes a byte of it.
 * - exFAT and NTFS have no Unix owners and modes: their drivers show every file as 0777 to every
 *   local user (and the FUSE drivers mount with allow_other). coldvault mounts them owned by root,
 *   files 0600 and folders 0700, like the datastore's own files elsewhere.
 */
import { readFile } from 'node:fs/promises';

/** The flags every coldvault mount carries, as mountinfo shows them. */
export const SAFETY_FLAGS = ['nosuid', 'nodev', 'noexec'] as const;

/** The `-t` of mount(8): a kernel filesystem, or a FUSE helper (mount.exfat-fuse, mount.ntfs-3g). */
export type MountDriver = 'ext2' | 'ext3' | 'ext4' | 'xfs' | 'exfat' | 'exfat-fuse' | 'ntfs-3g';

const PRIVATE_FILES = ['uid=0', 'gid=0', 'dmask=0077', 'fmask=0177'];

/** The driver for a filesystem type as blkid names it; throws (plain Error, the caller wraps it) when unsupported. */
export async function mountDriver(fstype: string | null): Promise<MountDriver> {
  switch (fstype) {
    case 'ext2':
    case 'ext3':
    case 'ext4':
    case 'xfs':
      return fstype;
    case 'ntfs':
    case 'ntfs3':
      return 'ntfs-3g';
    case 'exfat':
      return (await kernelHasExfat()) ? 'exfat' : 'exfat-fuse';
    default:
      throw new Error(fstype === null ? 'no filesystem found on it' : `filesystem '${fstype}' is not supported (ext4, xfs, exfat, ntfs)`);
  }
}

async function kernelHasExfat(): Promise<boolean> {
  return (await readFile('/proc/filesystems', 'utf8')).split('\n').some((l) => l.trim() === 'exfat');
}

/** The `-o` options of a mount with `driver`, read-only (without journal replay) or read-write. */
export function mountOptions(driver: MountDriver, readOnly: boolean): string[] {
  return [readOnly ? 'ro' : 'rw', ...SAFETY_FLAGS, ...(readOnly ? noReplay(driver) : []), ...ownership(driver)];
}

function noReplay(driver: MountDriver): string[] {
  if (driver === 'ext3' || driver === 'ext4') return ['noload'];
  if (driver === 'xfs') return ['norecovery'];
  return []; // ext2: no journal; exFAT: none; ntfs-3g: never replays
}

function ownership(driver: MountDriver): string[] {
  return driver === 'exfat' || driver === 'exfat-fuse' || driver === 'ntfs-3g' ? PRIVATE_FILES : [];
}
