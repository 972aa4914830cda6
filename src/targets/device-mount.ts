/**
 * The mount lifecycle of one external device: find it by spec, mount it, unmount it. Needs root.
 * Supported filesystems: ext2/3/4, xfs, exFAT (the kernel's driver, else exfat-fuse), NTFS (ntfs-3g).
 *
 * Every mount is nosuid,nodev,noexec (checked in mountinfo after the mount). A read-only mount never
 * changes the disk: no journal replay, and the block device itself is read-only while it is mounted
 * (read-only-device.ts). The folder mounted on must pass the mountpoint rule (mountpoint-guard.ts).
 * Mounts and unmounts of one process run one at a time, so two of them never race for a device.
 */
import { mkdir, mkdtemp, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColdvaultError } from '../core/index.js';
import { run, stderrOf } from './exec.js';
import { readDatastoreId } from './identity.js';
import { readBlockDevices, type BlockDevice } from './lsblk.js';
import { mountDriver, mountOptions, SAFETY_FLAGS, type MountDriver } from './mount-options.js';
import { mountpointProblem } from './mountpoint-guard.js';
import { canonicalPath, isMountpoint, mountAt, mountsOfDevice } from './mountinfo.js';
import { checkWritable, holdReadOnly } from './read-only-device.js';

export interface MountOptions {
  /** Read-only, without journal replay, with the block device read-only too: the disk is not changed. */
  readOnly?: boolean;
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
  const path = await canonicalPath(spec);
  return all.filter((d) => d.path === path || d.path === spec);
}

/** What puts a read-only device's flag back after its unmount, by canonical mountpoint. */
const readOnlyHolds = new Map<string, () => Promise<void>>();
let queue: Promise<unknown> = Promise.resolve();

/** Runs `fn` after every mount or unmount this process started before it. */
function oneAtATime<T>(fn: () => Promise<T>): Promise<T> {
  const next = queue.then(fn, fn);
  queue = next.catch(() => undefined);
  return next;
}

/** Mounts `device` on `mountpoint` (created if missing); DEVICE_MOUNT_FAILED saying why (mount's stderr, the mountpoint rule...). */
export async function mountDevice(device: BlockDevice | string, mountpoint: string, opts: MountOptions = {}): Promise<void> {
  const d = typeof device === 'string' ? await resolveDevice(device) : device;
  await oneAtATime(() => mountNow(d, mountpoint, opts.readOnly ?? false));
}

async function mountNow(d: BlockDevice, mountpoint: string, readOnly: boolean): Promise<void> {
  const fail = (why: string, cause?: unknown): ColdvaultError =>
    new ColdvaultError('DEVICE_MOUNT_FAILED', `mounting device ${d.path} on '${mountpoint}' failed: ${why}`, { cause });
  let driver: MountDriver;
  try {
    driver = await mountDriver(d.fstype);
  } catch (err) {
    throw fail((err as Error).message);
  }
  await mkdir(mountpoint, { recursive: true });
  const elsewhere = await mountsOfDevice(d.path);
  if (elsewhere.length > 0) throw fail(`the device is already mounted on ${elsewhere.join(', ')}`);
  const problem = await mountpointProblem(mountpoint, () => datastoreIdOn(d));
  if (problem) throw fail(problem);
  if (!readOnly) await checkWritable(d.path);
  const release = readOnly ? await holdReadOnly(d.path) : () => Promise.resolve();
  try {
    await mountWith(d, driver, mountpoint, readOnly).catch((err: unknown) => {
      throw fail(oneLine(stderrOf(err)), err);
    });
  } catch (err) {
    await release();
    throw err;
  }
  readOnlyHolds.set(await canonicalPath(mountpoint), release);
}

/** mount(8), then the safety flags checked in mountinfo (and added with a bind remount where a driver dropped one). */
async function mountWith(d: BlockDevice, driver: MountDriver, mountpoint: string, readOnly: boolean): Promise<void> {
  // -w: never mount(8)'s quiet fallback to read-only when a read-write mount fails
  await run('mount', ['-t', driver, ...(readOnly ? [] : ['-w']), '-o', mountOptions(driver, readOnly).join(','), d.path, mountpoint]);
  if ((await missingFlags(mountpoint, readOnly)).length === 0) return;
  try {
    await run('mount', ['-o', `remount,bind,${readOnly ? 'ro' : 'rw'},${SAFETY_FLAGS.join(',')}`, mountpoint]);
    const missing = await missingFlags(mountpoint, readOnly);
    if (missing.length > 0) throw new Error(`the mount lacks ${missing.join(', ')} even after a remount`);
  } catch (err) {
    await run('umount', [mountpoint]).catch(() => undefined);
    throw err;
  }
}

async function missingFlags(mountpoint: string, readOnly: boolean): Promise<string[]> {
  const options = (await mountAt(mountpoint))?.options ?? [];
  return [...SAFETY_FLAGS, ...(readOnly ? ['ro'] : [])].filter((f) => !options.includes(f));
}

const oneLine = (text: string): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');

/** Mounts `device` read-only in a fresh private temp dir, runs `fn` on it, always unmounts and removes the dir. */
export function withReadOnlyMount<T>(device: BlockDevice, fn: (dir: string) => Promise<T>): Promise<T> {
  return inPrivateDir(
    (dir) => mountDevice(device, dir, { readOnly: true }),
    (dir) => unmountDevice(dir),
    fn,
  );
}

/** The datastore id on the disk, looked at as withReadOnlyMount does, from inside a mount already in turn. */
function datastoreIdOn(d: BlockDevice): Promise<string | null> {
  return inPrivateDir(
    (dir) => mountNow(d, dir, true),
    (dir) => unmountNow(dir, 5),
    readDatastoreId,
  );
}

async function inPrivateDir<T>(mount: (dir: string) => Promise<void>, unmount: (dir: string) => Promise<void>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'coldvault-probe-')); // 0700: only root sees into it
  try {
    await mount(dir);
    try {
      return await fn(dir);
    } finally {
      await unmount(dir);
    }
  } finally {
    await rmdir(dir).catch(() => undefined);
  }
}

/** Syncs and unmounts `mountpoint`, retrying a busy unmount; a path that is not a mount is fine. */
export function unmountDevice(mountpoint: string, attempts = 5): Promise<void> {
  return oneAtATime(() => unmountNow(mountpoint, attempts));
}

async function unmountNow(mountpoint: string, attempts: number): Promise<void> {
  if (await isMountpoint(mountpoint)) await unmountBusy(mountpoint, attempts);
  const key = await canonicalPath(mountpoint);
  const release = readOnlyHolds.get(key);
  readOnlyHolds.delete(key);
  await release?.();
}

async function unmountBusy(mountpoint: string, attempts: number): Promise<void> {
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
