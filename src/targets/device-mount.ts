/**
 * The mount lifecycle of one external device: find it by spec, mount it, check whose datastore it
 * holds, unmount it. Needs root. Supported filesystems: ext2/3/4, xfs, exFAT (the kernel's driver,
 * else exfat-fuse), NTFS (ntfs-3g).
 */
import { mkdir, readdir, readFile, realpath } from 'node:fs/promises';
import { ColdvaultError, errnoCode } from '../core/errors.js';
import { decodeIdentity } from '../format/index.js';
import { run, stderrOf } from './exec.js';
import { readBlockDevices, type BlockDevice } from './lsblk.js';
import { isMountpoint, mountsOfDevice } from './mountinfo.js';

export const IDENTITY_FILE = 'coldvault-datastore.json';
/** What a fresh filesystem may hold and still count as empty (as the datastore's own rule). */
const IGNORABLE_ENTRIES = new Set(['lost+found', 'System Volume Information', '$RECYCLE.BIN', '.Trash-0']);

export interface MountOptions {
  readOnly?: boolean;
  /** Do not replay a journal (ext3/4 `noload`, xfs `norecovery`): a probe leaves the disk untouched. */
  noRecovery?: boolean;
}

/** Finds a device by `/dev/...`, `UUID=...` or `LABEL=...`; DEVICE_NOT_FOUND when none (or several) match. */
export async function resolveDevice(spec: string, devices?: BlockDevice[]): Promise<BlockDevice> {
  const all = devices ?? (await readBlockDevices());
  const matches = await matching(spec, all);
  if (matches.length === 1) return matches[0]!;
  const why = matches.length === 0 ? 'no attached device matches' : `it matches ${matches.length} devices (${matches.map((d) => d.path).join(', ')})`;
  throw new ColdvaultError('DEVICE_NOT_FOUND', `finding device '${spec}' failed: ${why}`);
}

async function matching(spec: string, all: BlockDevice[]): Promise<BlockDevice[]> {
  if (spec.startsWith('UUID=')) return all.filter((d) => d.uuid !== null && d.uuid.toLowerCase() === spec.slice(5).toLowerCase());
  if (spec.startsWith('LABEL=')) return all.filter((d) => d.label === spec.slice(6));
  if (!spec.startsWith('/dev/')) throw new ColdvaultError('USAGE', `device '${spec}': expected /dev/..., UUID=... or LABEL=...`);
  let path = spec;
  try {
    path = await realpath(spec);
  } catch {
    return [];
  }
  return all.filter((d) => d.path === path || d.path === spec);
}

async function mountType(fstype: string | null): Promise<string> {
  switch (fstype) {
    case 'ext2': case 'ext3': case 'ext4': case 'xfs':
      return fstype;
    case 'ntfs': case 'ntfs3':
      return 'ntfs-3g';
    case 'exfat':
      return (await readFile('/proc/filesystems', 'utf8')).split('\n').some((l) => l.trim() === 'exfat') ? 'exfat' : 'exfat-fuse';
    default:
      throw new Error(fstype === null ? 'no filesystem found on it' : `filesystem '${fstype}' is not supported (ext4, xfs, exfat, ntfs)`);
  }
}

function mountFlags(fstype: string | null, opts: MountOptions): string {
  const flags = [opts.readOnly ? 'ro' : 'rw'];
  if (opts.readOnly && opts.noRecovery && (fstype === 'ext3' || fstype === 'ext4')) flags.push('noload');
  if (opts.readOnly && opts.noRecovery && fstype === 'xfs') flags.push('norecovery');
  return flags.join(',');
}

/** Mounts `device` on `mountpoint` (created if missing); DEVICE_MOUNT_FAILED with mount's stderr. */
export async function mountDevice(device: BlockDevice | string, mountpoint: string, opts: MountOptions = {}): Promise<void> {
  const d = typeof device === 'string' ? await resolveDevice(device) : device;
  const fail = (why: string, cause?: unknown): ColdvaultError =>
    new ColdvaultError('DEVICE_MOUNT_FAILED', `mounting device ${d.path} on '${mountpoint}' failed: ${why}`, { cause });
  let type: string;
  try {
    type = await mountType(d.fstype);
  } catch (err) {
    throw fail((err as Error).message);
  }
  await mkdir(mountpoint, { recursive: true });
  if (await isMountpoint(mountpoint)) throw fail(`'${mountpoint}' is already a mountpoint`);
  const elsewhere = await mountsOfDevice(d.path);
  if (elsewhere.length > 0) throw fail(`the device is already mounted on ${elsewhere.join(', ')}`);
  try {
    await run('mount', ['-t', type, '-o', mountFlags(d.fstype, opts), d.path, mountpoint]);
  } catch (err) {
    throw fail(oneLine(stderrOf(err)), err); // one log line: mount's stderr spans several
  }
}

const oneLine = (text: string): string => text.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');

/** Syncs and unmounts `mountpoint`, retrying a busy unmount; a path that is not a mount is fine. */
export async function unmountDevice(mountpoint: string, attempts = 5): Promise<void> {
  if (!(await isMountpoint(mountpoint))) return;
  await run('sync', ['-f', mountpoint]).catch(() => run('sync', []));
  for (let attempt = 1; ; attempt++) {
    try {
      await run('umount', [mountpoint]);
      return;
    } catch (err) {
      if (!(await isMountpoint(mountpoint))) return;
      if (attempt >= attempts) {
        throw new ColdvaultError('DEVICE_MOUNT_FAILED', `unmounting '${mountpoint}' failed after ${attempts} attempts: ${stderrOf(err)}`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

/** The datastore id in the identity file at `dir`, null when there is none. */
export async function readDatastoreId(dir: string): Promise<string | null> {
  let file: Buffer;
  try {
    file = await readFile(`${dir}/${IDENTITY_FILE}`);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
  return decodeIdentity(file, dir).id;
}

/**
 * Whose datastore is mounted at `mountpoint`: its id; 'empty' for an empty filesystem (the caller
 * decides about --init-device); WRONG_DATASTORE when it is not `expected`; NOT_A_DATASTORE when it
 * holds other files.
 */
export async function checkIdentity(mountpoint: string, expected: string | undefined): Promise<string> {
  const found = await readDatastoreId(mountpoint);
  if (found === null) {
    const others = (await readdir(mountpoint)).filter((n) => !IGNORABLE_ENTRIES.has(n));
    if (others.length === 0) return 'empty';
    throw new ColdvaultError('NOT_A_DATASTORE', `the device mounted on '${mountpoint}' holds no coldvault datastore but other files (${others.slice(0, 3).join(', ')})`);
  }
  if (expected !== undefined && found !== expected) {
    throw new ColdvaultError('WRONG_DATASTORE', `the device mounted on '${mountpoint}' holds datastore ${found}, not the expected datastore ${expected}; nothing was written to it`);
  }
  return found;
}
